"""The repository stands alone: nothing it runs or tests reads a folder beside the clone.

A stranger's `git clone` has no shared/ next to it. `.ci/run` proves it by running the suite from a
copy with nothing beside it; this test catches the habit in the source before it gets that far.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A path out of the repository towards a sibling folder, or the old escape hatch to one. Spelled
# in pieces so this file does not itself hold the strings it looks for.
SIBLING = "sha" + "red"
ESCAPE = "PESATAB_" + SIBLING.upper() + "_DIR"
UP_THREE = r"parent\.parent\." + "parent"
OUTSIDE = re.compile(rf"\.\./{SIBLING}|{ESCAPE}|{UP_THREE}|[\"'/]{SIBLING}/daraja")


def _source_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "app", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode == 0 and listed.stdout.strip():
        names = listed.stdout.split()
    else:  # not a git checkout (an unpacked archive): every file under the three folders
        names = [
            str(p.relative_to(ROOT))
            for d in ("app", "tests", "bench")
            for p in (ROOT / d).rglob("*")
        ]
    return [ROOT / n for n in names if n.endswith((".py", ".html", ".js", ".cfg", ".toml", ".ini"))]


def test_no_source_reads_a_folder_outside_the_repository():
    me = Path(__file__).resolve()
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _source_files()
        if path.resolve() != me and path.is_file()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "reads outside the repository:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "root = Path(__file__).resolve()" + ".parent" * 3 + f' / "{SIBLING}"',
        f'os.environ.get("{ESCAPE}")',
        f'open("../{SIBLING}/daraja/callback_paid.json")',
        f'Path("/work/{SIBLING}/daraja")',
    ],
)
def test_the_pattern_catches_each_way_out(line):
    assert OUTSIDE.search(line)


def test_the_samples_live_in_the_repository():
    from tests.samples import samples_dir

    folder = samples_dir().resolve()
    assert folder.is_relative_to(ROOT) and any(folder.glob("*.json"))
