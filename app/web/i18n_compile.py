"""Merge app/translations/<lang>/parts/*.po into one catalogue and compile it to messages.mo.

Run by `make` before the app or the tests start: `python -m app.web.i18n_compile`. The parts
let each area keep its own sentences; a msgid in two parts must say the same in both (the
merge fails loudly otherwise, rather than pick one).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent / "translations"


def merge(language: str) -> Catalog:
    merged = Catalog(locale=language, domain="messages")
    seen: dict[str, tuple[str, str]] = {}
    for part in sorted((ROOT / language / "parts").glob("*.po")):
        with part.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        for message in catalog:
            if not message.id:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            if key in seen and seen[key][0] != message.string:
                raise SystemExit(
                    f"{part.name}: {key!r} is translated differently in {seen[key][1]}"
                )
            seen[key] = (message.string, part.name)
            merged.add(message.id, message.string, context=message.context)
    return merged


def compile_all() -> list[Path]:
    written = []
    for language_dir in sorted(p for p in ROOT.iterdir() if p.is_dir()):
        catalog = merge(language_dir.name)
        out = language_dir / "LC_MESSAGES"
        out.mkdir(exist_ok=True)
        with (out / "messages.po").open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False)
        with (out / "messages.mo").open("wb") as handle:
            write_mo(handle, catalog)
        written.append(out / "messages.mo")
    return written


if __name__ == "__main__":
    for path in compile_all():
        print(f"compiled {path.relative_to(ROOT.parent.parent)}", file=sys.stderr)
