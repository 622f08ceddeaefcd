"""Organisations, users and sync rows, inserted as the table owner for tests to act upon."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

# The least each sync table needs for a valid row; tests override what they exercise.
MINIMAL_ROWS: dict[str, dict[str, Any]] = {
    "sync_preview_cache": {"sync_type": "odoo", "entity_type": "product"},
    "sync_progress": {"sync_type": "odoo", "entity_type": "product", "job_id": "job", "total_items": 100},
    "sync_activity_log": {"action": "sync_start", "status": "pending"},
}
# Each sync table's column naming the user who acted.
USER_COLUMNS = {"sync_preview_cache": "computed_by", "sync_progress": "initiated_by", "sync_activity_log": "user_id"}
SYNC_TABLES = tuple(MINIMAL_ROWS)


def insert(conn: psycopg.Connection, table: str, **values: Any) -> dict[str, Any]:
    """Insert one row into `table`, returning it as a dict."""
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
        sql.Identifier(*table.split(".")),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, list(values.values())).fetchone()
    assert row is not None
    return row


def organization(conn: psycopg.Connection, name: str) -> UUID:
    """A new organisation."""
    return insert(conn, "organization", name=name, slug=f"{name}-{uuid.uuid4().hex[:8]}")["id"]


def user(conn: psycopg.Connection, org_id: UUID, email: str | None = None) -> UUID:
    """A new user of `org_id`: a row of auth.users_extended."""
    user_id = uuid.uuid4()
    insert(conn, "auth.users_extended", id=user_id, org_id=org_id, email=email or f"{user_id}@example.test")
    return user_id


def sync_row(conn: psycopg.Connection, table: str, org_id: UUID, user_id: UUID | None = None, **values: Any) -> dict:  # type: ignore[type-arg]
    """A valid row of a sync table for `org_id`, acted by `user_id`, with `values` overriding the minimum."""
    row = {**MINIMAL_ROWS[table], "org_id": org_id, **values}
    if table == "sync_progress":
        row.setdefault("sync_id", uuid.uuid4())
    if user_id is not None:
        row[USER_COLUMNS[table]] = user_id
    return insert(conn, table, **row)


@dataclass(frozen=True)
class Tenant:
    """An organisation, one of its users, and one row of each sync table."""

    org_id: UUID
    user_id: UUID
    rows: dict[str, UUID]  # table -> id of its row


def tenant(conn: psycopg.Connection, name: str) -> Tenant:
    """An organisation with a user and a row in each sync table."""
    org_id = organization(conn, name)
    user_id = user(conn, org_id)
    rows = {table: sync_row(conn, table, org_id, user_id)["id"] for table in SYNC_TABLES}
    return Tenant(org_id, user_id, rows)
