"""Fixtures: the server, the database built once per run, and a connection rolled back after each test."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from pytest_postgresql.executors import PostgreSQLExecutor

from readiness import factories, server, volume
from readiness.apply import apply_file
from readiness.database import MigrationState, Timeouts, connect, create_ephemeral, create_with_prerequisites
from readiness.errors import ReadinessUsageError
from readiness.factories import Tenant
from readiness.signoff import BLOCKED_PREFIX, NA_PREFIX, SIGNOFF_KEY
from readiness.target import Dsn, TargetSession, describe, open_target

EXIT_USAGE_ERROR = 4

# Property tests: "readiness" is quick enough for every run; "thorough" for a deeper look
# (pytest --hypothesis-profile=thorough). No example database: a readiness run must not
# depend on what earlier runs found.
settings.register_profile("readiness", max_examples=25, deadline=None, database=None, print_blob=True)
settings.register_profile("thorough", max_examples=400, deadline=None, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "readiness"))


@pytest.fixture(scope="session")
def migration(pytestconfig: pytest.Config) -> Path:
    """The migration file under test (--migration)."""
    return pytestconfig.option.migration


@pytest.fixture(scope="session")
def rollback(pytestconfig: pytest.Config) -> Path:
    """Its rollback file (--rollback)."""
    return pytestconfig.option.rollback


@pytest.fixture(scope="session")
def timeouts(pytestconfig: pytest.Config) -> Timeouts:
    """lock_timeout and statement_timeout for every connection the suite opens."""
    return Timeouts(pytestconfig.getoption("lock_timeout"), pytestconfig.getoption("statement_timeout"))


@pytest.fixture(scope="session")
def pg_server(pytestconfig: pytest.Config) -> Iterator[PostgreSQLExecutor]:
    """An ephemeral PostgreSQL 17 cluster for the whole run; its log is kept in the report folder."""
    signoff = pytestconfig.stash[SIGNOFF_KEY]
    try:
        pg_ctl = server.find_pg_ctl(pytestconfig.getoption("postgresql_exec"), pytestconfig.getoption("pg_major"))
        version = server.server_version(pg_ctl)
        origin = f"The server found at {pg_ctl}"
        server.check_major(version, pytestconfig.getoption("pg_major"), origin)
    except ReadinessUsageError as error:
        pytest.exit(str(error), returncode=EXIT_USAGE_ERROR)
    signoff.environment.update(
        server_version=version, target="ephemeral cluster", pg_ctl=str(pg_ctl), os_user=str(os.geteuid())
    )
    log = pytestconfig.option.report_dir / "postgresql.log"
    started = time.perf_counter()
    with server.ephemeral_server(pg_ctl, keep_log=log) as executor:
        signoff.figures["server start (initdb + start)"] = f"{time.perf_counter() - started:.2f} s"
        yield executor


@pytest.fixture(scope="session")
def target_dsn(pytestconfig: pytest.Config) -> str | None:
    """The existing database to verify (--dsn or READINESS_DSN); None for the ephemeral cluster."""
    dsn = pytestconfig.getoption("dsn") or os.environ.get("READINESS_DSN")
    return Dsn(dsn) if dsn else None


@pytest.fixture(scope="session")
def target_session(target_dsn: str, pytestconfig: pytest.Config, timeouts: Timeouts) -> Iterator[TargetSession]:
    """The run's one transaction on the target: 0024 dry-run inside it, everything rolled back at the end."""
    try:
        session = TargetSession(target_dsn, timeouts, pytestconfig.option.migration, pytestconfig.getoption("pg_major"))
    except ReadinessUsageError as error:
        pytest.exit(str(error), returncode=EXIT_USAGE_ERROR)
    pytestconfig.stash[SIGNOFF_KEY].environment.update(
        server_version=session.version, target=f"{describe(target_dsn)} (dry run, rolled back)"
    )
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def migration_state(
    request: pytest.FixtureRequest, pytestconfig: pytest.Config, timeouts: Timeouts, target_dsn: str | None
) -> MigrationState:
    """Prerequisites and 0023 in place, then the 0024 under test applied (or its failure recorded)."""
    if target_dsn:
        return request.getfixturevalue("target_session").state
    pg = request.getfixturevalue("pg_server")
    started = time.perf_counter()
    state = create_ephemeral(pg.host, pg.port, pg.user, timeouts, pytestconfig.option.migration)
    elapsed = time.perf_counter() - started
    pytestconfig.stash[SIGNOFF_KEY].figures["schema build (prerequisites, 0023, 0024)"] = f"{elapsed:.2f} s"
    return state


@pytest.fixture(scope="session")
def session_connection(
    request: pytest.FixtureRequest, migration_state: MigrationState, timeouts: Timeouts, target_dsn: str | None
) -> Iterator[psycopg.Connection]:
    """One connection for the whole run; each test's work on it is rolled back."""
    if target_dsn:
        yield request.getfixturevalue("target_session").conn
        return
    with connect(migration_state.conninfo, timeouts) as conn:
        yield conn


