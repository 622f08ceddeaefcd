"""A failed readiness check says what it expected and what it found, in words: every assert carries a message."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.suite

TASK_MODULES = sorted((Path(__file__).parent.parent).glob("test_0*.py"))


def bare_asserts(path: Path) -> list[str]:
    """The asserts of a module without a message, as file:line: a DBA would read `assert 1 == 0` as the issue."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno}" for node in ast.walk(tree) if isinstance(node, ast.Assert) and node.msg is None
    ]


def test_task_modules_found() -> None:
    """The eight task modules are where this test looks."""
    assert [path.name[:7] for path in TASK_MODULES] == [f"test_0{n}" for n in range(1, 9)], TASK_MODULES


@pytest.mark.parametrize("path", TASK_MODULES, ids=lambda path: path.name)
def test_every_assert_of_a_check_has_a_message(path: Path) -> None:
    """Each assert in a readiness task module has a message saying what was expected and what was found."""
    assert bare_asserts(path) == [], "asserts without a message (add one in the migration's own terms)"
