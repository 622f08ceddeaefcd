"""Column roles: which column of the migration under test plays each part the report's checks need.

The requirement comes from the report (a job has a total, a processed and a failed count that
validate_sync_progress_totals() constrains; an elapsed time and a speed that
update_sync_progress_elapsed() computes); only the column's name comes from the catalog. A role
is, in this order: set in the --columns file, the column the report names, or the one column
whose type and name fit. The sign-off lists each role, its column and how it was found.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import psycopg

from readiness.errors import ReadinessUsageError
from readiness.schema import catalog
from readiness.schema.expected import USER_COLUMNS, Column
from readiness.verdicts import blocked, not_applicable

INTEGERS = ("smallint", "integer", "bigint", "numeric")
DURATIONS = ("numeric", "double precision", "real", "interval", "integer", "bigint")
SPEEDS = ("numeric", "double precision", "real")

NAMED, DETECTED, CONFIGURED = "named by the report", "detected", "configured"


@dataclass(frozen=True)
class Role:
    """A part a column plays: named by the report, or found by its type and a pattern of names."""

    table: str
    name: str
    purpose: str
    column: str | None = None  # the name the report gives it
    types: tuple[str, ...] = ()  # format_type() families a detected column may have (prefix match)
    pattern: str | None = None  # a detected column's name matches this (re.search, case-insensitive)
    optional: bool = False  # the report does not require it: the checks of it are N/A without it


def _named(table: str, *columns: str) -> list[Role]:
    return [Role(table, column, f"{column}, named by the report", column=column) for column in columns]


COLUMN_ROLES: tuple[Role, ...] = (
    *_named("sync_preview_cache", "org_id", "computed_by", "sync_type", "cache_key", "expires_at", "computed_at"),
    *_named(
        "sync_progress",
        "org_id",
        "initiated_by",
        "sync_id",
        "job_id",
        "entity_type",
        "started_at",
        "updated_at",
        "completed_at",
    ),  # fmt: skip
    Role(
        "sync_progress", "status", "the job's status (the audit trigger logs each finish)", types=("sync_status_type",)
    ),
    Role(
        "sync_progress",
        "total",
        "items to sync (validate_sync_progress_totals)",
        types=INTEGERS,
        pattern="total|expected",
    ),  # fmt: skip
    Role(
        "sync_progress",
        "processed",
        "items processed (validate_sync_progress_totals, the speed)",
        types=INTEGERS,
        pattern="processed|done|completed_items|synced|succeeded",
    ),  # fmt: skip
    Role(
        "sync_progress",
        "failed",
        "items failed (a count of our design, beyond the report)",
        types=INTEGERS,
        pattern="fail|error",
        optional=True,
    ),  # fmt: skip
    Role(
        "sync_progress",
        "elapsed",
        "elapsed time (update_sync_progress_elapsed)",
        types=DURATIONS,
        pattern="elapsed|duration",
    ),  # fmt: skip
    Role(
        "sync_progress",
        "speed",
        "items per second (update_sync_progress_elapsed)",
        types=SPEEDS,
        pattern="per_sec|speed|throughput|rate",
    ),  # fmt: skip
    *_named("sync_activity_log", "org_id", "user_id", "sync_id", "action", "entity_type", "status", "created_at"),
)


@dataclass(frozen=True)
class Resolved:
    """A role's column and how it was found; `column` None when it could not be resolved (`how` says why)."""

    role: Role
    column: str | None
    how: str


class Columns:
    """The roles of the migration under test, resolved once per run."""

    def __init__(self, resolved: dict[tuple[str, str], Resolved]) -> None:
        self.resolved = resolved

    def get(self, table: str, role: str) -> str | None:
        return self.resolved[(table, role)].column

    def __getitem__(self, key: tuple[str, str]) -> str:
        """The column of (table, role); the test needing an unresolved role is BLOCKED, naming where to set it
        (N/A for a role the report does not require)."""
        found = self.resolved[key]
        if found.column is None:
            if found.role.optional:
                not_applicable(f"column role {key[0]}.{key[1]} ({found.role.purpose}): {found.how}")
            blocked(f"column role {key[0]}.{key[1]} ({found.role.purpose}): {found.how}")
        return found.column

    def user(self, table: str) -> str:
        return self[(table, USER_COLUMNS[table])]

    def lines(self) -> list[str]:
        """For the sign-off's Environment: every role, its column and how."""
        return [
            f"{table}.{role}: {found.column or 'UNRESOLVED'} ({found.how})"
            for (table, role), found in self.resolved.items()
        ]


def read_overrides(path: Path | None) -> dict[str, dict[str, str]]:
    """The --columns file: a TOML table per sync table, `role = "column"`."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ReadinessUsageError(f"--columns {path}: {error}. Give a TOML file such as:\n{EXAMPLE}") from None
    known = {(role.table, role.name) for role in COLUMN_ROLES}
    for table, entries in data.items():
        for role, column in entries.items() if isinstance(entries, dict) else [(None, entries)]:
            if (table, role) not in known or not isinstance(column, str):
                raise ReadinessUsageError(
                    f"--columns {path}: [{table}] {role} = {column!r} is not a column role. "
                    f"Roles: {', '.join(sorted(f'{t}.{r}' for t, r in known))}."
                )
    return data


EXAMPLE = '[sync_progress]\ntotal = "items_total"\nprocessed = "items_done"\nfailed = "items_failed"'


def resolve(conn: psycopg.Connection, overrides: dict[str, dict[str, str]]) -> Columns:
    """Every role of COLUMN_ROLES against the catalog of the migration under test."""
    tables = {
        table: catalog.columns(conn, table) if catalog.relation_exists(conn, f"public.{table}") else {}
        for table in {role.table for role in COLUMN_ROLES}
    }
    return Columns({(role.table, role.name): _resolve(role, tables[role.table], overrides) for role in COLUMN_ROLES})


def _resolve(role: Role, columns: dict[str, Column], overrides: dict[str, dict[str, str]]) -> Resolved:
    where = f'set it in the --columns file: [{role.table}] {role.name} = "<column>"'
    configured = overrides.get(role.table, {}).get(role.name)
    if configured is not None:
        if configured in columns:
            return Resolved(role, configured, CONFIGURED)
        return Resolved(role, None, f"the --columns file names {configured}, which {role.table} does not have")
    if not columns:
        return Resolved(role, None, f"{role.table} does not exist")
    if role.column is not None:
        if role.column in columns:
            return Resolved(role, role.column, NAMED)
        return Resolved(role, None, f"the report names {role.column}, which {role.table} does not have")
    fits = [
        name
        for name, column in columns.items()
        if column.type.startswith(role.types) and (role.pattern is None or re.search(role.pattern, name, re.I))
    ]
    if len(fits) == 1:
        return Resolved(role, fits[0], DETECTED)
    found = f"columns that fit: {', '.join(fits)}" if fits else "no column fits"
    return Resolved(role, None, f"{found}; {where}")
