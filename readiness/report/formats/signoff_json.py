"""reports/signoff.json: the sign-off for pipelines, every field by name (docs/reports.md lists them)."""

from __future__ import annotations

import json

from readiness.acting import access
from readiness.report.signoff import SignOff
from readiness.rules.decisions import Decision
from readiness.schema import ledger
from readiness.verdicts import Issue

FILE = "signoff.json"


def as_json(signoff: SignOff) -> dict[str, object]:
    """The sign-off as JSON values."""
    return {
        "verdict": signoff.verdict,
        "target_state": signoff.target_state,
        "lock_moments": signoff.lock_moments,
        "server_version": signoff.server_version,
        "migration": {"path": str(signoff.migration), "sha256": signoff.migration_sha256},
        "rollback": {"path": str(signoff.rollback), "sha256": signoff.rollback_sha256},
        "tasks": [
            {"number": task.number, "name": task.name, "status": task.status, "passed": task.passed,
             "failed": task.failed, "blocked": task.blocked, "differs": task.differs, "accepted": task.accepted,
             "comments": task.comments}
            for task in signoff.tasks
        ],  # fmt: skip
        "blocking_issues": [issue_json(issue) for issue in signoff.blocking_issues],
        "recommendations": [issue_json(issue) for issue in signoff.recommendations],
        "accepted": [decided_json(issue, decision) for issue, decision in signoff.accepted],
        "expired": [decided_json(issue, decision) for issue, decision in signoff.expired],
        "decisions_file": str(signoff.decisions_file) if signoff.decisions_file else None,
        "access_matrix": access.matrix_json(signoff.access_matrix),
        "design_differences": [difference.__dict__ for difference in signoff.design_differences],
        "readiness_checks": signoff.readiness_checks,
        "gating_criteria": dict(signoff.gating_criteria),
        "environment": signoff.environment,
        "measurements": signoff.figures,
        "hypothesis_examples": {"total": sum(signoff.examples.values()), "by_test": signoff.examples},
        "checks": [
            {"nodeid": t.nodeid, "status": t.status, "requirement": t.requirement, "message": t.message}
            for t in signoff.outcomes
            if t.task is not None
        ],
    }


def render(signoff: SignOff) -> str:
    """The whole sign-off in this format."""
    return json.dumps(as_json(signoff), indent=2) + "\n"


def issue_json(issue: Issue) -> dict[str, object]:
    """An issue as signoff.json gives it: its requirement whole (where it comes from, what it cites); where it is,
    as its location says it (its typed place and objects are read by the other formats and the decisions)."""
    requirement = ledger.get(issue.requirement).as_json() if issue.requirement else None
    fields = {key: value for key, value in issue.__dict__.items() if key not in ("at", "about")}
    return {**fields, "requirement": requirement}


def decided_json(issue: Issue, decision: Decision) -> dict[str, object]:
    """An accepted (or expired) finding with the decision about it."""
    return {**issue_json(issue), "decision": decision.as_json()}
