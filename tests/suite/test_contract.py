"""The contract page (docs/contract.md) lists every requirement of the ledger with the checks that enforce it."""

from __future__ import annotations

import ast

import pytest

from readiness import PROJECT_ROOT
from readiness.schema import ledger

pytestmark = pytest.mark.suite


@pytest.fixture(scope="module")
def checks() -> list[tuple[str, str]]:
    """The readiness checks and what each enforces, from a collection of all of them (nothing runs): this run's own
    items may be a selection."""
    return ledger.collected()


def test_contract_page_is_current(checks: list[tuple[str, str]]) -> None:
    """docs/contract.md is what `make contract` writes from the ledger and the checks today."""
    written = ledger.CONTRACT_PAGE.read_text(encoding="utf-8") if ledger.CONTRACT_PAGE.is_file() else ""
    assert written == ledger.contract_markdown(checks), "docs/contract.md is out of date: run `make contract`"


def test_every_requirement_is_enforced(checks: list[tuple[str, str]]) -> None:
    """Each requirement of the ledger has a check enforcing it (or says what does), and every check names one."""
    enforced = {requirement for requirement, _ in checks}
    idle = [r.id for r in ledger.requirements().values() if r.id not in enforced and not r.enforced_by]
    assert idle == [], f"requirements no check enforces: {idle}"
    assert enforced <= set(ledger.requirements()), (
        f"checks naming unknown requirements: {enforced - set(ledger.requirements())}"
    )


# What ends a check FAILED besides an assert or a raise: pytest.fail, and the helpers that call it on the answer
# PostgreSQL gave (readiness.acting.auth's refused and accepted blocks).
FAILING_CALLS = {"fail", "refused", "accepted"}


def _can_fail(function: ast.FunctionDef) -> bool:
    for node in ast.walk(function):
        if isinstance(node, (ast.Assert, ast.Raise)):
            return True
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in FAILING_CALLS:
                return True
    return False


def _enforced(function: ast.FunctionDef, module: str | None) -> str | None:
    """The requirement a check enforces: its own `enforces` marker, else its module's."""
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "enforces":
            return ast.literal_eval(decorator.args[0])  # type: ignore[no-any-return]
    return module


def test_every_blocking_check_can_fail() -> None:
    """A readiness check that enforces a blocking requirement (report or rule) can fail: it asserts, raises or calls
    pytest.fail (itself, or through refused/accepted). One that cannot is declared for a design requirement, which
    blocks nothing: a check that can only pass, enforcing a report sentence, would approve by default."""
    blocking = {r.id for r in ledger.requirements().values() if r.blocks}
    idle = []
    for path in sorted((PROJECT_ROOT / "tests").glob("test_0*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = next((ast.literal_eval(call.args[0]) for node in tree.body if isinstance(node, ast.Assign)
                       and getattr(node.targets[0], "id", "") == "pytestmark"
                       for call in ast.walk(node.value) if isinstance(call, ast.Call)
                       and getattr(call.func, "attr", "") == "enforces"), None)  # fmt: skip
        for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
            if function.name.startswith("test_") and _enforced(function, module) in blocking and not _can_fail(
                    function):  # fmt: skip
                idle.append(f"{path.name}::{function.name} ({_enforced(function, module)})")
    assert idle == [], f"checks of blocking requirements that cannot fail: {idle}"
