"""How a check ended, as a value: PASS, FAIL, BLOCKED by a cause, N/A because, or DIFFERS from our design.

A check that cannot run raises Blocked(cause) or NotApplicable(reason) (pytest skips it, keeping the value);
readiness.plugin.outcomes decides every check's Outcome (readiness.report.record) in one hook, from these and the
requirement the check enforces (readiness.schema.ledger), and the sign-off reads the Outcomes: no verdict is parsed
back out of text.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from _pytest.outcomes import Skipped

PASSED, FAILED, BLOCKED, NOT_APPLICABLE, DIFFERS, SKIPPED = "passed", "failed", "blocked", "n/a", "differs", "skipped"
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
BLOCKING_SEVERITIES = SEVERITIES[:2]


def severity_rank(level: str) -> int:
    """Where a finding of `level` is listed, worst first: CRITICAL, HIGH, then the others together."""
    return {"CRITICAL": 0, "HIGH": 1}.get(level, 2)


class Blocked(Skipped):
    """The check cannot run because something it needs is missing or broken: its cause, as the sign-off names it."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause, pytrace=False, _use_item_location=True)
        self.cause = cause


class NotApplicable(Skipped):
    """The check does not apply to this migration or database: why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, pytrace=False, _use_item_location=True)
        self.reason = reason


# How pytest's reports (terminal, junit, HTML) print them, as it prints its own Skipped: "BLOCKED: <cause>".
Blocked.__module__ = NotApplicable.__module__ = "builtins"
Blocked.__qualname__, NotApplicable.__qualname__ = "BLOCKED", "N/A"


def blocked(cause: str) -> NoReturn:
    """End the check BLOCKED by `cause`."""
    raise Blocked(cause)


def not_applicable(reason: str) -> NoReturn:
    """End the check N/A because of `reason`."""
    raise NotApplicable(reason)


@dataclass(frozen=True)
class Location:
    """A place in a file, printed as file:line:column (file:line when the column is not known)."""

    path: Path
    line: int
    column: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" + (f":{self.column}" if self.column is not None else "")


@dataclass(frozen=True)
class Issue:
    """A finding: blocking (CRITICAL, HIGH) or a recommendation (MEDIUM, LOW) that never changes the verdict."""

    severity: str  # CRITICAL, HIGH, MEDIUM, LOW
    message: str
    location: str
    checks: int = 1  # the checks this cause failed or blocked
    tasks: tuple[int, ...] = ()  # the validation tasks they belong to
    requirement: str | None = None  # the ledger id of what it breaks (readiness.schema.ledger)
    rule: str | None = None  # its own rule id (squawk:<rule>, splinter:<rule>), else its requirement's
    at: Location | None = None  # the file and line it is at, when it is at one (`location` says it in words)
    about: tuple[str, ...] = ()  # the objects it is about (tables, policies, indexes, functions, table.column) as
    # the database names them, set where it is found: a decision's @object and code scanning's line read these


@dataclass(frozen=True)
class Cause:
    """A root cause other checks' failures follow from (a missing table, a table's RLS): in words, and the objects
    it is about."""

    text: str
    about: tuple[str, ...] = ()


@dataclass(frozen=True)
class DesignDifference:
    """Where the migration under test chose otherwise than our own 0024, in what the report leaves open."""

    subject: str
    design: str  # what our 0024 has
    found: str  # what the migration under test has


# The running check's refusals, its Record's own list (readiness.report.record): readiness.acting.auth.attempt adds
# what PostgreSQL refused it for a lack of privilege, a cause its failure may be blocked by even when the check says
# it in its own words; the plugin points it at each check's record while the check runs.
REFUSED: ContextVar[list[str]] = ContextVar("refused")
