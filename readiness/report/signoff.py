"""The sign-off: one frozen value, signed once from what a run gathered (readiness.report.tally) and the team's
decisions, which every format renders (readiness.report.formats).

A check belongs to the task its module declares (`pytestmark = [..., pytest.mark.task(5)]`). A check that DIFFERS
from our design counts as passed: design never blocks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from readiness.acting import access
from readiness.acting.access import Cell
from readiness.report.record import Outcome
from readiness.report.tally import Tally
from readiness.rules import decisions
from readiness.rules.decisions import Decision
from readiness.schema.expected import SYNC_TABLES
from readiness.verdicts import (
    BLOCKED,
    DIFFERS,
    FAILED,
    NOT_APPLICABLE,
    PASSED,
    SKIPPED,
    DesignDifference,
    Issue,
    severity_rank,
)

TASK_NAMES = {
    1: "Schema Validation",
    2: "RLS Policy Validation",
    3: "Index Performance",
    4: "Trigger Functions",
    5: "Enum Types",
    6: "Integration Points",
    7: "Production Readiness",
    8: "Rollback Procedure",
}
# The report allows N/A for the rollback of a migration that was never applied.
NA_ALLOWED = frozenset({8})

_COUNTERS = {
    PASSED: "passed",
    FAILED: "failed",
    BLOCKED: "blocked",
    NOT_APPLICABLE: "not_applicable",
    DIFFERS: "differs",
}
_SEVERITY = {FAILED: 0, BLOCKED: 1, NOT_APPLICABLE: 2}


def sha256(path: Path) -> str | None:
    """The SHA-256 of a file, or None when it does not exist."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@dataclass
class TaskResult:
    """One validation task's counts and status."""

    number: int
    name: str
    passed: int = 0
    failed: int = 0
    blocked: int = 0
    not_applicable: int = 0
    differs: int = 0  # checks of our design the migration chose otherwise: passed, listed
    accepted: int = 0  # failed or blocked checks whose every finding the team accepted (rules.decisions)
    comments: str = ""

    @property
    def status(self) -> str:
        if self.failed:
            return "FAIL"
        if self.blocked:
            return "BLOCKED"
        if self.passed or self.differs or self.accepted:
            return "PASS"
        if self.not_applicable:
            return "N/A"
        return "NOT RUN"

    @property
    def acceptable(self) -> bool:
        return self.status == "PASS" or (self.status == "N/A" and self.number in NA_ALLOWED)


@dataclass(frozen=True)
class SignOff:
    """A run's verdict and everything the formats say of it, decided once (sign)."""

    migration: Path
    rollback: Path
    migration_sha256: str | None  # None when the file is not there
    rollback_sha256: str | None
    server_version: str  # the database under test's (a target's own, else the ephemeral server's)
    rollback_sql: str  # the rollback procedure, as the reports print it
    root: Path  # where the run was started: code scanning's paths are relative to it
    verdict: str  # APPROVED, NOT APPROVED
    purpose: str  # what the run was, and what its verdict means for it
    tasks: tuple[TaskResult, ...]
    blocking_issues: tuple[Issue, ...]  # one per root cause, after the team's decisions, worst first
    recommendations: tuple[Issue, ...]  # not accepted, and the decisions that matched nothing
    accepted: tuple[tuple[Issue, Decision], ...]  # by the decisions file, squawk's own, or a setting of the deploy
    expired: tuple[tuple[Issue, Decision], ...]  # findings whose decision is past its until: blocking again
    accepted_checks: frozenset[str]  # failed or blocked checks whose every finding is accepted
    readiness_checks: dict[str, str]  # the report's production readiness rows (signoff.json's readiness_checks)
    gating_criteria: tuple[tuple[str, bool], ...]
    access_matrix: dict[str, dict[tuple[str, str], Cell]]  # table or partition -> (command, actor) -> what was seen
    design_differences: tuple[DesignDifference, ...]
    outcomes: tuple[Outcome, ...]  # every check's, by node id
    environment: dict[str, str]
    figures: dict[str, str]  # measurement -> value, reported, never asserted
    examples: dict[str, int]  # nodeid -> hypothesis examples tried
    target_state: str
    lock_moments: dict[str, object]
    decisions_file: Path | None


