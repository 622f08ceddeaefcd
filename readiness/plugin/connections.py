"""Connections to the database under test: one for the run, a transaction rolled back around each test; the
target itself read only; the database before 0024; task 3's volume."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import psycopg
import pytest

from readiness.databases import volume, volume_cluster
from readiness.databases.build import MigrationState, create_with_prerequisites
from readiness.databases.volume_cluster import VolumeRefused, VolumeUnavailable
from readiness.errors import EXIT_USAGE_ERROR
from readiness.plugin.clusters import (
    database_name,
    say,
)
from readiness.postgres import server
from readiness.postgres.connection import Timeouts, connect
from readiness.postgres.dsn import describe
from readiness.verdicts import blocked


@pytest.fixture(scope="session")
def session_connection(
    request: pytest.FixtureRequest, migration_state: MigrationState, timeouts: Timeouts
) -> Iterator[psycopg.Connection]:
    """One connection for the whole run (to the ephemeral database, or the target's shadow); each test's work on it
    is rolled back.

    Closed, not committed, at the end: after Ctrl-C a statement may still be in flight on it.
    """
    with closing(connect(migration_state.conninfo, timeouts)) as conn:
        yield conn


@pytest.fixture
def db(session_connection: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The database under test (on a target, its shadow), inside a transaction rolled back after the test."""
    if session_connection.closed:
        where = "the suite's own server"
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
    """On a target, the target itself, every transaction READ ONLY; on the ephemeral cluster, the session's."""
    if not target_dsn:
        yield session_connection
        return
    yield request.getfixturevalue("target_session").conn


@pytest.fixture
def readonly_db(readonly_connection: psycopg.Connection, target_dsn: str | None) -> Iterator[psycopg.Connection]:
    """The database as committed (on a target, the target itself, read only), for the checks that read what is
    there; rolled back."""
    if readonly_connection.closed:
        lost(target_dsn)
    try:
        with readonly_connection.transaction(force_rollback=True):
            yield readonly_connection
    except psycopg.OperationalError:
        if not readonly_connection.broken:
            raise
        lost(target_dsn)


def lost(target_dsn: str | None) -> None:
    """End the run: the connection to the database under test is gone."""
    where = f"the target {describe(target_dsn)}" if target_dsn else "the ephemeral server"
    pytest.exit(
        f"The connection to {where} was lost during the run; nothing the run did was left on it. "
        "The verdict is NOT APPROVED: run again once the database is reachable.",
        returncode=EXIT_USAGE_ERROR,
    )


@pytest.fixture(scope="session")
def premigration_connection(
    pg_server: server.Executor, timeouts: Timeouts, pytestconfig: pytest.Config, migration_state: MigrationState
) -> Iterator[psycopg.Connection]:
    """A second database holding what is there before 0024 (the prerequisites and 0023; on a target, its shadow
    before 0024, or as the rollback leaves a deployed 0024): 0024 never applied."""
    conninfo = migration_state.premigration
    if not conninfo:
        dbname = database_name(pytestconfig, "readiness_pre")
        conninfo = create_with_prerequisites(pg_server.host, pg_server.port, pg_server.user, timeouts, dbname)
    with closing(connect(conninfo, timeouts)) as conn:
        yield conn


@pytest.fixture
def premigration(request: pytest.FixtureRequest, migration_state: MigrationState) -> Iterator[psycopg.Connection]:
    """The database before 0024, inside a transaction rolled back after the test."""
    if migration_state.partial:
        blocked(migration_state.partial)
    if migration_state.rollback_error is not None:
        blocked(f"the rollback fails on the deployed 0024: {migration_state.rollback_error}")
    conn = request.getfixturevalue("premigration_connection")
    with conn.transaction(force_rollback=True):
        yield conn


@pytest.fixture(scope="session")
def volume_connection(
    request: pytest.FixtureRequest,
    pytestconfig: pytest.Config,
    timeouts: Timeouts,
    migration_state: MigrationState,
    causes,  # read here too: a worker of -n 2 may run only task 3's plans, whose failures join their causes
) -> Iterator[psycopg.Connection]:
    """A database of its own cluster: 0024 applied and a busy tenant's volume loaded (--volume activity-log rows).

    Against a target too: the verdict on plans is the volume's, whose size is known; the target's own plans are
    listed beside it (test_plans_on_the_deployed_target)."""
    if migration_state.blocked_reason:
        blocked(migration_state.blocked_reason)
    for table, role in volume.ROLES_NEEDED:  # the volume fills them: BLOCKED, as every check needing one is
        request.getfixturevalue("columns")[(table, role)]
    handle = request.getfixturevalue("volume_handle")
    if handle.status_now() is None:
        say(pytestconfig, "waiting for the volume for task 3 to be ready ...")
    try:
        conninfo = handle.wait()
    except VolumeRefused as error:  # the gate could not make rows the migration accepts: blocked, in its words
        blocked(str(error))
    except VolumeUnavailable as error:
        pytest.fail(f"the volume for task 3 could not be made ready: {error}")
    try:
        conn = connect(conninfo, timeouts)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"the volume for task 3 was ready, then its server stopped answering ({error}): {handle.server_now()}"
        )
    with closing(conn):
        yield conn


@pytest.fixture
def volume_db(volume_connection: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The database with the volume loaded, inside a transaction rolled back after the test."""
    with volume_connection.transaction(force_rollback=True):
        volume_cluster.enter(volume_connection)
        yield volume_connection
