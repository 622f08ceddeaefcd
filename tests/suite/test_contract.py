"""The contract page (docs/contract.md) lists every requirement of the ledger with the checks that enforce it."""

from __future__ import annotations

import pytest

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
