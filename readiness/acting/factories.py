"""Organisations, users and sync rows, inserted as the table owner for tests to act upon.

Rows come from the catalog of the migration under test, not from our design: every NOT NULL
column without a default gets a value of its type, a test names only the columns it exercises
(by role, through readiness.schema.column_roles), and a row is found again by its primary key, whatever its
columns and types (readiness.acting.keys).
"""

from __future__ import annotations

import datetime
import decimal
import random
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from readiness.acting import keys
from readiness.schema import catalog
from readiness.schema.expected import SYNC_TABLES, USER_COLUMNS

TEXTS = ("text", "character varying", "character", "citext", "name")
NUMBERS = ("smallint", "integer", "bigint", "numeric", "real", "double precision")


class Unfillable(Exception):
    """A NOT NULL column without a default whose type the factories cannot make a value of."""


def base_type(type_name: str) -> str:
    """format_type() without its modifier: 'character varying(64)' -> 'character varying'."""
    return type_name.split("(")[0].removesuffix("[]").strip()


def value_of(column: catalog.Required) -> Any:
    """A valid value for a required column, from its type alone."""
    if column.labels:
        return column.labels[0]
    return fresh_value(column.name, column.type, zero=True)


def fresh_value(name: str, type_name: str, zero: bool = False) -> Any:
    """A value of the type `type_name` for the column `name`, new each call (a number is 0 when `zero`)."""
    base = base_type(type_name)
    if type_name.endswith("[]"):
        return []
    if base in TEXTS:
        text = f"{name}-{uuid.uuid4().hex[:8]}"
        limit = catalog.type_length(type_name)
        return text[-limit:] if limit else text
    if base in NUMBERS:
        if zero:
            return 0
        number = random.randint(1, 30_000)  # fits a smallint
        return decimal.Decimal(number) if base == "numeric" else number
    if base == "uuid":
        return uuid.uuid4()
    if base in ("jsonb", "json"):
        return Jsonb({} if zero else {name: uuid.uuid4().hex})
    if base.startswith("timestamp"):
        return datetime.datetime.now(datetime.UTC)
    if base == "date":
        return datetime.date.today()
    if base == "boolean":
        return False
    if base == "interval":
        return datetime.timedelta(0)
    if base == "bytea":
        return uuid.uuid4().bytes
    raise Unfillable(f"cannot make a value of type {type_name} for the NOT NULL column {name} without a default")


def fresh_value_of(conn: psycopg.Connection, table: str, column: str) -> Any:
    """A new value of the type `table`.`column` has in the migration under test."""
    return fresh_value(column, catalog.columns(conn, table)[column].type)


def complete(conn: psycopg.Connection, table: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` and a value for every other NOT NULL column of `table` that has no default."""
    missing = [column for column in catalog.required_columns(conn, table) if column.name not in values]
    return {**{column.name: value_of(column) for column in missing}, **values}


def insert(conn: psycopg.Connection, table: str, **values: Any) -> dict[str, Any]:
    """Insert one row into `table`, returning it as a dict."""
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
        sql.Identifier(*table.split(".")),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, list(values.values())).fetchone()
    assert row is not None, f"INSERT INTO {table} returned no row"
    return row


def organization(conn: psycopg.Connection, name: str) -> Any:
    """A new organisation, with a value for every column it requires; its key (the report's organization(id))."""
    values = {"name": name, "slug": f"{name}-{uuid.uuid4().hex[:8]}"}
    present = catalog.columns(conn, "public.organization")
    return insert(conn, "organization", **complete(conn, "public.organization",
                                                  {k: v for k, v in values.items() if k in present}))["id"]  # fmt: skip


def user(conn: psycopg.Connection, org_id: Any, email: str | None = None) -> UUID:
    """A new user of `org_id`: a row of auth.users_extended whose id is the JWT's subject."""
    user_id = uuid.uuid4()
    values = {"id": user_id, "org_id": org_id, "email": email or f"{user_id}@example.test"}
    present = catalog.columns(conn, "auth.users_extended")
    insert(conn, "auth.users_extended", **complete(conn, "auth.users_extended",
                                                   {k: v for k, v in values.items() if k in present}))  # fmt: skip
    return user_id


def new_row(conn: psycopg.Connection, table: str, org_id: Any, user_id: UUID | None = None, **values: Any) -> dict:  # type: ignore[type-arg]
    """The values of a valid row of a sync table for `org_id`, acted by `user_id`, with `values` as given."""
    row = {"org_id": org_id, **values}
    if user_id is not None:
        row[USER_COLUMNS[table]] = user_id
    return complete(conn, table, row)


def sync_row(conn: psycopg.Connection, table: str, org_id: Any, user_id: UUID | None = None, **values: Any) -> dict:  # type: ignore[type-arg]
    """A valid row of a sync table for `org_id`, acted by `user_id`, with `values` as given; inserted and returned."""
    return insert(conn, table, **new_row(conn, table, org_id, user_id, **values))


@dataclass(frozen=True)
class Tenant:
    """An organisation, one of its users, and one row of each sync table."""

    org_id: Any
    user_id: UUID
    rows: dict[str, keys.Key]  # table -> the primary key of its row


def tenant(conn: psycopg.Connection, name: str) -> Tenant:
    """An organisation with a user and a row in each sync table."""
    org_id = organization(conn, name)
    user_id = user(conn, org_id)
    rows = {table: keys.of(conn, table, sync_row(conn, table, org_id, user_id)) for table in SYNC_TABLES}
    return Tenant(org_id, user_id, rows)
