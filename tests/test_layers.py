"""The layering rule, checked against the imports the code runs (docs/architecture.md draws it).

Each top-level package of src/tollway has a rank; a module may import from its own package and from
lower ranks only, so the packages form a graph without cycles and a newcomer can read them bottom-up.
Imports under `if TYPE_CHECKING:` never run and are not counted; a package's `settings` module (its
config section) may be imported by the top-level config module, which assembles them.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
ROOT = SRC / "tollway"

RANKS = {
    "core": 0, "terminal": 0,
    "config_env": 1, "providers": 1,
    "config": 2,
    "upstream": 4,
    "catalog": 5, "ledger": 5, "selfhost": 5,
    "accounting": 6,
    "routing": 7,
    "observe": 8,
    "batch": 8.5,
    "gateway": 9,
    "emulator": 10, "bench": 10, "plan": 10, "migrate": 10,
    "cli": 11,
}


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_run(tree: ast.AST, module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import that can run, relative imports resolved."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")[: -node.level] if node.level else []
            target = ".".join([*base, node.module] if node.module else base) if node.level else node.module or ""
            found.append((target, node.lineno))
            found.extend((f"{target}.{alias.name}", node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "tollway" and len(parts) > 1 else None


def edges() -> list[tuple[str, str, str]]:
    """(from package, to package, where) for every import across top-level packages."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        here = package_of(module)
        if here is None:
            continue
        for target, line in imports_run(ast.parse(path.read_text()), module):
            there = package_of(target)
            if there is None or there == here or there not in RANKS:
                continue
            if here == "config" and target.split(".")[2:3] == ["settings"]:
                continue  # config.py assembles each package's settings section
            out.append((here, there, f"{path.relative_to(SRC)}:{line} imports {target}"))
    return out


def test_every_top_level_package_has_a_rank():
    packages = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
                if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert packages <= set(RANKS), f"give these a rank in RANKS and docs/architecture.md: {packages - set(RANKS)}"


def test_imports_point_down_the_layers():
    upward = [where for here, there, where in edges() if RANKS[there] >= RANKS[here]]
    assert not upward, "imports that point up or sideways between layers:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import():
    tree = ast.parse("from tollway.gateway.app import Gateway\nif TYPE_CHECKING:\n    import tollway.cli\n")
    assert [t for t, _ in imports_run(tree, "tollway.core.errors")] == ["tollway.gateway.app", "tollway.gateway.app.Gateway"]
