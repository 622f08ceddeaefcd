"""Act as a Supabase client inside the test's transaction: a role, and JWT claims auth.uid() reads.

Supabase's PostgREST runs each request as `SET LOCAL ROLE <role>` with the verified JWT in
`request.jwt.claims`; this does the same, and restores the owner on exit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus

from readiness.schema.expected import AUTHENTICATED
from readiness.verdicts import REFUSED


@contextmanager
def acting_as(conn: psycopg.Connection, role: str, user_id: UUID | None = None) -> Iterator[psycopg.Connection]:
    """Run the block as `role` with claims {sub: user_id, role}; `anon` carries no subject."""
    claims: dict[str, str] = {"role": role}
    if user_id is not None:
        claims["sub"] = str(user_id)
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
    try:
        yield conn
    finally:
        if conn.info.transaction_status != TransactionStatus.INERROR:
            conn.execute("RESET ROLE")
            conn.execute("SELECT set_config('request.jwt.claims', '', true)")


def as_user(conn: psycopg.Connection, user_id: UUID) -> AbstractContextManager[psycopg.Connection]:
    """Act as an authenticated user."""
    return acting_as(conn, AUTHENTICATED, user_id)


@contextmanager
def refused(conn: psycopg.Connection, sqlstate: str, message: str | None = None) -> Iterator[None]:
    """The block must fail with `sqlstate` (and `message`, if given).

    It runs in a savepoint, so the test's transaction, and the role it acts as, stay usable.
    """
    try:
        with conn.transaction():
            yield
    except psycopg.Error as error:
        found = error.diag.message_primary
        if error.sqlstate != sqlstate or (message is not None and found != message):
            pytest.fail(f"expected refusal {sqlstate} {message or ''}, PostgreSQL answered {error.sqlstate} {found}")
    else:
        pytest.fail(f"expected PostgreSQL to refuse with {sqlstate} {message or ''}, it accepted the statement")


def attempt(conn: psycopg.Connection, what: Callable[[], object]) -> psycopg.Error | None:
    """Run `what` in a savepoint: the error PostgreSQL refused it with, or None when it was accepted.

    The test's transaction, and the role it acts as, stay usable either way."""
    try:
        with conn.transaction():
            what()
    except psycopg.Error as error:
        refused = REFUSED.get(None)  # the running check's record's
        if refused is not None and isinstance(error, psycopg.errors.InsufficientPrivilege):
            refused.append(error.diag.message_primary)
        return error
    return None


@contextmanager
def accepted(conn: psycopg.Connection, what: str) -> Iterator[None]:
    """The block must succeed, in a savepoint; a refusal fails the test saying what was attempted and the answer."""
    try:
        with conn.transaction():
            yield
    except psycopg.Error as error:
        pytest.fail(
            f"{what}: expected PostgreSQL to accept it, it refused: {error.sqlstate} {error.diag.message_primary}",
            pytrace=False,
        )
