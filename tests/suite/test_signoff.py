"""The sign-off contract: task statuses and the verdict follow from test outcomes, never the other way."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.report.formats.signoff_json import as_json
from readiness.report.record import Outcome as CheckOutcome
from readiness.report.signoff import SignOff, sign
from readiness.report.tally import Tally
from readiness.verdicts import BLOCKED, FAILED, NOT_APPLICABLE, PASSED, SKIPPED

pytestmark = pytest.mark.suite

MODULES = {n: f"tests/test_0{n}_x.py::test_{n}" for n in range(1, 9)}


def signoff_with(outcomes: dict[int, list[str]]) -> SignOff:
    tally = Tally(Path("m.sql"), Path("r.sql"))
    for number, kinds in outcomes.items():
        for i, kind in enumerate(kinds):
            tally.record(CheckOutcome(f"{MODULES[number]}[{i}]", kind, f"{kind} in task {number}", task=number))
    return sign(tally, Path.cwd())


ALL_PASS = {n: [PASSED] for n in range(1, 9)}


def test_every_task_passing_is_approved() -> None:
    """Eight passing tasks give APPROVED."""
    assert signoff_with(ALL_PASS).verdict == "APPROVED"


@pytest.mark.parametrize(
    ("task_outcomes", "status"),
    [
        ([PASSED, FAILED], "FAIL"),
        ([PASSED, BLOCKED], "BLOCKED"),
        ([], "NOT RUN"),
        ([NOT_APPLICABLE], "N/A"),
        ([SKIPPED], "NOT RUN"),
        ([FAILED, BLOCKED], "FAIL"),
    ],
)
def test_one_task_not_passing_is_not_approved(task_outcomes: list[str], status: str) -> None:
    """A task that fails, is blocked, did not run, or is N/A where the report does not allow it, blocks approval."""
    signoff = signoff_with({**ALL_PASS, 3: task_outcomes})
    assert signoff.tasks[2].status == status
    assert signoff.verdict == "NOT APPROVED"


def test_rollback_not_applicable_is_allowed() -> None:
    """Task 8 N/A (rollback of a migration never applied) does not block approval."""
    assert signoff_with({**ALL_PASS, 8: [NOT_APPLICABLE]}).verdict == "APPROVED"


def test_worst_phase_of_a_test_counts() -> None:
    """A test that passed its call but failed its teardown counts as failed."""
    tally = Tally(Path("m.sql"), Path("r.sql"))
    tally.record(CheckOutcome(MODULES[1], FAILED, "teardown failed", task=1))
    tally.record(CheckOutcome(MODULES[1], PASSED, task=1))
    signoff = sign(tally, Path.cwd())
    assert (signoff.tasks[0].status, signoff.tasks[0].comments) == ("FAIL", "teardown failed")


def test_a_check_asked_for_in_two_tasks_counts_in_both() -> None:
    """A check written once for two tasks (a prerequisite: task 1 and task 7's readiness table) counts in each, and
    its failure is one issue naming both tasks."""
    tally = Tally(Path("m.sql"), Path("r.sql"))
    for number in range(1, 9):
        tally.record(CheckOutcome(f"{MODULES[number]}[ok]", PASSED, task=number))
    tally.record(CheckOutcome(f"{MODULES[1]}[organization]", FAILED, "organization DOES NOT EXIST", task=1,
                              shown_in=(7,)))  # fmt: skip
    signoff = sign(tally, Path.cwd())
    assert [(t.number, t.status, t.failed) for t in signoff.tasks if t.failed] == [(1, "FAIL", 1), (7, "FAIL", 1)]
    assert signoff.tasks[6].comments == "organization DOES NOT EXIST"
    (issue,) = signoff.blocking_issues
    assert (issue.checks, issue.tasks) == (1, (1, 7))


def test_counts_and_comment_of_a_task() -> None:
    """A task's counts add up its tests, and its comment is its first failure's message."""
    task = signoff_with({1: [PASSED, PASSED, BLOCKED, FAILED]}).tasks[0]
    assert (task.passed, task.failed, task.blocked, task.comments) == (2, 1, 1, "failed in task 1")


def test_json_contract() -> None:
    """signoff.json carries the verdict, the migration's path and hash, the eight tasks and blocking issues."""
    data = as_json(signoff_with({1: [FAILED]}))
    assert set(data) >= {"verdict", "server_version", "migration", "tasks", "blocking_issues"}
    assert [t["number"] for t in data["tasks"]] == list(range(1, 9))  # type: ignore[union-attr]
    assert set(data["tasks"][0]) == {"number", "name", "status", "passed", "failed", "blocked", "differs", "accepted",
                                     "comments"}  # type: ignore[index]  # fmt: skip
    assert data["blocking_issues"][0] == {  # type: ignore[index]
        "severity": "HIGH",
        "message": "failed in task 1",
        "location": "tests/test_01_x.py::test_1[0]",
        "checks": 1,
        "tasks": (1,),
        "requirement": None,
        "rule": "readiness:unattributed",
    }
    assert data["recommendations"] == [] and data["design_differences"] == [] and data["accepted"] == []


def test_one_blocking_issue_per_cause_with_its_checks() -> None:
    """Checks failing with one message, and checks BLOCKED by a cause a failing check names, are one issue each,
    counting the checks and their tasks; a recorded issue keeps its own severity; blocked causes no check
    names are one issue each too."""
    tally = Tally(Path("m.sql"), Path("r.sql"))
    missing = "0024 did not create the table(s) sync_progress"
    tally.record(CheckOutcome(f"{MODULES[1]}[exists]", FAILED, "table sync_progress was not created", cause=missing,
                                task=1))  # fmt: skip
    for number in (2, 3, 3):
        tally.record(CheckOutcome(f"{MODULES[number]}[{len(tally.outcomes)}]", BLOCKED, missing, task=number))
    for i in range(2):
        tally.record(CheckOutcome(f"{MODULES[5]}[same {i}]", FAILED, "enum sync_action: a label is missing", task=5))
    tally.record(CheckOutcome(f"{MODULES[2]}[leak]", FAILED, "org B reads org A's rows", severity="CRITICAL", task=2))
    tally.record(CheckOutcome(f"{MODULES[8]}[other]", BLOCKED, "the rollback file does not parse", task=8))
    for number in (4, 6, 7):
        tally.record(CheckOutcome(f"{MODULES[number]}[ok]", PASSED, task=number))
    signoff = sign(tally, Path.cwd())
    found = {(i.severity, i.message, i.checks, i.tasks) for i in signoff.blocking_issues}
    assert found == {
        ("HIGH", missing, 4, (1, 2, 3)),
        ("HIGH", "enum sync_action: a label is missing", 2, (5,)),
        ("CRITICAL", "org B reads org A's rows", 1, (2,)),
        ("HIGH", "checks blocked: the rollback file does not parse", 1, (8,)),
    }
    assert signoff.blocking_issues[0].severity == "CRITICAL"
