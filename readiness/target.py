"""An existing database given by DSN: read it, dry-run 0024 in one transaction, always roll back.

The whole run shares one connection and one transaction: the migration is applied after a
savepoint (or, deployed already, verified as it is), each test runs in a savepoint of its own,
and the transaction is rolled back at the end, so the target is never left changed.
lock_timeout and statement_timeout bound every wait. A test that needs the database as it was
before 0024 rolls back to the first savepoint and the migration is applied again afterwards;
with 0024 deployed, it runs after the rollback file, in a savepoint undone after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import conninfo as libpq

from readiness import deployment, drift, snapshot
from readiness.apply import ApplyError, apply_file
from readiness.database import MigrationState, Timeouts, connect, inspect, lint_findings
from readiness.errors import ReadinessUsageError

BEFORE_0024 = "SAVEPOINT readiness_before_0024"
BACK_TO_BEFORE_0024 = "ROLLBACK TO SAVEPOINT readiness_before_0024"
DEPLOYED = "SAVEPOINT readiness_deployed"


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
    """The run's one connection to the target, holding the transaction every test runs inside.

    What the target holds of 0024 decides what the run does (readiness.deployment): absent, the
    file is applied behind a savepoint (a dry run gating its deploy); present, the tests verify the
    deployed objects, and the rollback then the file are run once behind a savepoint to compare
    with them; partly present, nothing of 0024 is checked and the ways out are tried instead.
    """

    def __init__(self, dsn: str, timeouts: Timeouts, migration: Path, rollback: Path, required_major: int):
        self.conn = open_target(dsn, timeouts)
        major, self.version = server_major(self.conn)
        if major != required_major:
            self.conn.close()
            raise ReadinessUsageError(
                f"The target {describe(dsn)} runs {self.version.split(',')[0]}, but migration 0024 targets "
                f"PostgreSQL {required_major}. Point --dsn at a PostgreSQL {required_major} server, or pass "
                f"--pg-major={major} to verify against {major} on purpose."
            )
        self.migration, self.rollback = migration, rollback
        self.state = MigrationState(dsn, migration, on_target=True)
        self.conn.read_only = True  # the look before the dry run writes nothing, even in a transaction
        try:
            objects = deployment.created_objects(migration)
        except ApplyError as error:  # the file does not parse: the dry run says so, where
            objects, self.state.error = [], error
        self.state.held = held = deployment.read(self.conn, objects)
        inspect(self.conn, self.state)
        self.sequences = sequence_values(self.conn)
        self.conn.rollback()
        self.conn.read_only = False
        if held.state == deployment.PRESENT:
            self.state.deployed = self.state.baseline
            self.conn.execute(DEPLOYED)
            self.rebuild_from_the_file()
        elif held.state == deployment.PARTIAL:
            self.conn.execute(DEPLOYED)
            self.state.partial = self.ways_out(held)
        elif self.state.error is None:
            self.conn.execute(BEFORE_0024)
            self.apply()

    def apply(self) -> None:
        """Apply the migration after the first savepoint; on failure return to it and record why."""
        try:
            apply_file(self.conn, self.migration)
        except ApplyError as error:
            self.conn.execute(BACK_TO_BEFORE_0024)
            self.state.error = error

    def rebuild_from_the_file(self) -> None:
        """0024 present: the catalog before it (the rollback run on the deployed objects) and as the file builds it.

        Both inside a savepoint rolled back at once: the tests see the target as deployed.
        """
        try:
            with self.rolled_back():
                self.state.baseline = snapshot.take(self.conn)
                self.state.lint_before = lint_findings(self.conn)
                try:
                    with self.conn.transaction():
                        apply_file(self.conn, self.migration)
                        self.state.file_built = snapshot.take(self.conn)
                except ApplyError as error:
                    self.state.file_error = error
        except ApplyError as error:  # the rollback's: the file's is recorded above
            self.state.rollback_error = error

    def ways_out(self, held: deployment.TargetState) -> str:
        """0024 partly present: the one blocking cause, with what exists, what is missing, and each way out tried."""
        tried, compared = [], "the objects present could not be compared with the file (its rollback fails)"
        try:
            with self.rolled_back():
                left = deployment.read(self.conn, held.existing).existing
                if left:
                    tried.append(f"the rollback leaves {', '.join(map(str, left))}: it does NOT clean the target")
                else:
                    apply_file(self.conn, self.migration)
                    tried.append("the rollback leaves the target clean and 0024 then applies: this way out WORKS")
                    found = [d for d in drift.compare(self.state.baseline, snapshot.take(self.conn)) if d.deployed]
                    compared = f"the {len(held.existing)} objects present match what the file creates"
                    if found:
                        compared = "the objects present differ from what the file creates: " + "; ".join(
                            map(str, found)
                        )
        except ApplyError as error:
            tried.append(f"rollback then 0024 FAILS: {error}")
        resume = held.first_missing
        with self.conn.transaction(force_rollback=True):
            try:
                apply_file(self.conn, self.migration, start=resume.position)
                tried.append(
                    f"applying the rest of the file (from {resume.where}, {resume}) WORKS"
                    if deployment.read(self.conn, held.missing).state == deployment.PRESENT
                    else "applying the rest of the file runs but does not create every missing object"
                )
            except ApplyError as error:
                tried.append(f"applying the rest of the file FAILS: {error}")
        return (
            f"0024 is partly present on the target, as a deploy that stopped half-way leaves it: "
            f"{len(held.existing)} of the file's {len(held.existing) + len(held.missing)} objects exist "
            f"({deployment.listed(held.existing)}); missing: {deployment.listed(held.missing)}; {compared}. "
            f"Tried in the dry run (rolled back): {'; '.join(tried)}"
        )

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """Inside a savepoint undone on leaving: the target once the rollback file ran on it. ApplyError
        (the savepoint undone) when the rollback fails."""
        with self.conn.transaction(force_rollback=True):
            apply_file(self.conn, self.rollback)
            yield

    @contextmanager
    def before_migration(self) -> Iterator[psycopg.Connection]:
        """The target as it was before 0024, inside a savepoint; with 0024 deployed, as its rollback leaves it."""
        if self.state.held is not None and self.state.held.state == deployment.PRESENT:
            with self.rolled_back():
                yield self.conn
            return
        self.conn.execute(BACK_TO_BEFORE_0024)
        try:
            with self.conn.transaction(force_rollback=True):
                yield self.conn
        finally:
            if self.state.error is None:
                self.apply()

    def moved_sequences(self) -> list[str]:
        """The sequences the run advanced: nextval() is never rolled back."""
        try:
            now = sequence_values(self.conn)
        except psycopg.Error as error:  # the connection was lost, or the run interrupted mid-statement
            return [f"unknown: {str(error).strip()}"]
        return [f"{name}: {self.sequences.get(name)} -> {value}" for name, value in now.items()
                if value != self.sequences.get(name)]  # fmt: skip

    def close(self) -> None:
        """Roll back everything the run did, and disconnect."""
        # Closing alone rolls back too (the server ends the session's transaction), even when
        # Ctrl-C left a statement in flight and a ROLLBACK could not be sent.
        if not self.conn.closed:
            try:
                self.conn.rollback()
            finally:
                self.conn.close()


def sequence_values(conn: psycopg.Connection) -> dict[str, int | None]:
    """Every sequence's last value, read without advancing it."""
    rows = conn.execute("SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences").fetchall()
    return dict(rows)
