"""What a run gathered, as it came: every check's Outcome and every Record (readiness.report.record), and the
findings they add up to, one issue per root cause. readiness.report.signoff signs it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from readiness.acting.access import Observation
from readiness.report.record import Outcome, Record
from readiness.rules import decisions
from readiness.rules.decisions import Decision, Decisions
from readiness.verdicts import BLOCKED, FAILED, PASSED, DesignDifference, Issue, severity_rank


@dataclass
class Tally:
    """Every outcome and record of a run, gathered as the checks end; signed once (readiness.report.signoff)."""

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
        """What a check, or the run, recorded (readiness.report.record): each finding once."""
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

    def issues(self) -> list[tuple[Issue, list[str]]]:
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
                issue = issue or Issue(test.severity, cause or test.message, test.nodeid, about=test.about)
                by_cause.setdefault(test.message, issue)
                if check:
                    by_cause.setdefault(check, issue)
                cause, issues = cause or test.message, [issue]
                made_here.update(issues)
            else:
                issues = [Issue("HIGH", f"checks blocked: {cause}", "", about=test.about)]
            for issue in issues:
                groups.setdefault(issue, []).append(test)
                if cause is not None:
                    by_cause.setdefault(cause, issue)
        found = []
        for issue, tests in groups.items():
            failed = sorted((t for t in tests if t.status == FAILED), key=lambda t: t.nodeid)
            first = (failed or sorted(tests, key=lambda t: t.nodeid))[0]
            merged = replace(
                issue,
                # the same with -n 2, where outcomes arrive in any order: the first failed check's by node id
                message=(first.cause or first.message) if issue in made_here else issue.message,
                location=first.nodeid if issue in made_here else issue.location,
                about=first.about if issue in made_here else issue.about,
                checks=len(tests),
                tasks=tuple(sorted({number for t in tests for number in (t.task or 0, *t.shown_in)})),
                # a cause is as severe as the worst check failing with it: a leak one of them proves is CRITICAL
                severity=min(
                    (issue.severity, *(t.severity for t in failed if not t.issues)),
                    key=severity_rank,
                ),
                requirement=issue.requirement or first.requirement,
            )
            found.append((replace(merged, rule=decisions.rule_id(merged)), [t.nodeid for t in tests]))
        return sorted(found, key=lambda pair: severity_rank(pair[0].severity))
