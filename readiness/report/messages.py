"""Failure messages a DBA can act on: what was expected, what was found, the difference."""

from __future__ import annotations

from collections.abc import Mapping, Set
from pathlib import Path

import psycopg

from readiness.schema.apply import ApplyError, first_reference
from readiness.schema.expected import Prerequisite
from readiness.schema.prerequisites import prerequisite_exists
from readiness.verdicts import Issue


def differences(what: str, expected: Mapping | Set, found: Mapping | Set) -> str:  # type: ignore[type-arg]
    """'columns of t: missing a; unexpected b; differs c: expected X, found Y'."""
    parts = []
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        missing = [f"{key} {expected[key]}" for key in expected if key not in found]
        extra = [f"{key} {found[key]}" for key in found if key not in expected]
        changed = [
            f"{key}: expected {expected[key]}, found {found[key]}"
            for key in expected
            if key in found and expected[key] != found[key]
        ]
    else:
        missing = sorted(map(str, set(expected) - set(found)))
        extra = sorted(map(str, set(found) - set(expected)))
        changed = []
    if missing:
        parts.append("missing " + "; ".join(missing))
    if extra:
        parts.append("unexpected " + "; ".join(extra))
    if changed:
        parts.append("differs " + "; ".join(changed))
    return f"{what}: " + (" | ".join(parts) or "no difference")


def apply_error_issue(error: ApplyError) -> Issue:
    """The CRITICAL blocking issue of a migration that does not apply, located at its file:line:column."""
    return Issue("CRITICAL", f"{error.statement} - {error.message}", str(error.location), at=error.location)


def missing_prerequisite(conn: psycopg.Connection, prerequisite: Prerequisite, migration: Path) -> Issue | None:
    """The CRITICAL blocking issue of `prerequisite` when it is missing from the database, else None."""
    return None if prerequisite_exists(conn, prerequisite) else missing_prerequisite_issue(prerequisite, migration)


def missing_prerequisite_issue(prerequisite: Prerequisite, migration: Path) -> Issue:
    """The CRITICAL blocking issue of a missing prerequisite, located where the migration first needs it."""
    where = first_reference(migration, prerequisite.name)
    line = where.path.read_text().splitlines()[where.line - 1].strip() if where else ""
    message = f"{prerequisite.label} DOES NOT EXIST" + (f"; 0024 needs it: {line}" if line else "")
    return Issue("CRITICAL", message, str(where) if where else str(migration), at=where)
