"""The package's layers as folders (docs/architecture.md): each imports only from below it, no module grows past 400
lines, conftest.py is fixture wiring, the README is the front door."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from readiness import PROJECT_ROOT

pytestmark = pytest.mark.suite

PACKAGE = PROJECT_ROOT / "readiness"
# Each folder's floor, from the bottom: a module imports from its own folder or a lower floor, never sideways.
FLOORS = {"": 0, "postgres": 1, "schema": 2, "rules": 3, "acting": 3, "databases": 4, "report": 5, "plugin": 6}
MODULE_LINES, CONFTEST_LINES, README_BYTES = 400, 200, 12 * 1024


def layer_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else ""


def imported_layers(path: Path) -> set[str]:
    """The layers of the readiness modules `path` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "readiness":
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1] if parts[1] in FLOORS else "")
            else:
                found |= {alias.name if alias.name in FLOORS else "" for alias in node.names}
    return found


def test_every_module_is_in_a_known_layer() -> None:
    """Every folder of the package is a layer this test knows the floor of."""
    unknown = {layer_of(path) for path in PACKAGE.rglob("*.py")} - set(FLOORS)
    assert unknown == set(), f"folders with no floor in FLOORS: {sorted(unknown)}"


def test_imports_run_one_way() -> None:
    """postgres -> schema -> rules, acting -> databases -> report -> plugin: no import runs back up or sideways."""
    wrong = [
        f"{path.relative_to(PROJECT_ROOT)} ({layer or 'root'}) imports {other or 'root'}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for layer in [layer_of(path)]
        for other in imported_layers(path)
        if FLOORS[other] > FLOORS[layer] or (FLOORS[other] == FLOORS[layer] and other != layer)
    ]
    assert wrong == [], "imports against the layers:\n" + "\n".join(wrong)


def test_a_layer_that_imports_upward_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layer check can fail: a postgres module importing the sign-off is reported."""
    fake = tmp_path / "readiness"
    (fake / "postgres").mkdir(parents=True)
    (fake / "postgres" / "leak.py").write_text("from readiness.report.signoff import SignOff\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "PROJECT_ROOT", tmp_path)
    with pytest.raises(AssertionError, match="readiness/postgres/leak.py \\(postgres\\) imports report"):
        test_imports_run_one_way()


def test_report_imports_no_pytest() -> None:
    """The sign-off and its formats (readiness/report/) are values and functions of them, with no pytest: what a
    check found reaches them only through its Outcome, never through pytest's objects."""
    found = [
        str(path.relative_to(PROJECT_ROOT))
        for path in sorted((PACKAGE / "report").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(name.split(".")[0] in ("pytest", "_pytest")
                for name in ([node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]))
    ]  # fmt: skip
    assert found == [], f"report modules importing pytest: {found}"


def test_a_report_module_importing_pytest_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytest check can fail: a format importing pytest's stash is reported."""
    (tmp_path / "readiness" / "report" / "formats").mkdir(parents=True)
    (tmp_path / "readiness" / "report" / "formats" / "leak.py").write_text("from _pytest.stash import StashKey\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "readiness")
    monkeypatch.setattr(sys.modules[__name__], "PROJECT_ROOT", tmp_path)
    with pytest.raises(AssertionError, match="readiness/report/formats/leak.py"):
        test_report_imports_no_pytest()


def test_no_module_over_its_size() -> None:
    """No module of the package is over 400 lines: a longer one does two jobs."""
    long = {
        str(path.relative_to(PROJECT_ROOT)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MODULE_LINES
    }
    assert long == {}, f"modules over {MODULE_LINES} lines: {long}"


def test_conftest_is_fixture_wiring() -> None:
    """conftest.py wires the fixtures of readiness.plugin; it holds no fixture or domain logic of its own."""
    conftest = PROJECT_ROOT / "conftest.py"
    lines = len(conftest.read_text(encoding="utf-8").splitlines())
    assert lines < CONFTEST_LINES, f"conftest.py has {lines} lines"
    definitions = [node.name for node in ast.parse(conftest.read_text()).body if isinstance(node, ast.FunctionDef)]
    assert definitions == [], f"conftest.py defines {definitions}: they belong in readiness/plugin/"


def test_readme_is_the_front_door() -> None:
    """The README is under 12 KB, and every doc it or the docs link to exists."""
    readme = PROJECT_ROOT / "README.md"
    assert readme.stat().st_size < README_BYTES, f"README.md is {readme.stat().st_size} bytes"
    broken = []
    for page in [readme, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text(encoding="utf-8")):
            if not (page.parent / target).is_file():
                broken.append(f"{page.relative_to(PROJECT_ROOT)} -> {target}")
    assert broken == [], f"links to no file: {broken}"
    linked = set(re.findall(r"\]\(docs/([^)]+\.md)\)", readme.read_text(encoding="utf-8")))
    unlinked = {page.name for page in (PROJECT_ROOT / "docs").glob("*.md")} - linked
    assert unlinked == set(), f"docs the README does not link: {sorted(unlinked)}"