@pytest.fixture
def db(session_connection: psycopg.Connection, target_dsn: str | None) -> Iterator[psycopg.Connection]:
    """The database under test, inside a transaction (a savepoint on a target) rolled back after the test."""
    if session_connection.closed:
        where = f"the target {describe(target_dsn)}" if target_dsn else "the ephemeral server"
        pytest.exit(
            f"The connection to {where} was lost during the run; the server rolled back everything the run did. "
            "The verdict is NOT APPROVED: run again once the database is reachable.",
            returncode=EXIT_USAGE_ERROR,
        )
    with session_connection.transaction(force_rollback=True):
        yield session_connection


@pytest.fixture(scope="session")
def readonly_connection(
    request: pytest.FixtureRequest, session_connection: psycopg.Connection, target_dsn: str | None, timeouts: Timeouts
) -> Iterator[psycopg.Connection]:
    """On a target, a second connection whose every transaction is READ ONLY; on the ephemeral cluster, the same one."""
    if not target_dsn:
        yield session_connection
        return
    conn = open_target(target_dsn, timeouts)
    conn.read_only = True
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def readonly_db(readonly_connection: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The database as committed, for the checks that need nothing of 0024: read-only on a target, rolled back."""
    with readonly_connection.transaction(force_rollback=True):
        yield readonly_connection


@pytest.fixture(scope="session")
def premigration_connection(pg_server: PostgreSQLExecutor, timeouts: Timeouts) -> Iterator[psycopg.Connection]:
    """A second database holding the prerequisites and 0023 only: 0024 never applied."""
    conninfo = create_with_prerequisites(pg_server.host, pg_server.port, pg_server.user, timeouts, "readiness_pre")
    with connect(conninfo, timeouts) as conn:
        yield conn


@pytest.fixture
def premigration(request: pytest.FixtureRequest, target_dsn: str | None) -> Iterator[psycopg.Connection]:
    """The database before 0024, inside a transaction rolled back after the test."""
    if target_dsn:
        with request.getfixturevalue("target_session").before_migration() as conn:
            yield conn
        return
    conn = request.getfixturevalue("premigration_connection")
    with conn.transaction(force_rollback=True):
        yield conn


@pytest.fixture(scope="session")
def volume_connection(
    request: pytest.FixtureRequest, pytestconfig: pytest.Config, timeouts: Timeouts, migration_state: MigrationState
) -> Iterator[psycopg.Connection]:
    """A third database: 0024 applied and a busy tenant's volume loaded (--volume activity-log rows), once per run."""
    if migration_state.blocked_reason:
        pytest.skip(BLOCKED_PREFIX + migration_state.blocked_reason)
    if migration_state.on_target:
        pytest.skip(NA_PREFIX + "plans are proven on the ephemeral cluster's volume; a target is not loaded")
    pg_server = request.getfixturevalue("pg_server")
    rows = pytestconfig.getoption("volume")
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"loading the volume for task 3: {rows:,} activity-log rows, 100 organisations ...")
    conninfo = create_with_prerequisites(pg_server.host, pg_server.port, pg_server.user, timeouts, "readiness_volume")
    with connect(conninfo, timeouts) as conn:
        apply_file(conn, pytestconfig.option.migration)
        conn.commit()
    load_timeouts = Timeouts(timeouts.lock_ms, statement_ms=0)  # the load is bounded by its size, not a timeout
    timings = volume.load(conninfo, rows, lambda info, **kw: connect(info, load_timeouts, **kw))
    signoff = pytestconfig.stash[SIGNOFF_KEY]
    signoff.environment["volume (task 3 plans)"] = f"{rows:,} activity-log rows, {volume.ORGS} organisations"
    for step, seconds in timings.items():
        signoff.figures[f"volume load: {step}"] = f"{seconds:.1f} s"
    with connect(conninfo, timeouts) as conn:
        yield conn


@pytest.fixture
def volume_db(volume_connection: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The database with the volume loaded, inside a transaction rolled back after the test."""
    with volume_connection.transaction(force_rollback=True):
        yield volume_connection


@pytest.fixture
def blocking_issue(request: pytest.FixtureRequest) -> Callable[[dict[str, str]], None]:
    """Record a blocking issue (severity, message, location) the sign-off lists if this test fails."""

    def record(issue: dict[str, str]) -> None:
        request.node.user_properties.append(("blocking_issue", issue))

    return record


@pytest.fixture
def record_figure(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Record a measured figure (a timing, a count) for the sign-off's measurements table."""

    def record(name: str, value: str) -> None:
        request.node.user_properties.append(("figure", (name, value)))

    return record


@pytest.fixture
def migrated(db: psycopg.Connection, migration_state: MigrationState) -> psycopg.Connection:
    """`db` with migration 0024 applied; a test needing it is BLOCKED when the migration could not apply."""
    if migration_state.blocked_reason:
        pytest.skip(BLOCKED_PREFIX + migration_state.blocked_reason)
    return db


@pytest.fixture
def two_tenants(migrated: psycopg.Connection) -> tuple[Tenant, Tenant]:
    """Organisations A and B, each with a user and one row in each sync table."""
    return factories.tenant(migrated, "org-a"), factories.tenant(migrated, "org-b")
