"""Organisations, users and sync rows, inserted as the table owner for tests to act upon.

Rows come from the catalog of the migration under test, not from our design: a test names only the columns it
exercises (by role, through readiness.schema.column_roles), every other column takes a value its type and the
migration's own rules accept (readiness.acting.rows), and a row is found again by its primary key, whatever its
columns and types (readiness.acting.keys). A tenant's rows range over every column's domain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from readiness.acting import keys, rows
from readiness.acting.values import fresh
from readiness.schema import catalog
from readiness.schema.expected import SYNC_TABLES, USER_COLUMNS
from readiness.verdicts import blocked

__all__ = ["SYNC_TABLES", "USER_COLUMNS", "Tenant", "organization", "user", "new_row", "sync_row", "tenants"]


def fresh_value_of(conn: psycopg.Connection, table: str, column: str) -> Any:
    """A new value of the type `table`.`column` has in the migration under test."""
    return fresh(column, catalog.columns(conn, table)[column].type)


def organization(conn: psycopg.Connection, name: str) -> Any:
    """A new organisation, with a value for every column it requires; its key (the report's organization(id))."""
    values = {"name": name, "slug": f"{name}-{uuid.uuid4().hex[:8]}"}
    present = catalog.columns(conn, "public.organization")
    hard = {k: v for k, v in values.items() if k in present}
    return rows.admitted(conn, "public.organization", hard, domains=[], trusted=True)["id"]


def user(conn: psycopg.Connection, org_id: Any, email: str | None = None) -> UUID:
    """A new user of `org_id`: a row of auth.users_extended whose id is the JWT's subject."""
    user_id = uuid.uuid4()
    values = {"id": user_id, "org_id": org_id, "email": email or f"{user_id}@example.test"}
    present = catalog.columns(conn, "auth.users_extended")
    rows.admitted(conn, "auth.users_extended", {k: v for k, v in values.items() if k in present}, domains=[],
                  trusted=True)  # fmt: skip
    return user_id


def _hard(table: str, org_id: Any, user_id: UUID | None, values: dict[str, Any]) -> dict[str, Any]:
    hard = {"org_id": org_id, **values}
    if user_id is not None:
        hard[USER_COLUMNS[table]] = user_id
    return hard


def new_row(conn: psycopg.Connection, table: str, org_id: Any, user_id: UUID | None = None, **values: Any) -> dict:  # type: ignore[type-arg]
    """The values of a row of a sync table for `org_id`, acted by `user_id`, with `values` as given, that the
    migration's own rules accept (tried as the owner, rolled back): a refusal of it by another role is RLS's."""
    return rows.admissible(conn, table, _hard(table, org_id, user_id, values))


def sync_row(conn: psycopg.Connection, table: str, org_id: Any, user_id: UUID | None = None, as_given: bool = False,
             **values: Any) -> dict:  # type: ignore[type-arg]  # fmt: skip
    """A row of a sync table for `org_id`, acted by `user_id`, with `values` as given; inserted and returned as
    stored. N/A (readiness.acting.rows.Refused) when the migration's rules refuse every such row; `as_given`: the
    other columns left to their defaults, and PostgreSQL's refusal raised as it is (the check is of that refusal)."""
    hard = _hard(table, org_id, user_id, values)
    if as_given:
        return rows.insert(conn, table, rows.complete(conn, table, hard))
    return rows.admitted(conn, table, hard)


@dataclass(frozen=True)
class Tenant:
    """An organisation, one of its users, and its rows of each sync table over every column's domain."""

    org_id: Any
    user_id: UUID
    rows: dict[str, tuple[keys.Key, ...]]  # table -> the primary keys of its rows
    users: tuple[UUID, ...] = ()  # who its rows' user columns name: its user, another organisation's, a third's

    def names(self, other: Tenant, label: str = "A", other_label: str = "B") -> dict[Any, str]:
        """Who each key is, in words, for a leak's description."""
        found: dict[Any, str] = {self.org_id: f"organisation {label}", other.org_id: f"organisation {other_label}",
                                 self.user_id: f"a user of organisation {label}",
                                 other.user_id: f"a user of organisation {other_label}"}  # fmt: skip
        for user_id in self.users[2:]:
            found.setdefault(user_id, "a user of a third organisation")
        return found


def tenants(conn: psycopg.Connection, count: int = 2, name: str = "org") -> tuple[Tenant, ...]:
    """`count` organisations, a user of each, and rows of each in every sync table over every column's domain: a
    user column names a user of the row's organisation, of another, of a third organisation that holds no rows,
    or none. BLOCKED when the migration's rules accept no row of a table at all."""
    orgs = [organization(conn, f"{name}-{chr(97 + i)}") for i in range(count)]
    users = [user(conn, org_id) for org_id in orgs]
    third = user(conn, organization(conn, f"{name}-third"))
    made = []
    for org_id, user_id in zip(orgs, users, strict=True):
        others = [u for u in users if u != user_id]
        users_named = (user_id, others[0] if others else third, third)
        where = rows.context(conn, users_named)
        held = {table: tuple(keys.of(conn, table, row) for row in domain_rows(conn, table, org_id, where))
                for table in SYNC_TABLES}  # fmt: skip
        made.append(Tenant(org_id, user_id, held, users_named))
    return tuple(made)


# The rows a tenant's table was last made of, as symbolic values: a later tenant writes them in one statement.
_PLANS: dict[tuple[object, ...], list[dict[str, Any]]] = {}


def domain_rows(conn: psycopg.Connection, table: str, org_id: Any, where: rows.Context) -> list[dict[str, Any]]:
    """Rows of `org_id` in `table` in which every value of every column's domain the migration accepts appears."""
    key = (catalog.session(conn), table)
    if key in _PLANS:
        written = [rows.complete(conn, table, {"org_id": org_id, **{c: rows.resolve(conn, table, v, c, where)
                                                                    for c, v in state.items()}})
                   for state in _PLANS[key]]  # fmt: skip
        try:
            return rows.insert_many(conn, table, written)
        except rows.REFUSALS:
            del _PLANS[key]  # the catalog changed under the plan: search again
    domains = rows.axes(conn, table)
    made: list[rows.Admitted] = []
    try:
        for wanted in rows.covering(domains):
            made.append(rows.admit(conn, table, {"org_id": org_id}, wanted, where, domains, probe=True))
    except rows.Refused as refused:
        blocked(f"the suite could not make a row of {table} that the migration accepts ({refused.reason}): the "
                "isolation checks need rows of two organisations in each sync table")  # fmt: skip
    seen = {(axis.column, repr(value)) for done in made for axis in domains for value in axis.values
            if _holds(conn, table, done.row, axis.column, value, where)}  # fmt: skip
    for axis in domains:  # a value no covering row kept, tried on its own
        for value in axis.values:
            if (axis.column, repr(value)) in seen:
                continue
            try:
                done = rows.admit(conn, table, {"org_id": org_id, axis.column: value}, None, where, domains,
                                  probe=True)  # fmt: skip
            except rows.Refused:
                continue  # the migration's rules make the value impossible: no row of it can leak
            made.append(done)
            if not _holds(conn, table, done.row, axis.column, value, where):
                break  # the migration sets this column itself (a trigger): its other values cannot be written
            seen.add((axis.column, repr(value)))
    _PLANS[key] = [{column: value for column, value in done.state.items() if column != "org_id"} for done in made]
    return [done.row for done in made]


def domain_values(conn: psycopg.Connection, table: str, tenant: Tenant) -> list[dict[str, Any]]:
    """The values of rows of the tenant's organisation over every column's domain, as its rows were written (with
    new keys): for an INSERT another role tries, whose refusal must then be RLS's."""
    where = rows.context(conn, tenant.users)
    plan = _PLANS.get((catalog.session(conn), table))
    if plan is None:
        with conn.transaction(force_rollback=True):
            domain_rows(conn, table, tenant.org_id, where)
        plan = _PLANS[(catalog.session(conn), table)]
    return [rows.complete(conn, table, {"org_id": tenant.org_id, **{c: rows.resolve(conn, table, v, c, where)
                                                                     for c, v in state.items()}})
            for state in plan]  # fmt: skip


def _holds(conn: psycopg.Connection, table: str, row: dict[str, Any], column: str, value: Any,
           where: rows.Context) -> bool:  # fmt: skip
    """Whether the stored row holds the domain value asked for (a fresh value counts as kept)."""
    if value is rows.FRESH:
        return True
    wanted = rows.resolve(conn, table, value, column, where)
    return bool(row.get(column) == getattr(wanted, "obj", wanted))
