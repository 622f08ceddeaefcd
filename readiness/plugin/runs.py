"""Fixtures and hooks of a run: its options, its servers (the ephemeral cluster, task 3's volume), the target
when there is one, and the database under test built once (migration_state)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from readiness.databases.build import DBNAME, MigrationState, create_ephemeral
from readiness.databases.target import Server, TargetSession
from readiness.databases.volume_cluster import VolumeHandle
from readiness.errors import EXIT_USAGE_ERROR, ReadinessUsageError
from readiness.plugin.clusters import (
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
)
from readiness.plugin.options import target_dsn_of
from readiness.plugin.outcomes import run_record
from readiness.postgres import interrupt, server
from readiness.postgres.connection import Timeouts
from readiness.postgres.dsn import describe
from readiness.report.record import Record
from readiness.rules.budget import LockBudget
from readiness.rules.lint import LintFinding
from readiness.verdicts import Issue

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
    run = run_record(pytestconfig)
    held = session.state.held
    run.deployment(session.state.ran, held.state, budget.as_json())
    shadow = session.shadow
    for name, value in {
        "server_version": session.version,
        "target": f"{describe(target_dsn)} (read only; checked in a shadow of it on the suite's server)",
        "target_state": held.describe(),
        "lock moments on the target": budget.summary(),
        "the target's shadow": f"{len(shadow.copied)} tables: {', '.join(shadow.copied)}"
        + (f"; left out: {'; '.join(shadow.left_out)}" if shadow.left_out else ""),
        **{f"target's {name}": fact for name, fact in session.facts.items()},
    }.items():
        run.note(name, value)
    say(pytestconfig, f"target {describe(target_dsn)}: {held.describe()}")
    for rule, findings in sorted(session.target_lint.items()):
        record_findings(run, rule, findings)
    interrupt.announce(interrupt.TARGET_READ)
    try:
        yield session
    finally:
        record_moved_sequences(run, session)  # at the last test's teardown: before the sign-off is written
        session.close()


@pytest.fixture(scope="session")
def migration_state(
    request: pytest.FixtureRequest, pytestconfig: pytest.Config, timeouts: Timeouts, target_dsn: str | None
) -> MigrationState:
    """Prerequisites and 0023 in place, then the 0024 under test applied (or its failure recorded)."""
    run = run_record(pytestconfig)
    if target_dsn:
        session = request.getfixturevalue("target_session")
        state = session.state
        state.target_dry_run = session.dry_run
        run.deployment(state.ran)
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
    run.deployment(state.ran)
    run.measure("schema build (prerequisites, 0023, 0024)", f"{elapsed:.2f} s")
    for rule, findings in sorted(state.lint_before.items()):
        record_findings(run, rule, findings)
    return state


def record_moved_sequences(run: Record, session: TargetSession) -> None:
    """The target's sequences the run advanced: the one change a rollback cannot undo."""
    moved = session.moved_sequences()
    run.note("sequences advanced by the run (nextval() is never rolled back)", "; ".join(moved) or "none")


def record_findings(run: Record, rule: str, findings: frozenset[LintFinding]) -> None:
    """A linter rule's findings on the database before 0024 (its prerequisites), as LOW recommendations: not 0024's
    faults."""
    for finding in sorted(findings):
        message = f"before 0024, splinter {rule}: {finding}"
        run.recommend(Issue("LOW", message, "the database before 0024 (not 0024's)", rule=f"splinter:{rule}",
                            about=finding.about))  # fmt: skip
