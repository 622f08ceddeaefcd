"""Task 5, Enum Types: the four enums, their labels in order, the columns they type, values refused."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from readiness.acting.auth import attempt
from readiness.schema import catalog, design, expected

pytestmark = [pytest.mark.readiness, pytest.mark.task(5)]

ENUMS = sorted(expected.ENUMS)
INVALID_TEXT_REPRESENTATION = "22P02"  # what PostgreSQL answers to a value outside an enum
ENUM_COLUMNS = expected.ENUM_COLUMNS  # (table, column, enum) the report names


@pytest.mark.enforces("report.enums")
@pytest.mark.existence("enums")
@pytest.mark.parametrize("enum", ENUMS)
def test_enum_labels_in_order(migrated: psycopg.Connection, enum: str) -> None:
    """Each enum has exactly the report's labels, in the report's order."""
    found = catalog.enum_labels(migrated, enum)
    assert found == expected.ENUMS[enum], (
        f"enum {enum}: expected labels {expected.ENUMS[enum]}, found {found or 'no such type'}"
    )


@pytest.mark.enforces("report.enum-columns")
def test_columns_typed_by_enums(migrated: psycopg.Connection, columns, record) -> None:
    """The columns the report names, and the job's status, are typed by the report's enums."""
    found = catalog.enum_typed_columns(migrated, ENUMS)
    wanted = ENUM_COLUMNS | {("sync_progress", columns[("sync_progress", "status")], "sync_status_type")}
    ours = {(t, n, c.type) for t, cols in design.COLUMNS.items() for n, c in cols.items() if c.type in expected.ENUMS}
    if found != ours:
        record.differ("enum-typed columns", sorted(ours - found) or "the same", sorted(found - ours) or "the same")
    assert wanted <= found, f"enum-typed columns missing: {sorted(wanted - found)}"


@pytest.mark.enforces("report.enums")
@pytest.mark.parametrize("enum", ENUMS)
def test_value_outside_enum_rejected(migrated: psycopg.Connection, enum: str) -> None:
    """A value outside an enum is refused with PostgreSQL's invalid-input error (22P02)."""
    query = sql.SQL("SELECT %s::{}").format(sql.Identifier(enum))
    error = attempt(migrated, lambda: migrated.execute(query, ("not_a_label",)))
    found = f"refused: {error.sqlstate} {error.diag.message_primary}" if error else "accepted"
    assert error is not None and error.sqlstate == INVALID_TEXT_REPRESENTATION, (
        f"the value 'not_a_label' cast to {enum} was {found}, not refused as outside an enum (22P02)"
    )


@pytest.mark.enforces("report.enum-columns")
@pytest.mark.parametrize(("table", "column", "enum"), sorted(ENUM_COLUMNS))
def test_column_refuses_value_outside_enum(migrated: psycopg.Connection, table: str, column: str, enum: str) -> None:
    """Writing a value outside its enum into an enum-typed column is refused (22P02)."""
    query = sql.SQL("UPDATE {} SET {} = %s WHERE false").format(sql.Identifier(table), sql.Identifier(column))
    error = attempt(migrated, lambda: migrated.execute(query, ("not_a_label",)))
    found = f"refused: {error.sqlstate} {error.diag.message_primary}" if error else "accepted"
    assert error is not None and error.sqlstate == INVALID_TEXT_REPRESENTATION, (
        f"writing 'not_a_label' into {table}.{column} was {found}, not refused as outside the enum {enum} (22P02)"
    )
