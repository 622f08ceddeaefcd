"""An existing database given by DSN: read it, dry-run 0024 in one transaction, always roll back.

The whole run shares one connection and one transaction: the migration is applied after a
savepoint, each test runs in a savepoint of its own, and the transaction is rolled back at
the end, so the target is never left changed. lock_timeout and statement_timeout bound every
wait. A test that needs the database as it was before 0024 rolls back to the first savepoint
and the migration is applied again afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import conninfo as libpq

from readiness.apply import ApplyError, apply_file
from readiness.database import MigrationState, Timeouts, connect, inspect
from readiness.errors import ReadinessUsageError

BEFORE_0024 = "SAVEPOINT readiness_before_0024"
BACK_TO_BEFORE_0024 = "ROLLBACK TO SAVEPOINT readiness_before_0024"


class Dsn(str):
    """A DSN whose repr hides its password: pytest prints fixture values in tracebacks."""

    def __repr__(self) -> str:
        return f"Dsn({describe(self)!r})"


def describe(dsn: str) -> str:
    """host:port/dbname as user: what the reports show of a DSN, never its password."""
    try:
        parts = libpq.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "an unparsable DSN"
    return (
        f"{parts.get('host', 'localhost')}:{parts.get('port', '5432')}/{parts.get('dbname', '?')}"
        f" as {parts.get('user', '?')}"
    )


def open_target(dsn: str, timeouts: Timeouts) -> psycopg.Connection:
    """Connect to the target, or raise a usage error saying what failed and what to check."""
    try:
        return connect(dsn, timeouts)
    except psycopg.ProgrammingError as error:
        raise ReadinessUsageError(f"The DSN given by --dsn / READINESS_DSN is not valid: {error}") from None
    except psycopg.OperationalError as error:
        cause = str(error).strip().replace(dsn, describe(dsn))
        hint = "check the password" if "password" in cause else "check host, port, database name and network access"
        raise ReadinessUsageError(f"Cannot connect to the target {describe(dsn)}: {cause} ({hint}).") from None


def server_major(conn: psycopg.Connection) -> tuple[int, str]:
    """The target's major version and its version ('17.5')."""
    number, version = conn.execute(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version')"
    ).fetchone()
    conn.rollback()
    return number // 10000, version


class TargetSession:
    """The run's one connection to the target, holding the transaction every test runs inside."""

    def __init__(self, dsn: str, timeouts: Timeouts, migration: Path, required_major: int):
        self.conn = open_target(dsn, timeouts)
        major, self.version = server_major(self.conn)
        if major != required_major:
            self.conn.close()
            raise ReadinessUsageError(
                f"The target {describe(dsn)} runs {self.version.split(',')[0]}, but migration 0024 targets "
                f"PostgreSQL {required_major}. Point --dsn at a PostgreSQL {required_major} server, or pass "
                f"--pg-major={major} to verify against {major} on purpose."
            )
        self.migration = migration
        self.state = MigrationState(dsn, migration, on_target=True)
        self.conn.read_only = True  # the look before the dry run writes nothing, even in a transaction
        inspect(self.conn, self.state)
        self.conn.rollback()
        self.conn.read_only = False
        self.conn.execute(BEFORE_0024)
        self.apply()

    def apply(self) -> None:
        """Apply the migration after the first savepoint; on failure return to it and record why."""
        try:
            apply_file(self.conn, self.migration)
        except ApplyError as error:
            self.conn.execute(BACK_TO_BEFORE_0024)
            self.state.error = error

    @contextmanager
    def before_migration(self) -> Iterator[psycopg.Connection]:
        """The target as it was before 0024, inside a savepoint; 0024 is applied again afterwards."""
        self.conn.execute(BACK_TO_BEFORE_0024)
        try:
            with self.conn.transaction(force_rollback=True):
                yield self.conn
        finally:
            if self.state.error is None:
                self.apply()

    def close(self) -> None:
        """Roll back everything the run did, and disconnect."""
        # Closing alone rolls back too (the server ends the session's transaction), even when
        # Ctrl-C left a statement in flight and a ROLLBACK could not be sent.
        if not self.conn.closed:
            try:
                self.conn.rollback()
            finally:
                self.conn.close()
