"""The layout rules, checked on the code itself (read with `ast`, nothing imported).

- One package per area; its blueprint lives in its routes.py and is named as the package (the
  package itself never loads its views), and its templates live in a folder of that name.
- No module of an area imports another area's routes: what views share lives in app/web.
- No import circle between modules of app/ (imports inside functions included: a lazy import
  that closes a circle is still a circle, only hidden).
- No file in app/ over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
AREAS = (
    "api",
    "audit",
    "auth",
    "balance",
    "dashboard",
    "health",
    "hooks",
    "ops",
    "payments",
    "reconciliation",
    "receipts",
    "reversals",
    "settings",
    "staff",
    "statements",
    "tabs",
    "verify",
)
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(APP.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The app modules `name` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod when there is one.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _area_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in AREAS else None


@pytest.mark.parametrize("area", AREAS)
def test_an_area_is_a_package_with_its_blueprint_in_routes_named_as_the_package(area):
    routes = APP / area / "routes.py"
    assert routes.is_file(), f"app/{area}/routes.py is missing"
    blueprints = [
        node
        for node in ast.walk(ast.parse(routes.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Blueprint"
    ]
    assert len(blueprints) == 1, f"app/{area}/routes.py should make exactly one Blueprint"
    assert blueprints[0].args[0].value == area
    # Importing an area's domain (app.audit, app.payments.states) never loads its views.
    assert f"app.{area}.routes" not in GRAPH[f"app.{area}"]
    assert "Blueprint" not in (APP / area / "__init__.py").read_text()


@pytest.mark.parametrize("area", AREAS)
def test_an_areas_templates_are_in_a_folder_named_as_the_area(area):
    routes = (APP / area / "routes.py").read_text()
    for node in ast.walk(ast.parse(routes)):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.endswith((".html", ".txt"))
            and "/" in node.value
        ):
            assert node.value.split("/")[0] == area, f"app/{area}/routes.py renders {node.value}"


def test_no_blueprint_template_folder_is_left_without_its_area():
    folders = {p.name for p in (APP / "templates").iterdir() if p.is_dir()}
    assert folders - set(AREAS) <= {"errors"}, folders - set(AREAS)


def test_no_module_imports_another_areas_routes():
    wrong = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if target.endswith(".routes")
        and _area_of(target) != _area_of(module)
        and module != "app"  # create_app registers every blueprint
    ]
    assert wrong == []


def test_there_is_no_import_circle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)

    # A package's __init__ importing its own submodules is how a package is put together, and
    # a submodule importing its package's names back is how it is used: not a circle of design.
    def own_package(component: list[str]) -> bool:
        heads = [m for m in component if MODULES[m].name == "__init__.py"]
        return len(heads) == 1 and all(
            m.startswith(heads[0] + ".") or m == heads[0] for m in component
        )

    assert [c for c in circles if not own_package(c)] == []


def test_no_file_in_app_is_over_the_line_limit():
    long = {
        str(path.relative_to(ROOT)): n
        for path in APP.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_checks_see_the_code():
    """The rules above hold because they read the code, not because they read nothing."""
    assert len(MODULES) > 100
    assert "app.payments.states" in GRAPH["app.payments.push"]
    assert "app.tabs.totals" in GRAPH["app.payments.push"]
    assert any(t.endswith(".routes") for t in GRAPH["app"])
