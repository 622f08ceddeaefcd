"""Task verdicts gathered from the checks' outcomes (readiness.report.record), and the overall sign-off.

A check belongs to the task its module declares (`pytestmark = [..., pytest.mark.task(5)]`). A check that DIFFERS
from our design counts as passed: design never blocks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from readiness.acting import access
from readiness.acting.access import Cell, Observation
from readiness.report.record import Outcome, Record
from readiness.rules import decisions
from readiness.rules.decisions import Decision, Decisions, Judged
from readiness.schema import ledger
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


@dataclass
class SignOff:
    """Every outcome of a run, and what follows from them: tasks, verdict, issues, checks."""

    migration: Path
    rollback: Path
    environment: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)  # nodeid -> hypothesis examples tried
    figures: dict[str, str] = field(default_factory=dict)  # measurement -> value, reported, never asserted
    recommendations: dict[Issue, None] = field(default_factory=dict)  # in the order found, once each
    design_differences: dict[str, DesignDifference] = field(default_factory=dict)  # subject -> difference
    target_state: str = "ephemeral"  # or what a target held of 0024: absent, present, partial (schema.deployment)
    ran: str | None = None  # what became of the file: "applied", "failed", "not run" (it escapes a rollback); None
    # when the run ended before it was applied anywhere
    lock_moments: dict[str, object] = field(default_factory=dict)  # on a target: readiness.rules.budget's record
    decisions: Decisions = field(default_factory=Decisions)  # the team's, from the decisions file
    settled: dict[Issue, Decision] = field(default_factory=dict)  # findings checks settled: squawk's own, a setting
    today: date = field(default_factory=date.today)  # against which the decisions' `until` is read
    observations: dict[Observation, None] = field(default_factory=dict)  # what the isolation checks saw, once each

    def take(self, record: Record) -> None:
        """What a check, or the run, recorded (readiness.report.record), into the sign-off: each finding once."""
        self.recommendations.update(dict.fromkeys(record.recommendations))
        self.settled.update(record.settled)
        self.observations.update(dict.fromkeys(record.observations))
        self.design_differences.update({difference.subject: difference for difference in record.differences})
        self.figures.update(record.figures)
        self.environment.update(record.environment)
        self.lock_moments.update(record.lock_moments)
        self.target_state = record.target_state or self.target_state
        self.ran = record.ran or self.ran

    def record(self, outcome: Outcome) -> None:
        """Keep the worst outcome of a test's phases (setup, call, teardown)."""
        previous = self.outcomes.get(outcome.nodeid)
        if previous is None or previous.status == PASSED or outcome.status == FAILED:
            self.outcomes[outcome.nodeid] = outcome

    @property
    def tasks(self) -> list[TaskResult]:
        results = {number: TaskResult(number, name) for number, name in TASK_NAMES.items()}
        # A task's comment is its worst test's message: a failure before a block before an N/A.
        worst: dict[int, tuple[int, str]] = {}
        accepted = self.accepted_checks
        for test in self.outcomes.values():
            number = test.task
            if number is None or test.status == SKIPPED:
                continue
            task = results[number]
            counter = "accepted" if test.nodeid in accepted else _COUNTERS[test.status]
            setattr(task, counter, getattr(task, counter) + 1)
            rank = _SEVERITY.get(test.status) if counter != "accepted" else None
            if rank is not None and test.message and (number not in worst or rank < worst[number][0]):
                worst[number] = (rank, test.message)
        for number, task in results.items():
            task.comments = worst[number][1] if number in worst and task.status != "PASS" else _summary(task)
        return list(results.values())

    @property
    def purpose(self) -> str:
        """What the run was, then what its verdict means for it."""
        deployed = self.target_state == "present"
        said = PURPOSE[self.target_state] if self.ran == "applied" or self.target_state == "partial" else UNRUN.get(
            self.ran, UNRUN[None]).format(where=WHERE[self.target_state])  # fmt: skip
        if self.verdict == "APPROVED":
            outcome = "The deployed 0024 **meets the report**" if deployed else "Migration 0024 **can be deployed**"
            return f"{said} {outcome}: all 8 validation tasks pass."
        outcome = (
            "The deployed 0024 **does NOT meet the report**"
            if deployed
            else "Migration 0024 **CANNOT be deployed** yet"
        )
        return f"{said} {outcome}: {len(self.blocking_issues)} blocking issue(s), listed below."

    @property
    def verdict(self) -> str:
        return "APPROVED" if all(task.acceptable for task in self.tasks) else "NOT APPROVED"

    @property
    def blocking_issues(self) -> list[Issue]:
        """The findings that block, after the team's decisions, worst first; a task that did not run is one."""
        found = self.judged.blocking
        not_run = [task.name for task in self.tasks if task.status == "NOT RUN"]
        if not_run:
            found.append(Issue("HIGH", f"validation tasks not run: {', '.join(not_run)}", "tests/",
                               requirement="report.all-tasks", rule="report:all-tasks"))  # fmt: skip
        severity_rank = {"CRITICAL": 0, "HIGH": 1}
        return sorted(found, key=lambda issue: severity_rank.get(issue.severity, 2))

    @property
    def listed_recommendations(self) -> list[Issue]:
        """The recommendations not accepted, and the decisions that matched nothing, each with its rule id."""
        return self.judged.recommendations

    @property
    def accepted(self) -> list[tuple[Issue, Decision]]:
        """Every finding accepted: by the team's decisions file, by squawk's own config or comments, or settled by
        a setting of the deploy (a role's lock_timeout)."""
        return [*self.settled.items(), *self.judged.accepted]

    @property
    def judged(self) -> Judged:
        """The findings against the team's decisions (readiness.rules.decisions)."""
        return self._judge(self._found())

    def _judge(self, found: list[tuple[Issue, list[str]]]) -> Judged:
        listed = [replace(issue, rule=decisions.rule_id(issue)) for issue in self.recommendations]
        return decisions.judge([issue for issue, _ in found], listed, self.decisions, self.today)

    @property
    def accepted_checks(self) -> set[str]:
        """The failed or blocked checks whose every finding is accepted: they count as passed, listed."""
        found = self._found()
        decided = {issue for issue, _ in self._judge(found).accepted}
        accepted, blocking = set(), set()
        for issue, tests in found:
            (accepted if issue in decided else blocking).update(tests)
        return accepted - blocking

    def _found(self) -> list[tuple[Issue, list[str]]]:
        """One issue per root cause, with the checks it failed or blocked (their node ids), worst first.

        A failed check's issues are its recorded ones (or its message); a check with a known cause (a missing
        object) and every check BLOCKED by the same cause count towards one issue; so do the failures of one
        check over its parameters (one requirement, one function), and checks failing with the same message.
        """
        groups: dict[Issue, list[Outcome]] = {}
        by_cause: dict[str, Issue] = {}
        counted = [t for t in self.outcomes.values() if t.status in (FAILED, BLOCKED) and t.task is not None]
        made_here: set[Issue] = set()  # issues located at a check: at their first failed one by node id, below
        # failures first, as they name the causes; else in the run's order: the report's blockers first
        for test in sorted(counted, key=lambda t: t.status != FAILED):
            cause = test.cause or (test.message if test.status == BLOCKED else None)
            if test.status == FAILED and test.issues:
                issues = test.issues
                for issue in issues:  # a check of distinct causes: each one blocks checks on its own
                    by_cause.setdefault(issue.message, issue)
            elif cause in by_cause:
                issues = [by_cause[cause]]
            elif test.status == FAILED:
                # without a known cause: one check over its parameters (one requirement, one function) is one cause
                check = None if cause or not test.one_cause else f"{test.requirement}::{test.nodeid.split('[')[0]}"
                issue = by_cause.get(test.message) or by_cause.get(check or "")
                issue = issue or Issue(test.severity, cause or test.message, test.nodeid)
                by_cause.setdefault(test.message, issue)
                if check:
                    by_cause.setdefault(check, issue)
                cause, issues = cause or test.message, [issue]
                made_here.update(issues)
            else:
                issues = [Issue("HIGH", f"checks blocked: {cause}", "")]
            for issue in issues:
                groups.setdefault(issue, []).append(test)
                if cause is not None:
                    by_cause.setdefault(cause, issue)
        severity_rank = {"CRITICAL": 0, "HIGH": 1}
        found = []
        for issue, tests in groups.items():
            failed = sorted((t for t in tests if t.status == FAILED), key=lambda t: t.nodeid)
            first = (failed or sorted(tests, key=lambda t: t.nodeid))[0]
            merged = replace(
                issue,
                # the same with -n 2, where outcomes arrive in any order: the first failed check's by node id
                message=(first.cause or first.message) if issue in made_here else issue.message,
                location=first.nodeid if issue in made_here else issue.location,
                checks=len(tests),
                tasks=tuple(sorted({t.task or 0 for t in tests})),
                # a cause is as severe as the worst check failing with it: a leak one of them proves is CRITICAL
                severity=min(
                    (issue.severity, *(t.severity for t in failed if not t.issues)),
                    key=lambda level: severity_rank.get(level, 2),
                ),
                requirement=issue.requirement or first.requirement,
            )
            found.append((replace(merged, rule=decisions.rule_id(merged)), [t.nodeid for t in tests]))
        return sorted(found, key=lambda pair: severity_rank.get(pair[0].severity, 2))

    @property
    def access_matrix(self) -> dict[str, dict[tuple[str, str], Cell]]:
        """Table or partition -> (command, actor) -> what the isolation checks saw (readiness.acting.access)."""
        return access.matrix(list(self.observations), tuple(SYNC_TABLES))

    @property
    def checks(self) -> dict[str, str]:
        """The report's production readiness rows: PASS only if every test deciding it passed."""
        rows: dict[str, str] = {}
        accepted = self.accepted_checks
        for test in self.outcomes.values():
            if test.check is None or test.status == NOT_APPLICABLE:  # a check that does not apply decides nothing
                continue
            status = {PASSED: "PASS", DIFFERS: "PASS", FAILED: "FAIL", BLOCKED: "BLOCKED"}.get(test.status, "NOT RUN")
            status = "ACCEPTED" if test.nodeid in accepted else status
            rank = ["FAIL", "BLOCKED", "NOT RUN", "ACCEPTED", "PASS"]
            if test.check not in rows or rank.index(status) < rank.index(rows[test.check]):
                rows[test.check] = status
        return rows

    @property
    def gating_criteria(self) -> list[tuple[str, bool]]:
        tasks = self.tasks
        checks = self.checks
        prerequisites = [status for name, status in checks.items() if name in PREREQUISITE_CHECKS]
        return [
            ("All 8 validation tasks attempted", all(task.status != "NOT RUN" for task in tasks)),
            ("All prerequisites installed", bool(prerequisites) and all(s in PASSING for s in prerequisites)),
            ("Migration can execute", checks.get("Migration can execute") in PASSING),
            ("No task failed or blocked", all(task.status not in ("FAIL", "BLOCKED") for task in tasks)),
            ("Application deployment ready", self.verdict == "APPROVED"),
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "target_state": self.target_state,
            "lock_moments": self.lock_moments,
            "server_version": self.environment.get("server_version", "unknown"),
            "migration": {"path": str(self.migration), "sha256": sha256(self.migration)},
            "rollback": {"path": str(self.rollback), "sha256": sha256(self.rollback)},
            "tasks": [
                {
                    "number": task.number,
                    "name": task.name,
                    "status": task.status,
                    "passed": task.passed,
                    "failed": task.failed,
                    "blocked": task.blocked,
                    "differs": task.differs,
                    "accepted": task.accepted,
                    "comments": task.comments,
                }
                for task in self.tasks
            ],
            "blocking_issues": [issue_json(issue) for issue in self.blocking_issues],
            "recommendations": [issue_json(issue) for issue in self.listed_recommendations],
            "accepted": [decided_json(issue, decision) for issue, decision in self.accepted],
            "expired": [decided_json(issue, decision) for issue, decision in self.judged.expired],
            "decisions_file": str(self.decisions.path) if self.decisions.path else None,
            "access_matrix": access.matrix_json(self.access_matrix),
            "design_differences": [difference.__dict__ for difference in self.design_differences.values()],
            "readiness_checks": self.checks,
            "gating_criteria": dict(self.gating_criteria),
            "environment": self.environment,
            "measurements": self.figures,
            "hypothesis_examples": {"total": sum(self.examples.values()), "by_test": self.examples},
            "checks": [
                {"nodeid": t.nodeid, "status": t.status, "requirement": t.requirement, "message": t.message}
                for t in sorted(self.outcomes.values(), key=lambda t: t.nodeid)
                if t.task is not None
            ],
        }


def issue_json(issue: Issue) -> dict[str, object]:
    """An issue as signoff.json gives it: its requirement whole (where it comes from, what it cites)."""
    requirement = ledger.get(issue.requirement).as_json() if issue.requirement else None
    return {**issue.__dict__, "requirement": requirement}


def decided_json(issue: Issue, decision: Decision) -> dict[str, object]:
    """An accepted (or expired) finding with the decision about it."""
    return {**issue_json(issue), "decision": decision.as_json()}


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

