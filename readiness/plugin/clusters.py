"""The run's clusters: started by the one test process, or by the xdist controller for its workers.

The server and task 3's volume are cluster-wide (as are the roles the prerequisites create),
so under xdist the controller starts them once and hands their addresses to the workers in
`workerinput`; each worker then builds its own databases on the shared server.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path

import psycopg
import pytest

from readiness.databases import volume
from readiness.databases.volume_cluster import VolumeCluster
from readiness.errors import EXIT_USAGE_ERROR, ReadinessUsageError
from readiness.plugin.outcomes import run_record
from readiness.postgres import interrupt, server
from readiness.postgres.connection import Timeouts, connect
from readiness.schema.apply import apply_file
from readiness.schema.files import SUPABASE_ROLES_SQL

# What an xdist controller shares with its workers (in workerinput): its server and its volume.
SHARED_SERVER, SHARED_VOLUME = "readiness_server", "readiness_volume"


def config_timeouts(config: pytest.Config) -> Timeouts:
    """The run's --lock-timeout and --statement-timeout."""
    return Timeouts(config.getoption("lock_timeout"), config.getoption("statement_timeout"))


def server_binaries(config: pytest.Config) -> Path:
    """The pg_ctl of the required major, recorded in the sign-off; a usage error (exit 4) when there is none."""
    try:
        pg_ctl, how = server.discover(config.getoption("postgresql_exec"), config.getoption("pg_major"))
        version = server.server_version(pg_ctl)
        server.check_major(version, config.getoption("pg_major"), f"The server found at {pg_ctl}")
    except ReadinessUsageError as error:
        pytest.exit(str(error), returncode=EXIT_USAGE_ERROR)
    run = run_record(config)
    for name, value in (("server_version", version), ("target", "ephemeral cluster")):
        if name not in run.environment:  # a target's own, when there is one: its volume's is ours
            run.note(name, value)
    run.note("pg_ctl", f"{pg_ctl} (found by {how})")
    run.note("os_user", str(os.geteuid()))
    return pg_ctl


def new_server(config: pytest.Config) -> server.Executor:
    """The run's ephemeral cluster, not started yet: whoever starts it stops it, interrupted or not."""
    return server.new_executor(server_binaries(config))


def start_server(config: pytest.Config, executor: server.Executor) -> None:
    """Start the run's cluster; the time it took goes into the sign-off."""
    started = time.perf_counter()
    try:
        executor.start()
    except server.ServerStartError as error:
        pytest.exit(f"{error}\nThe run cannot go on without its server: nothing was verified.", EXIT_USAGE_ERROR)
    run_record(config).measure("server start (data directory + start)", f"{time.perf_counter() - started:.2f} s")
    interrupt.announce(interrupt.SERVER_STARTED)


def stop_server(config: pytest.Config, executor: server.Executor) -> None:
    """Stop the run's cluster and remove it; its log is kept in the report folder."""
    server.stop(executor, config.option.report_dir / "postgresql.log")


def start_volume(config: pytest.Config) -> VolumeCluster:
    """Task 3's volume cluster, started in the background; the terminal says which way it is made."""
    rows = config.getoption("volume")
    migration, timeouts = config.option.migration, config_timeouts(config)
    cluster = VolumeCluster(
        server_binaries(config), migration, rows, timeouts, config.option.report_dir / "volume.log",
        config.getoption("columns"),
    )  # fmt: skip
    how = "copying it from the cache" if cluster.from_cache else "loading it in the background, cached for later runs"
    say(config, f"volume for task 3: {rows:,} activity-log rows, {volume.ORGS} organisations; {how}")
    return cluster.start()


def record_volume(config: pytest.Config, cluster: VolumeCluster) -> None:
    """The volume's size and load (or copy) times, into the sign-off."""
    run = run_record(config)
    how = "copied from the cache entry" if cluster.from_cache else "loaded by this run, stored as"
    run.note("volume (task 3 plans)", f"{cluster.rows:,} activity-log rows, {volume.ORGS} organisations; {how} "
             f"{cluster.entry.name}")  # fmt: skip
    for step, seconds in cluster.timings.items():
        run.measure(f"volume: {step}", f"{seconds:.1f} s")


def say(config: pytest.Config, line: str) -> None:
    """A line on the terminal while the run goes on, so a person watching knows what takes the time."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # during a test, pytest captures the terminal too
        reporter.write_line(line)


def shared(config: pytest.Config, key: str) -> dict | None:  # type: ignore[type-arg]
    """In an xdist worker, what the controller shares under `key` (its server, its volume); else None."""
    return getattr(config, "workerinput", {}).get(key)


def database_name(config: pytest.Config, name: str) -> str:
    """`name`, suffixed by the xdist worker's id: workers share the server, each has its own databases."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    return f"{name}_{worker}" if worker else name


class SharedClusters:
    """Under xdist, the controller starts the server and the volume once, and every worker uses them.

    Roles are cluster-wide, so the controller creates them before any worker builds its databases.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.server: server.Executor | None = None
        self.volume: VolumeCluster | None = None

    @pytest.hookimpl(tryfirst=True)  # before xdist's own sessionstart starts the workers
    def pytest_sessionstart(self) -> None:
        try:
            self.server = new_server(self.config)
            start_server(self.config, self.server)
            conninfo = psycopg.conninfo.make_conninfo(
                host=self.server.host, port=self.server.port, user=self.server.user, dbname="postgres"
            )
            with connect(conninfo, config_timeouts(self.config)) as conn:
                apply_file(conn, SUPABASE_ROLES_SQL, trusted=True)
                conn.commit()
            self.volume = start_volume(self.config)
        except BaseException:  # interrupted or failed here, pytest calls no sessionfinish: stop what started
            self.stop()
            raise

    def pytest_configure_node(self, node) -> None:  # type: ignore[no-untyped-def]
        assert self.server is not None and self.volume is not None
        address = server.Address(self.server.host, self.server.port, self.server.user, self.server.datadir)
        node.workerinput[SHARED_SERVER] = asdict(address)
        node.workerinput[SHARED_VOLUME] = asdict(self.volume.handle)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self):  # type: ignore[no-untyped-def]
        try:
            return (yield)
        finally:
            self.stop()  # before the sign-off is written: it records the volume's figures

    def pytest_unconfigure(self) -> None:
        self.stop()  # a run interrupted while its workers started never reaches the test loop

    def stop(self) -> None:
        """Stop the volume and the server if they run; once."""
        volume, self.volume = self.volume, None
        if volume is not None:
            volume.stop()
            record_volume(self.config, volume)
        executor, self.server = self.server, None
        if executor is not None:
            stop_server(self.config, executor)
