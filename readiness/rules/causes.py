"""Root causes: a check whose subject the migration did not create is BLOCKED by that missing object.

The existence checks (marked `existence`) fail and name what is missing; every other check that then
fails is BLOCKED by it instead of failing with the driver's UndefinedTable, so the sign-off lists one
blocking issue per cause with the number of checks it blocks, as the report marks tasks BLOCKED.
A table whose RLS breaks the report's rule (readiness.rules.rls) is a cause too: every failed check marked as
using it (`uses(table)`) counts towards that one issue, as failed, not blocked: each is a proof. So is a
privilege an API role lacks (readiness.rules.privileges): the checks PostgreSQL refuses for it are BLOCKED by it.

All three are read once, before any check of 0024 runs, into one Causes value (find), which
readiness.plugin.outcomes reads for every failed check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
import pytest

from readiness.rules import privileges, rls
from readiness.schema import catalog, expected
from readiness.verdicts import Cause

# kind of object -> the cause a missing one is reported as (its names filled in)
MISSING = {
    "tables": "0024 did not create the table(s) {} the report requires (its sections 3 and 6): every check of them "
    "is BLOCKED until it does",
    "enums": "0024 did not create the enum type(s) {} the report requires (its section 5, labels in order)",
    "columns": "0024 did not create the column(s) {} the report names (by its indexes, keys or functions): every "
    "check that needs them is BLOCKED until it does; a column named otherwise must be renamed",
    "functions": "0024 did not create the function(s) {} the report requires (its section 4, with the event each "
    "fires on): the checks of what they do are BLOCKED until it does",
    "indexes": "0024 did not create the index(es) {} the report requires (its section 3): the checks that use them "
    "are BLOCKED until it does",
}
# Without these nothing else can be checked; a missing function blocks only the checks of what it does.
BLOCKS_EVERYTHING = ("tables", "enums", "columns")
BLOCKS_TASK = {"functions": 4}
# A missing object also blocks the checks marked as using it (@pytest.mark.uses(name)), not the others of its task.


@dataclass
class Causes:
    """What the applied 0024 lacks or breaks, that other checks' failures follow from."""

    missing: dict[str, list[str]] = field(default_factory=dict)  # kind -> the report's objects 0024 did not create
    rls: dict[str, list[Cause]] = field(default_factory=dict)  # table -> how its RLS breaks the report's rule
    privileges: list[privileges.Gap] = field(default_factory=list)  # what an API role lacks that 0024 needs
    privileges_unread: str | None = None  # why the privileges could not be read, when they could not


CAUSES_KEY = pytest.StashKey[Causes]()


def find(conn: psycopg.Connection) -> Causes:
    """The causes in the database `conn` holds 0024 in, read in the caller's transaction (rolled back after)."""
    causes = Causes(missing=missing_objects(conn))
    present = [table for table in expected.CONTRACT_COLUMNS if table not in causes.missing.get("tables", ())]
    causes.rls = rls.faults(conn, present)
    try:
        with conn.transaction():
            causes.privileges = privileges.gaps(conn, [f"public.{table}" for table in present])
    except psycopg.Error as error:  # the privilege check fails saying so; every other check still runs
        causes.privileges_unread = f"{error.sqlstate} {error.diag.message_primary}"
    return causes


def missing_objects(conn: psycopg.Connection) -> dict[str, list[str]]:
    """The report's tables, columns, enums, functions and indexes 0024 did not create, by kind (none: absent)."""
    functions = catalog.functions(conn)
    tables = {t: catalog.relation_exists(conn, f"public.{t}") for t in expected.CONTRACT_COLUMNS}
    indexes = catalog.indexes(conn, [table for table, exists in tables.items() if exists])
    missing = {
        "tables": [table for table, exists in tables.items() if not exists],
        "columns": [
            f"{table}.{column}"
            for table, exists in tables.items()
            if exists
            for column in expected.CONTRACT_COLUMNS[table].keys() - catalog.columns(conn, table).keys()
        ],
        "enums": [enum for enum in expected.ENUMS if not catalog.enum_labels(conn, enum)],
        "functions": [name for name in expected.FUNCTION_NAMES if name not in functions],
        "indexes": sorted(  # of the tables there: a missing table is the cause of its indexes' absence
            name for name, index in expected.INDEXES.items() if tables[index.table] and name not in indexes
        ),
    }
    return {kind: names for kind, names in missing.items() if names}


def cause_of(kind: str, missing: dict[str, list[str]]) -> Cause:
    """The cause a missing kind of object is reported as, about those objects."""
    return Cause(MISSING[kind].format(", ".join(missing[kind])), tuple(missing[kind]))


def blocked_by(task: int, missing: dict[str, list[str]], uses: tuple[str, ...] = ()) -> Cause | None:
    """What blocks a failing check of `task` that uses the objects `uses`, when the migration did not create
    what it needs; else None."""
    for kind in BLOCKS_EVERYTHING:
        if missing.get(kind):
            return cause_of(kind, missing)
    for kind, blocked_task in BLOCKS_TASK.items():
        if missing.get(kind) and task == blocked_task:
            return cause_of(kind, missing)
    for kind in MISSING:
        if set(missing.get(kind, ())) & set(uses):
            return cause_of(kind, missing)
    return None


def privilege_cause(denied: list[str], gaps: list) -> Cause | None:  # type: ignore[type-arg]
    """The missing privilege a failed check follows from: the gap whose object PostgreSQL named refusing it
    ("permission denied for table users_extended"); else None (a check failing otherwise keeps its own failure)."""
    for gap in gaps:
        if any(refusal.endswith(f" {gap.kind} {name}") for refusal in denied for name in gap.objects):
            return Cause(str(gap.message), tuple(gap.objects))
    return None


def rls_cause(uses: tuple[str, ...], faulty: dict[str, list[Cause]]) -> Cause | None:
    """The cause of a failed check of the tables `uses` when one of them breaks the report's RLS rule; else None."""
    for table in uses:
        if table in faulty:
            how = "; ".join(fault.text for fault in faulty[table])
            return Cause(
                f"RLS on {table} does not keep tenants apart as the report requires (RLS on, its policies for their "
                f"commands, every row they let through of the caller's organisations): {how}. Every failed check of "
                f"{table}'s isolation follows from it",
                tuple(dict.fromkeys((table, *(name for fault in faulty[table] for name in fault.about)))),
            )
    return None
