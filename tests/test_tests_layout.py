"""The test suite's own layout: tests/ mirrors src/tollway, and test modules share code only through helpers.

A folder under tests/ names the package it tests, so a newcomer finds a module's tests where the module
lives and a folder by kind (a `unit/` beside the packages) cannot grow back. A test module that imports
another test module makes the second one's tests a library nobody can move or delete safely; shared
helpers live in a folder's support module and shared fixtures in its conftest.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "src" / "tollway"
# Folders that test something other than a package of src/tollway: the process fixtures, the repository's
# benchmarks/ and deploy/ folders.
NOT_PACKAGES = {"fixtures", "benchmarks", "deploy"}


def folders_under_tests() -> list[Path]:
    """Every folder under tests/ that holds Python files, caches left out."""
    return sorted({path.parent for path in TESTS.rglob("*.py")
                   if "__pycache__" not in path.parts and path.parent != TESTS})


def untested_names(folders: list[Path]) -> list[str]:
    """The folders (relative to tests/) that do not name a package or module under src/tollway."""
    wrong = []
    for folder in folders:
        parts = folder.relative_to(TESTS).parts
        if parts[0] in NOT_PACKAGES:
            continue
        target = PACKAGE.joinpath(*parts)
        if not (target.is_dir() or target.with_suffix(".py").is_file()):
            wrong.append("/".join(parts))
    return wrong


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (`tests.x.test_y`) that `path` imports, at any depth of its code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else f".{node.module}"
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.ImportFrom) and node.level:
            names = [f".{alias.name}" for alias in node.names]
        found += [name for name in names if name.startswith(("tests.", "."))
                  and any(part.startswith("test_") for part in name.split("."))]
    return found


def test_every_test_folder_names_a_package_under_src() -> None:
    wrong = untested_names(folders_under_tests())
    assert not wrong, ("these test folders name no package of src/tollway; move their tests to where the code they "
                       f"test lives: {wrong}")


def test_no_module_under_tests_imports_a_test_module() -> None:
    offenders = {str(path.relative_to(TESTS)): imported for path in sorted(TESTS.rglob("*.py"))
                 if "__pycache__" not in path.parts and (imported := imported_test_modules(path))}
    assert not offenders, ("move what these share into the folder's support.py (helpers) or conftest.py "
                           f"(fixtures): {offenders}")


def test_the_checks_see_a_folder_by_kind_and_a_test_module_import(tmp_path: Path) -> None:
    assert untested_names([TESTS / "unit", TESTS / "routing", TESTS / "accounting" / "keys", TESTS / "deploy"]) == [
        "unit"]
    module = tmp_path / "test_x.py"
    module.write_text("from tests.plan.test_replay import known_rows\nimport tests.observe.support\n"
                      "from aiohttp.test_utils import make_mocked_request\n"
                      "def f():\n    from . import test_other\n")
    assert imported_test_modules(module) == ["tests.plan.test_replay", "tests.plan.test_replay.known_rows",
                                             ".test_other"]
