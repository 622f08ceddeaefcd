"""Fixtures: the server, the database built once per run, and a connection rolled back after each test."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

from readiness import catalog, expected, factories, interrupt, privileges, rls, roles, server, volume, volume_cluster
from readiness.budget import LockBudget
from readiness.causes import MISSING_KEY, PRIVILEGE_GAPS_KEY, RLS_FAULTS_KEY
from readiness.clusters import (
    SHARED_SERVER,
    SHARED_VOLUME,
    SharedClusters,
    config_timeouts,
    database_name,
    new_server,
    record_volume,
    say,
    shared,
    start_server,
    start_volume,
    stop_server,
    target_dsn_of,
)
from readiness.database import DBNAME, MigrationState, Timeouts, connect, create_ephemeral, create_with_prerequisites
from readiness.errors import EXIT_USAGE_ERROR, ReadinessUsageError
from readiness.factories import Tenant
from readiness.outcomes import recorded
from readiness.signoff import SIGNOFF_KEY, SignOff
from readiness.target import Server, TargetSession, describe
from readiness.verdicts import DesignDifference, Issue, blocked
from readiness.volume_cluster import VolumeHandle, VolumeUnavailable

# Property tests: "readiness" is quick enough for every run; "thorough" for a deeper look
# (pytest --hypothesis-profile=thorough). No example database: a readiness run must not
# depend on what earlier runs found.
# One failure, its minimal example written out by the check's own message: no blob, no "distinct failures" group.
QUIET = {"deadline": None, "database": None, "print_blob": False, "report_multiple_bugs": False}
settings.register_profile("readiness", max_examples=25, **QUIET)
settings.register_profile("thorough", max_examples=400, **QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "readiness"))
TESTS_ANNOUNCED = pytest.StashKey[bool]()


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
    return config_timeouts(pytestconfig)


@pytest.fixture(scope="session")
def pg_server(pytestconfig: pytest.Config) -> Iterator[server.Executor | server.Address]:
    """An ephemeral PostgreSQL 17 cluster for the whole run (the xdist controller's, in a worker)."""
    if address := shared(pytestconfig, SHARED_SERVER):
        yield server.Address(**address)
        return
    executor = new_server(pytestconfig)
    try:
        start_server(pytestconfig, executor)
        yield executor
    finally:
        stop_server(pytestconfig, executor)


@pytest.fixture(scope="session")
def volume_handle(pytestconfig: pytest.Config) -> Iterator[VolumeHandle]:
    """Task 3's volume cluster, started at once and made ready in the background (the controller's, in a worker)."""
    if handle := shared(pytestconfig, SHARED_VOLUME):
        yield VolumeHandle(**handle)
        return
    cluster = start_volume(pytestconfig)
    try:
        yield cluster.handle
    finally:
        cluster.stop()
        record_volume(pytestconfig, cluster)


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, the controller owns the clusters."""
    controller = not hasattr(config, "workerinput") and not config.option.collectonly
    if not controller or getattr(config.option, "dist", "no") == "no":
        return
    if target_dsn_of(config):
        raise pytest.UsageError(
            "-n (pytest-xdist) is for the ephemeral cluster: against a target, the run reads the target once and "
            "builds one shadow of it, which workers cannot share. Run without -n."
        )
    config.pluginmanager.register(SharedClusters(config), "readiness-shared-clusters")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before each property test, a line saying what runs, so a person watching knows the run is alive."""
    if not item.session.stash.setdefault(TESTS_ANNOUNCED, False):
        item.session.stash[TESTS_ANNOUNCED] = True
        interrupt.announce(interrupt.TESTS_RUNNING)
    if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        examples = settings.default.max_examples
        say(item.config, f"hypothesis: {item.name}, up to {examples} random examples plus the explicit ones ...")


def uses_volume(item: pytest.Item) -> bool:
    """Whether the test runs on task 3's volume."""
    return "volume_connection" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on task 3's volume last: the longer the other tasks run, the less they wait for it."""
    items.sort(key=uses_volume)


def needs_volume(session: pytest.Session) -> bool:
    """Whether a test of this run uses the volume: only then is it loaded or copied."""
    return any(map(uses_volume, session.items))


@pytest.fixture(scope="session")
def target_dsn(pytestconfig: pytest.Config) -> str | None:
    """The existing database to verify (--dsn or READINESS_DSN); None for the ephemeral cluster."""
    return target_dsn_of(pytestconfig)


@pytest.fixture(scope="session")
def target_session(
    request: pytest.FixtureRequest, target_dsn: str, pytestconfig: pytest.Config, timeouts: Timeouts
) -> Iterator[TargetSession]:
    """The target, read once; its shadow on the suite's own server, where the checks run; one budgeted dry run."""
    budget = LockBudget(pytestconfig.getoption("lock_budget"))
    try:
        session = TargetSession(
            target_dsn, timeouts, pytestconfig.option.migration, pytestconfig.option.rollback,
            pytestconfig.getoption("pg_major"), budget,
        )  # fmt: skip
        pg_server = request.getfixturevalue("pg_server")  # only once the target is known good: the shadow's server
        session.prepare(Server(pg_server.host, pg_server.port, pg_server.user))
    except ReadinessUsageError as error:
        pytest.exit(str(error), returncode=EXIT_USAGE_ERROR)
    signoff = pytestconfig.stash[SIGNOFF_KEY]
    held = session.state.held
    signoff.target_state = held.state
    signoff.lock_moments = budget.as_json()
    signoff.environment.update(
        server_version=session.version,
        target=f"{describe(target_dsn)} (read only; checked in a shadow of it on the suite's server)",
        target_state=held.describe(),
        **{"lock moments on the target": budget.summary(),
           "the target's shadow": f"{len(session.shadow.copied)} tables: {', '.join(session.shadow.copied)}"
           + (f"; left out: {'; '.join(session.shadow.left_out)}" if session.shadow.left_out else "")},
    )  # fmt: skip
    signoff.environment.update({f"target's {name}": fact for name, fact in session.facts.items()})
    say(pytestconfig, f"target {describe(target_dsn)}: {held.describe()}")
    for rule, findings in sorted(session.target_lint.items()):
        record_findings(signoff, rule, findings)
    interrupt.announce(interrupt.TARGET_READ)
    try:
        yield session
    finally:
        record_moved_sequences(signoff, session)  # at the last test's teardown: before the sign-off is written
        session.close()


@pytest.fixture(scope="session")
def migration_state(
    request: pytest.FixtureRequest, pytestconfig: pytest.Config, timeouts: Timeouts, target_dsn: str | None
) -> MigrationState:
    """Prerequisites and 0023 in place, then the 0024 under test applied (or its failure recorded)."""
    if target_dsn:
        session = request.getfixturevalue("target_session")
        state = session.state
        state.target_dry_run = session.dry_run
        if needs_volume(request.session) and not state.blocked_reason:
            request.getfixturevalue("volume_handle")  # loads or copies while the tasks run
        return state
    pg = request.getfixturevalue("pg_server")
    if needs_volume(request.session):
        request.getfixturevalue("volume_handle")  # loads or copies while the schema is built and the tasks run
    started = time.perf_counter()
    dbname = database_name(pytestconfig, DBNAME)
    state = create_ephemeral(pg.host, pg.port, pg.user, timeouts, pytestconfig.option.migration, dbname)
    elapsed = time.perf_counter() - started
    signoff = pytestconfig.stash[SIGNOFF_KEY]
    signoff.figures["schema build (prerequisites, 0023, 0024)"] = f"{elapsed:.2f} s"
    record_pre_existing(signoff, state)
    return state


def record_moved_sequences(signoff: SignOff, session: TargetSession) -> None:
    """The target's sequences the run advanced: the one change a rollback cannot undo."""
    moved = session.moved_sequences()
    signoff.environment["sequences advanced by the run (nextval() is never rolled back)"] = "; ".join(moved) or "none"


def record_pre_existing(signoff: SignOff, state: MigrationState) -> None:
    """Linter findings the database had before 0024 (its prerequisites): recommendations, not 0024's faults."""
    for rule, findings in sorted(state.lint_before.items()):
        record_findings(signoff, rule, findings)


def record_findings(signoff: SignOff, rule: str, findings: frozenset[str]) -> None:
    """A linter rule's findings on the database before 0024, as LOW recommendations."""
    for finding in sorted(findings):
        message = f"before 0024, splinter {rule}: {finding}"
        signoff.recommendations[Issue("LOW", message, "the database before 0024 (not 0024's)")] = None


@pytest.fixture(scope="session")
def session_connection(
    request: pytest.FixtureRequest, migration_state: MigrationState, timeouts: Timeouts, target_dsn: str | None
) -> Iterator[psycopg.Connection]:
    """One connection for the whole run (to the ephemeral database, or the target's shadow); each test's work on it
    is rolled back.

    Closed, not committed, at the end: after Ctrl-C a statement may still be in flight on it.
    """
    with closing(connect(migration_state.conninfo, timeouts)) as conn:
        yield conn


@pytest.fixture
def db(session_connection: psycopg.Connection, target_dsn: str | None) -> Iterator[psycopg.Connection]:
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
    missing_objects,
    rls_faults,  # read here too: a worker of -n 2 may run only task 3's plans, whose failures join their causes
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


@pytest.fixture
def blocking_issue(request: pytest.FixtureRequest, migration_state: MigrationState) -> Callable[[dict[str, str]], None]:
    """Record a blocking issue (severity, message, location) the sign-off lists if this test fails.

    When the migration did not apply (or a prerequisite is missing), that is the issue's cause: the checks
    BLOCKED by it are counted under it.
    """

    def record(issue: dict[str, str]) -> None:
        recorded(request.node).issues.append(Issue(**issue))
        if migration_state.blocked_reason:
            recorded(request.node).cause = migration_state.blocked_reason

    return record


@pytest.fixture
def recommendation(request: pytest.FixtureRequest) -> Callable[[str, str, str], None]:
    """Record a recommendation (MEDIUM or LOW: severity, message, location) the sign-off lists; never blocking."""

    def record(severity: str, message: str, location: str) -> None:
        assert severity in ("MEDIUM", "LOW"), f"a recommendation is MEDIUM or LOW, not {severity}"
        recorded(request.node).recommendations.append(Issue(severity, message, location))

    return record


@pytest.fixture
def design_difference(request: pytest.FixtureRequest) -> Callable[[str, object, object], None]:
    """Record where the migration under test differs from our own 0024's design: listed, never blocking."""

    def record(subject: str, design: object, found: object) -> None:
        recorded(request.node).differences.append(DesignDifference(subject, str(design), str(found)))

    return record


@pytest.fixture
def record_figure(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Record a measured figure (a timing, a count) for the sign-off's measurements table."""

    def record(name: str, value: str) -> None:
        recorded(request.node).figures[name] = value

    return record


@pytest.fixture(scope="session")
def missing_objects(
    pytestconfig: pytest.Config, session_connection: psycopg.Connection, migration_state: MigrationState
) -> dict[str, list[str]]:
    """The report's tables, columns, enums, functions and indexes the applied migration did not create
    (readiness.causes)."""
    if migration_state.blocked_reason:
        return {}
    conn = session_connection
    with conn.transaction(force_rollback=True):
        functions = catalog.functions(conn)
        tables = {t: catalog.relation_exists(conn, f"public.{t}") for t in expected.CONTRACT_COLUMNS}
        indexes = catalog.indexes(conn, [table for table, exists in tables.items() if exists])
        missing = {
            "tables": [table for table, exists in tables.items() if not exists],
            "columns": [
                f"{table}.{column}"
                for table, exists in tables.items()
                if exists
                for column in expected.CONTRACT_COLUMNS[table].keys() - catalog.columns(conn, table).keys()
            ],
            "enums": [enum for enum in expected.ENUMS if not catalog.enum_labels(conn, enum)],
            "functions": [name for name in expected.FUNCTION_NAMES if name not in functions],
            "indexes": sorted(  # of the tables there: a missing table is the cause of its indexes' absence
                name for name, index in expected.INDEXES.items() if tables[index.table] and name not in indexes
            ),
        }
    pytestconfig.stash[MISSING_KEY] = {kind: names for kind, names in missing.items() if names}
    return pytestconfig.stash[MISSING_KEY]


@pytest.fixture(scope="session")
def rls_faults(
    pytestconfig: pytest.Config,
    session_connection: psycopg.Connection,
    migration_state: MigrationState,
    missing_objects,
) -> dict[str, list[str]]:
    """The sync tables whose RLS breaks the report's rule, with how (readiness.rls)."""
    if migration_state.blocked_reason:
        return {}
    present = [table for table in expected.CONTRACT_COLUMNS if table not in missing_objects.get("tables", ())]
    with session_connection.transaction(force_rollback=True):
        pytestconfig.stash[RLS_FAULTS_KEY] = rls.faults(session_connection, present)
    return pytestconfig.stash[RLS_FAULTS_KEY]


@pytest.fixture(scope="session")
def privilege_gaps(
    pytestconfig: pytest.Config,
    session_connection: psycopg.Connection,
    migration_state: MigrationState,
    missing_objects: dict[str, list[str]],
) -> list[privileges.Gap]:
    """What the API roles lack that 0024's policies and triggers need them to hold (readiness.privileges)."""
    if migration_state.blocked_reason:
        return []
    present = [f"public.{t}" for t in expected.CONTRACT_COLUMNS if t not in missing_objects.get("tables", ())]
    try:
        with session_connection.transaction(force_rollback=True):
            pytestconfig.stash[PRIVILEGE_GAPS_KEY] = privileges.gaps(session_connection, present)
    except psycopg.Error as error:  # the privilege check fails saying so; every other check still runs
        pytestconfig.stash[PRIVILEGE_GAPS_KEY] = []
        pytestconfig.stash[privileges.READ_ERROR_KEY] = f"{error.sqlstate} {error.diag.message_primary}"
    return pytestconfig.stash[PRIVILEGE_GAPS_KEY]


@pytest.fixture
def migrated(
    db: psycopg.Connection, migration_state: MigrationState, missing_objects, rls_faults, privilege_gaps
) -> psycopg.Connection:
    """`db` with migration 0024 applied; a test needing it is BLOCKED when the migration could not apply."""
    if migration_state.blocked_reason:
        blocked(migration_state.blocked_reason)
    return db


@pytest.fixture(scope="session")
def columns(
    pytestconfig: pytest.Config, session_connection: psycopg.Connection, migration_state: MigrationState
) -> roles.Columns:
    """Which column of the migration under test plays each role the checks need; listed in the sign-off."""
    if migration_state.blocked_reason:
        blocked(migration_state.blocked_reason)
    with session_connection.transaction(force_rollback=True):
        resolved = roles.resolve(session_connection, roles.read_overrides(pytestconfig.getoption("columns")))
    environment = pytestconfig.stash[SIGNOFF_KEY].environment
    for (table, role), found in resolved.resolved.items():
        entry = f"{role}: {found.column or 'UNRESOLVED'} ({found.how})"
        key = f"column roles of {table}"
        environment[key] = f"{environment[key]}; {entry}" if key in environment else entry
    return resolved


@pytest.fixture
def two_tenants(migrated: psycopg.Connection) -> tuple[Tenant, Tenant]:
    """Organisations A and B, each with a user and one row in each sync table."""
    return factories.tenant(migrated, "org-a"), factories.tenant(migrated, "org-b")
