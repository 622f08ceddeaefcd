"""Words the formats share: how a finding's reach, its requirement and its decision are said, and the report's own
recommendations when a prerequisite is missing."""

from __future__ import annotations

from readiness import SQL_DIR
from readiness.schema import ledger
from readiness.verdicts import Issue

PREREQUISITE_SQL = [SQL_DIR / "prerequisites" / "01_organization.sql", SQL_DIR / "prerequisites" / "02_auth.sql"]
EXECUTION_ORDER = [
    "Create organization table (must do first)",
    "Create auth schema & auth.users_extended (must do second)",
    "Verify Migration 0023 is applied",
    "Apply Migration 0024",
    "Populate test data (test org/user records)",
    "Test RLS policies (verify isolation works)",
    "Deploy to staging (full integration test)",
    "Deploy to production (after staging passes)",
]
# Who settled an accepted finding (readiness.rules.decisions' kinds).
DECIDED_BY = {"accepted": "the team's decisions file", "squawk": "squawk's own config or comment",
              "satisfied": "a setting of the deploy"}  # fmt: skip


def affected(issue: Issue) -> str:
    """How many checks a cause failed or blocked, in which tasks."""
    tasks = ", ".join(map(str, issue.tasks))
    return f"{issue.checks} check{'s' if issue.checks != 1 else ''}" + (f" (task {tasks})" if tasks else "")


def requirement_words(issue: Issue) -> str:
    """What the issue breaks, as the ledger names it: its id, where it comes from, the words it quotes."""
    if not issue.requirement:
        return ""
    requirement = ledger.get(issue.requirement)
    return f"{requirement.id} ({requirement.source}: {requirement.cites}): “{requirement.quote}”"