def sign(tally: Tally, root: Path) -> SignOff:
    """The sign-off of what `tally` gathered, judged against its decisions: every part decided here, once."""
    found = tally.issues()
    listed = [replace(issue, rule=decisions.rule_id(issue)) for issue in tally.recommendations]
    judged = decisions.judge([issue for issue, _ in found], listed, tally.decisions, tally.today)
    decided = {issue for issue, _ in judged.accepted}
    accepted_checks, blocking_checks = set(), set()
    for issue, checks in found:
        (accepted_checks if issue in decided else blocking_checks).update(checks)
    accepted_checks -= blocking_checks
    tasks = task_results(tally.outcomes.values(), accepted_checks)
    verdict = "APPROVED" if all(task.acceptable for task in tasks) else "NOT APPROVED"
    blocking = judged.blocking
    not_run = [task.name for task in tasks if task.status == "NOT RUN"]
    if not_run:
        blocking.append(Issue("HIGH", f"validation tasks not run: {', '.join(not_run)}", "tests/",
                              requirement="report.all-tasks", rule="report:all-tasks"))  # fmt: skip
    blocking.sort(key=lambda issue: severity_rank(issue.severity))
    rows = readiness_rows(tally.outcomes.values(), accepted_checks)
    rollback = tally.rollback
    return SignOff(
        migration=tally.migration, rollback=rollback, root=root, migration_sha256=sha256(tally.migration),
        rollback_sha256=sha256(rollback), server_version=tally.environment.get("server_version", "unknown"),
        rollback_sql=rollback.read_text(encoding="utf-8") if rollback.is_file() else "",
        verdict=verdict, purpose=purpose(tally, verdict, len(blocking)), tasks=tuple(tasks),
        blocking_issues=tuple(blocking), recommendations=tuple(judged.recommendations),
        accepted=(*tally.settled.items(), *judged.accepted), expired=tuple(judged.expired),
        accepted_checks=frozenset(accepted_checks), readiness_checks=rows,
        gating_criteria=gating_criteria(tasks, rows, verdict),
        access_matrix=access.matrix(list(tally.observations), tuple(SYNC_TABLES)),
        design_differences=tuple(tally.design_differences.values()),
        outcomes=tuple(sorted(tally.outcomes.values(), key=lambda outcome: outcome.nodeid)),
        environment=dict(tally.environment), figures=dict(tally.figures), examples=dict(tally.examples),
        target_state=tally.target_state, lock_moments=dict(tally.lock_moments), decisions_file=tally.decisions.path,
    )  # fmt: skip


def task_results(outcomes: Iterable[Outcome], accepted: set[str]) -> list[TaskResult]:
    """Each task's counts, and its comment: its worst check's message (a failure before a block before an N/A)."""
    results = {number: TaskResult(number, name) for number, name in TASK_NAMES.items()}
    worst: dict[int, tuple[int, str]] = {}
    for test in outcomes:
        if test.task is None or test.status == SKIPPED:
            continue
        for number in (test.task, *test.shown_in):  # a check the report asks for in two tasks counts in both
            task = results[number]
            counter = "accepted" if test.nodeid in accepted else _COUNTERS[test.status]
            setattr(task, counter, getattr(task, counter) + 1)
            rank = _SEVERITY.get(test.status) if counter != "accepted" else None
            if rank is not None and test.message and (number not in worst or rank < worst[number][0]):
                worst[number] = (rank, test.message)
    for number, task in results.items():
        task.comments = worst[number][1] if number in worst and task.status != "PASS" else _summary(task)
    return list(results.values())


