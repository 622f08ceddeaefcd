"""Rows found again by their primary key, whatever the migration named and typed its key columns.

The report names no key column: a uuid `id`, a bigint identity, or (id, created_at) on the partitioned
log are all the migration's choice. A Key is the tuple of a row's primary-key values, in key order.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from readiness.schema import catalog
from readiness.verdicts import blocked

Key = tuple[Any, ...]


def columns(conn: psycopg.Connection, table: str) -> tuple[str, ...]:
    """The primary-key columns of `table`; a check following a row is BLOCKED on a table without one."""
    found = catalog.primary_key(conn, table)
    if not found:
        blocked(f"{table} has no primary key: the checks that follow one row need a key to find it again")
    return found


def of(conn: psycopg.Connection, table: str, row: dict[str, Any]) -> Key:
    """The key of a row read whole (RETURNING *)."""
    return tuple(row[column] for column in columns(conn, table))


def where(conn: psycopg.Connection, table: str, key: Key) -> sql.Composed:
    """`(a, b) = (%s, %s)` for the key columns of `table`: pass `key` as its parameters."""
    names = columns(conn, table)
    return sql.SQL("({}) = ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names))
    )


def selected(conn: psycopg.Connection, table: str) -> sql.Composed:
    """The key columns of `table`, for a SELECT list."""
    return sql.SQL(", ").join(map(sql.Identifier, columns(conn, table)))


def visible(conn: psycopg.Connection, table: str) -> set[Key]:
    """The keys of the rows of `table` the current role sees."""
    query = sql.SQL("SELECT {} FROM {}").format(selected(conn, table), sql.Identifier(table))
    return {tuple(row) for row in conn.execute(query)}


def value(conn: psycopg.Connection, table: str, column: str, key: Key) -> list[Any]:
    """`column` of the row `key`, as a list: empty when the current role sees no such row."""
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.Identifier(column), sql.Identifier(table), where(conn, table, key)
    )
    return [row[0] for row in conn.execute(query, key)]
