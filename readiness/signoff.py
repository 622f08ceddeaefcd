"""Task verdicts gathered from test outcomes, and the overall sign-off.

A test belongs to the task its module is numbered for (tests/test_05_enums.py -> task 5).
A test skipped with a reason starting "BLOCKED:" counts as blocked, "N/A:" as not applicable.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

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
BLOCKED_PREFIX = "BLOCKED: "
NA_PREFIX = "N/A: "
_TASK_MODULE = re.compile(r"(?:^|/)test_0(\d)_\w+\.py::")

PASSED, FAILED, BLOCKED, NOT_APPLICABLE, SKIPPED = "passed", "failed", "blocked", "n/a", "skipped"
_COUNTERS = {PASSED: "passed", FAILED: "failed", BLOCKED: "blocked", NOT_APPLICABLE: "not_applicable"}
_SEVERITY = {FAILED: 0, BLOCKED: 1, NOT_APPLICABLE: 2}


def task_of(nodeid: str) -> int | None:
    """The task number of a test from its module name, or None for tests of the suite itself."""
    match = _TASK_MODULE.search(nodeid)
    return int(match.group(1)) if match else None


def sha256(path: Path) -> str | None:
    """The SHA-256 of a file, or None when it does not exist."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@dataclass(frozen=True)
class Issue:
    """A finding: blocking (CRITICAL, HIGH) or a recommendation (MEDIUM, LOW) that never changes the verdict."""

    severity: str  # CRITICAL, HIGH, MEDIUM, LOW
    message: str
    location: str
    checks: int = 1  # the checks this cause failed or blocked
    tasks: tuple[int, ...] = ()  # the validation tasks they belong to


@dataclass(frozen=True)
class DesignDifference:
    """Where the migration under test chose otherwise than our own 0024, in what the report leaves open."""

    subject: str
    design: str  # what our 0024 has
    found: str  # what the migration under test has


@dataclass
class CheckOutcome:
    """One test's outcome, as the sign-off counts it."""

    nodeid: str
    outcome: str
    message: str = ""
    description: str = ""
    check: str | None = None  # the report's "Production Readiness" row this test decides
    issues: list[Issue] = field(default_factory=list)
    cause: str | None = None  # the root cause it shares with other checks (a missing object), if known
    severity: str = "HIGH"  # of its failure, when it records no issue of its own (CRITICAL: a tenant leak)


