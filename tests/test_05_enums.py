"""Task 5, Enum Types: the four enums, their labels in order, the columns they type, values refused."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors, sql

from readiness import catalog, expected

pytestmark = pytest.mark.readiness

ENUMS = sorted(expected.ENUMS)
# (table, column, enum) for every column the expected schema types with one of the enums
ENUM_COLUMNS = {
    (table, name, column.type)
    for table, columns in expected.TABLES.items()
    for name, column in columns.items()
    if column.type in expected.ENUMS
}


@pytest.mark.parametrize("enum", ENUMS)
def test_enum_labels_in_order(migrated: psycopg.Connection, enum: str) -> None:
    """Each enum has exactly the report's labels, in the report's order."""
    found = catalog.enum_labels(migrated, enum)
    assert found == expected.ENUMS[enum], (
        f"enum {enum}: expected labels {expected.ENUMS[enum]}, found {found or 'no such type'}"
    )


def test_columns_typed_by_enums(migrated: psycopg.Connection) -> None:
    """Exactly the expected columns of the sync tables are typed by the four enums."""
    found = catalog.enum_typed_columns(migrated, ENUMS)
    assert found == ENUM_COLUMNS, (
        f"enum-typed columns: missing {sorted(ENUM_COLUMNS - found)}, unexpected {sorted(found - ENUM_COLUMNS)}"
    )


@pytest.mark.parametrize("enum", ENUMS)
def test_value_outside_enum_rejected(migrated: psycopg.Connection, enum: str) -> None:
    """A value outside an enum is refused with PostgreSQL's invalid-input error (22P02)."""
    query = sql.SQL("SELECT %s::{}").format(sql.Identifier(enum))
    with pytest.raises(errors.InvalidTextRepresentation) as refused:
        migrated.execute(query, ("not_a_label",))
    assert refused.value.diag.message_primary == f'invalid input value for enum {enum}: "not_a_label"'


@pytest.mark.parametrize(("table", "column", "enum"), sorted(ENUM_COLUMNS))
def test_column_refuses_value_outside_enum(migrated: psycopg.Connection, table: str, column: str, enum: str) -> None:
    """Writing a value outside its enum into an enum-typed column is refused (22P02)."""
    query = sql.SQL("UPDATE {} SET {} = %s WHERE false").format(sql.Identifier(table), sql.Identifier(column))
    with pytest.raises(errors.InvalidTextRepresentation) as refused:
        migrated.execute(query, ("not_a_label",))
    assert refused.value.diag.message_primary == f'invalid input value for enum {enum}: "not_a_label"'