def readiness_rows(outcomes: Iterable[Outcome], accepted: set[str]) -> dict[str, str]:
    """The report's production readiness rows: PASS only if every test deciding it passed."""
    rows: dict[str, str] = {}
    rank = ["FAIL", "BLOCKED", "NOT RUN", "ACCEPTED", "PASS"]
    for test in outcomes:
        if test.check is None or test.status == NOT_APPLICABLE:  # a check that does not apply decides nothing
            continue
        status = {PASSED: "PASS", DIFFERS: "PASS", FAILED: "FAIL", BLOCKED: "BLOCKED"}.get(test.status, "NOT RUN")
        status = "ACCEPTED" if test.nodeid in accepted else status
        if test.check not in rows or rank.index(status) < rank.index(rows[test.check]):
            rows[test.check] = status
    return rows


def gating_criteria(tasks: list[TaskResult], checks: dict[str, str], verdict: str) -> tuple[tuple[str, bool], ...]:
    """The report's gating criteria, each met or not."""
    prerequisites = [status for name, status in checks.items() if name in PREREQUISITE_CHECKS]
    return (
        ("All 8 validation tasks attempted", all(task.status != "NOT RUN" for task in tasks)),
        ("All prerequisites installed", bool(prerequisites) and all(s in PASSING for s in prerequisites)),
        ("Migration can execute", checks.get("Migration can execute") in PASSING),
        ("No task failed or blocked", all(task.status not in ("FAIL", "BLOCKED") for task in tasks)),
        ("Application deployment ready", verdict == "APPROVED"),
    )


def purpose(tally: Tally, verdict: str, blocking: int) -> str:
    """What the run was, then what its verdict means for it."""
    deployed = tally.target_state == "present"
    said = PURPOSE[tally.target_state] if tally.ran == "applied" or tally.target_state == "partial" else UNRUN.get(
        tally.ran, UNRUN[None]).format(where=WHERE[tally.target_state])  # fmt: skip
    if verdict == "APPROVED":
        outcome = "The deployed 0024 **meets the report**" if deployed else "Migration 0024 **can be deployed**"
        return f"{said} {outcome}: all 8 validation tasks pass."
    outcome = ("The deployed 0024 **does NOT meet the report**" if deployed
               else "Migration 0024 **CANNOT be deployed** yet")  # fmt: skip
    return f"{said} {outcome}: {blocking} blocking issue(s), listed below."


# What the run was, by what the database under test held of 0024 (schema.deployment): the sign-off says it first.
PURPOSE = {
    "ephemeral": "This run gates the deploy: 0024 was applied to an ephemeral PostgreSQL holding its prerequisites "
    "and 0023.",
    "absent": "This run gates the deploy to the target: 0024 is not on it yet, and was dry-run there in one "
    "transaction, rolled back.",
    "present": "This run verifies a deploy: 0024 is on the target, and its deployed objects were checked in place, "
    "in one transaction, rolled back.",
    "partial": "0024 is partly on the target: a deploy stopped half-way. Nothing of it is checked until the target "
    "holds all of it or none; the blocking issue says what exists, what is missing and which way out works.",
}


# What the run was when the file did not apply: it failed, was run nowhere, or the run ended before it got there.
WHERE = {"ephemeral": "an ephemeral PostgreSQL holding its prerequisites and 0023",
         "absent": "the target's shadow (0024 is not on the target yet)",
         "present": "the target's shadow, after the deployed 0024's rollback"}  # fmt: skip
UNRUN = {
    "failed": "This run gates the deploy: 0024 was run on {where} and did not apply there.",
    "not run": "This run gates the deploy: 0024 was run nowhere, since what it does no rollback undoes.",
    None: "This run ended before 0024 was applied anywhere.",
}


PASSING = ("PASS", "ACCEPTED")  # a readiness row whose failed checks the team accepted passes, on the record
PREREQUISITE_CHECKS = ("Schema prerequisites exist", "Auth infrastructure exists", "User mapping table exists")


def _summary(task: TaskResult) -> str:
    if task.status == "NOT RUN":
        return "no check of this task ran"
    return (f"{task.passed} checks passed" + (f", {task.accepted} accepted" if task.accepted else "")
            + (f", {task.not_applicable} N/A" if task.not_applicable else ""))  # fmt: skip