@dataclass
class TaskResult:
    """One validation task's counts and status."""

    number: int
    name: str
    passed: int = 0
    failed: int = 0
    blocked: int = 0
    not_applicable: int = 0
    comments: str = ""

    @property
    def status(self) -> str:
        if self.failed:
            return "FAIL"
        if self.blocked:
            return "BLOCKED"
        if self.passed:
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
    outcomes: dict[str, CheckOutcome] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)  # nodeid -> hypothesis examples tried
    figures: dict[str, str] = field(default_factory=dict)  # measurement -> value, reported, never asserted
    recommendations: dict[Issue, None] = field(default_factory=dict)  # in the order found, once each
    design_differences: dict[str, DesignDifference] = field(default_factory=dict)  # subject -> difference
    target_state: str = "ephemeral"  # or what a target held of 0024: absent, present, partial (readiness.deployment)

    def record(self, outcome: CheckOutcome) -> None:
        """Keep the worst outcome of a test's phases (setup, call, teardown)."""
        previous = self.outcomes.get(outcome.nodeid)
        if previous is None or previous.outcome == PASSED or outcome.outcome == FAILED:
            self.outcomes[outcome.nodeid] = outcome

    @property
    def tasks(self) -> list[TaskResult]:
        results = {number: TaskResult(number, name) for number, name in TASK_NAMES.items()}
        # A task's comment is its worst test's message: a failure before a block before an N/A.
        worst: dict[int, tuple[int, str]] = {}
        for test in self.outcomes.values():
            number = task_of(test.nodeid)
            if number is None or test.outcome == SKIPPED:
                continue
            task = results[number]
            counter = _COUNTERS[test.outcome]
            setattr(task, counter, getattr(task, counter) + 1)
            rank = _SEVERITY.get(test.outcome)
            if rank is not None and test.message and (number not in worst or rank < worst[number][0]):
                worst[number] = (rank, test.message)
        for number, task in results.items():
            task.comments = worst[number][1] if number in worst and task.status != "PASS" else _summary(task)
        return list(results.values())

    @property
    def purpose(self) -> str:
        """What the run was, then what its verdict means for it."""
        deployed = self.target_state == "present"
        if self.verdict == "APPROVED":
            outcome = "The deployed 0024 **meets the report**" if deployed else "Migration 0024 **can be deployed**"
            return f"{PURPOSE[self.target_state]} {outcome}: all 8 validation tasks pass."
        outcome = (
            "The deployed 0024 **does NOT meet the report**"
            if deployed
            else "Migration 0024 **CANNOT be deployed** yet"
        )
        return f"{PURPOSE[self.target_state]} {outcome}: {len(self.blocking_issues)} blocking issue(s), listed below."

    @property
    def verdict(self) -> str:
        return "APPROVED" if all(task.acceptable for task in self.tasks) else "NOT APPROVED"

    @property
    def blocking_issues(self) -> list[Issue]:
        """One issue per root cause, with the checks it failed or blocked and their tasks, worst first.

        A failed check's issues are its recorded ones (or its message); a check with a known cause (a missing
        object) and every check BLOCKED by the same cause count towards one issue.
        """
        groups: dict[Issue, list[CheckOutcome]] = {}
        by_cause: dict[str, Issue] = {}
        counted = [
            t for t in self.outcomes.values() if t.outcome in (FAILED, BLOCKED) and task_of(t.nodeid) is not None
        ]
        made_here: set[Issue] = set()  # issues located at a check: at their first failed one by node id, below
        for test in sorted(counted, key=lambda t: t.outcome != FAILED):  # failures first: they name the causes
            cause = test.cause or (test.message if test.outcome == BLOCKED else None)
            if test.outcome == FAILED and test.issues:
                issues = test.issues
            elif cause in by_cause:
                issues = [by_cause[cause]]
            elif test.outcome == FAILED:  # the same message from several checks is one cause
                cause = cause or test.message
                issues = [by_cause.get(cause) or Issue(test.severity, cause, test.nodeid)]
                made_here.update(issues)
            else:
                issues = [Issue("HIGH", f"checks blocked: {cause}", "")]
            for issue in issues:
                groups.setdefault(issue, []).append(test)
                if cause is not None:
                    by_cause.setdefault(cause, issue)
        severity_rank = {"CRITICAL": 0, "HIGH": 1}
        found = [
            replace(
                issue,
                # the same with -n 2, where outcomes arrive in any order
                location=min(t.nodeid for t in tests if t.outcome == FAILED) if issue in made_here else issue.location,
                checks=len(tests),
                tasks=tuple(sorted({task_of(t.nodeid) or 0 for t in tests})),
                # a cause is as severe as the worst check failing with it: a leak one of them proves is CRITICAL
                severity=min(
                    (issue.severity, *(t.severity for t in tests if t.outcome == FAILED and not t.issues)),
                    key=lambda level: severity_rank.get(level, 2),
                ),
            )
            for issue, tests in groups.items()
        ]
        not_run = [task.name for task in self.tasks if task.status == "NOT RUN"]
        if not_run:
            found.append(Issue("HIGH", f"validation tasks not run: {', '.join(not_run)}", "tests/"))
        return sorted(found, key=lambda issue: severity_rank.get(issue.severity, 2))

    @property
    def checks(self) -> dict[str, str]:
        """The report's production readiness rows: PASS only if every test deciding it passed."""
        rows: dict[str, str] = {}
        for test in self.outcomes.values():
            if test.check is None:
                continue
            status = {PASSED: "PASS", FAILED: "FAIL", BLOCKED: "BLOCKED"}.get(test.outcome, "NOT RUN")
            rank = ["FAIL", "BLOCKED", "NOT RUN", "PASS"]
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
            ("All prerequisites installed", bool(prerequisites) and all(s == "PASS" for s in prerequisites)),
            ("Migration can execute", checks.get("Migration can execute") == "PASS"),
            ("No task failed or blocked", all(task.status not in ("FAIL", "BLOCKED") for task in tasks)),
            ("Application deployment ready", self.verdict == "APPROVED"),
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "target_state": self.target_state,
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
                    "comments": task.comments,
                }
                for task in self.tasks
            ],
            "blocking_issues": [issue.__dict__ for issue in self.blocking_issues],
            "recommendations": [issue.__dict__ for issue in self.recommendations],
            "design_differences": [difference.__dict__ for difference in self.design_differences.values()],
            "readiness_checks": self.checks,
            "gating_criteria": dict(self.gating_criteria),
            "environment": self.environment,
            "measurements": self.figures,
            "hypothesis_examples": {"total": sum(self.examples.values()), "by_test": self.examples},
        }


# What the run was, by what the database under test held of 0024 (readiness.deployment): the sign-off says it first.
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


PREREQUISITE_CHECKS = ("Schema prerequisites exist", "Auth infrastructure exists", "User mapping table exists")


def _summary(task: TaskResult) -> str:
    if task.status == "NOT RUN":
        return "no check of this task ran"
    return f"{task.passed} checks passed" + (f", {task.not_applicable} N/A" if task.not_applicable else "")


# Where the run keeps its sign-off (config.stash); fixtures add the environment to it.
SIGNOFF_KEY = pytest.StashKey[SignOff]()
