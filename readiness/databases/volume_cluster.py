"""Task 3's volume in a cluster of its own, made ready in the background while the other tasks run.

When the same SQL files, generator and row count were loaded before, the cluster is a copy of
the cached one (about 2 s for 1M rows); otherwise the volume is loaded (about 22 s for 1M
rows) and the stopped cluster becomes the cache entry at the end of the run. Whoever uses it
waits on a status file, so a test process other than the one that started it (an xdist
worker) can wait too.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import psycopg.sql

from readiness.acting.rows import REFUSALS
from readiness.databases import volume
from readiness.databases.build import create_with_prerequisites
from readiness.postgres import cache, interrupt, server
from readiness.postgres.connection import Timeouts, connect
from readiness.schema import column_roles
from readiness.schema.apply import apply_file
from readiness.schema.files import MIGRATION_0023, PREREQUISITE_FILES

DBNAME = "readiness_volume"
READY = "ready"
BYTES_PER_ROW = 600  # a log row with its 7 index entries: 1M rows take 0.5 GB
WAIT_LIMIT_S = 1800  # a load that takes longer has failed; the run says so instead of waiting on
# How long stop() waits for the background thread once its server is stopped: a start ends within pg_ctl's
# own limit, a load with its first statement on the stopped server.
JOIN_LIMIT_S = server.START_LIMIT_S + 60


# Under xdist two workers use the volume at once: its readers, and test_rollback_time_on_volume, which drops
# and re-creates 0024 in it. Each takes this advisory lock first in its transaction (readers shared, the
# rollback exclusive), so they wait for each other instead of deadlocking on the tables' locks.
GATE = 240024
GATE_TIMEOUT = "30s"  # the rollback with its teardown takes about 1 s at 1M rows; never wait forever


def enter(conn: psycopg.Connection, *, exclusive: bool = False) -> None:
    """Take the volume's gate for the current transaction (shared for a reader)."""
    take = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (GATE_TIMEOUT,))
    conn.execute(psycopg.sql.SQL("SELECT {}(%s)").format(psycopg.sql.Identifier(take)), (GATE,))
    conn.execute("SET LOCAL lock_timeout TO DEFAULT")


class VolumeUnavailable(Exception):
    """The volume could not be made ready; the message says why."""


class VolumeRefused(VolumeUnavailable):
    """The migration's own rules (a CHECK, a trigger, a partition bound) refused a row the volume made: a limit of the
    gate's generator, not a fault of 0024; the message names the rule."""


def refused(error: psycopg.Error) -> str:
    """A refusal of the volume's rows in words, naming the rule that refused them."""
    diag = error.diag
    rule = (f"constraint {diag.constraint_name} of {diag.table_name}" if diag.constraint_name
            else f"a rule of {diag.table_name}" if diag.table_name else "a rule of the migration")  # fmt: skip
    return (f"the migration's {rule} refused a row task 3's volume made ({error.sqlstate}: {diag.message_primary}). "
            "This is a limit of the gate's generator, not a fault of 0024, and the plans at volume were not measured: "
            "tell the suite's maintainers the rule, or give the columns it names a --columns role.")  # fmt: skip


@dataclass(frozen=True)
class VolumeHandle:
    """What a test process needs to use the volume: where it is served and where its status is written."""

    host: str
    port: int
    user: str
    status: str  # path of the status file: READY, or the reason it failed

    def status_now(self) -> str | None:
        path = Path(self.status)
        return path.read_text() if path.is_file() else None

    def wait(self) -> str:
        """The conninfo of the volume database once it is ready; VolumeUnavailable if it cannot be."""
        deadline = time.monotonic() + WAIT_LIMIT_S
        while (status := self.status_now()) is None:
            if time.monotonic() > deadline:
                raise VolumeUnavailable(f"the volume was not ready after {WAIT_LIMIT_S} s")
            time.sleep(0.05)
        if status != READY:
            refusal = Path(self.status).with_name("volume-refused").exists()
            raise (VolumeRefused if refusal else VolumeUnavailable)(status)
        return psycopg.conninfo.make_conninfo(host=self.host, port=self.port, user=self.user, dbname=DBNAME)

    def server_now(self) -> str:
        """What is known of the volume's server when it stops answering: its postmaster and its log's last lines."""
        workdir = Path(self.status).parent
        pid_file = workdir / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
            postmaster = f"postmaster {pid} alive"
        except (OSError, ValueError, IndexError):
            postmaster = "postmaster gone" + ("" if pid_file.exists() else ", no postmaster.pid")
        log = workdir / "postgresql.log"
        tail = " | ".join(log.read_text(errors="replace").splitlines()[-5:]) if log.is_file() else "no log"
        return f"{postmaster}; {workdir} {'exists' if workdir.is_dir() else 'is gone'}; its log ends: {tail}"


def cache_entry(pg_ctl: Path, migration: Path, rows: int, columns: Path | None = None) -> Path:
    """The cache entry of the volume `migration` (with its --columns file) makes at `rows` rows on this server."""
    inputs = [*PREREQUISITE_FILES, MIGRATION_0023, migration, Path(volume.__file__), *([columns] if columns else [])]
    return cache.volume_entry(server.server_version(pg_ctl), rows, inputs)


class VolumeCluster:
    """Starts in a background thread; `stop()` ends it and stores a freshly loaded volume in the cache."""

    def __init__(
        self, pg_ctl: Path, migration: Path, rows: int, timeouts: Timeouts, keep_log: Path, columns: Path | None = None
    ) -> None:
        self.entry = cache_entry(pg_ctl, migration, rows, columns)
        self.columns = columns
        if self.entry.is_dir() and not server.shut_down_cleanly(self.entry):
            shutil.rmtree(self.entry, ignore_errors=True)  # a server that died: its UNLOGGED log would be empty
        self.from_cache = self.entry.is_dir()
        room = server.CLUSTER_ROOM + rows * BYTES_PER_ROW
        self.executor = server.new_executor(pg_ctl, seed=self.entry if self.from_cache else None, room=room)
        self.pg_ctl, self.migration, self.rows = pg_ctl, migration, rows
        self.timeouts, self.keep_log = timeouts, keep_log
        self.timings: dict[str, float] = {}
        status = Path(self.executor.unixsocketdir) / "volume-status"
        self.handle = VolumeHandle(self.executor.host, self.executor.port, self.executor.user, str(status))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._prepare, name="readiness-volume", daemon=True)

    def start(self) -> VolumeCluster:
        self.thread.start()
        return self

    def _prepare(self) -> None:
        try:
            started = time.perf_counter()
            self._start()
            interrupt.announce(interrupt.VOLUME_LOADING, self.stopping)
            if self.stopping.is_set():
                raise VolumeUnavailable("the run stopped before the volume was ready")
            if self.from_cache:
                self.timings["copied from the cache and started"] = time.perf_counter() - started
            else:
                self._load()
            self._report(READY)
        except REFUSALS as error:  # the migration's rules refused our rows: said in words, naming the rule
            Path(self.handle.status).with_name("volume-refused").touch()
            self._report(refused(error))
        except Exception as error:  # reported to whoever waits, as the reason the volume is unavailable
            self._report(f"{type(error).__name__}: {error}")

    def _start(self) -> None:
        if self.stopping.is_set():
            raise VolumeUnavailable("the run stopped before the volume's server started")
        self.executor.init_directory()  # the copy: a copy cut short (Ctrl-C reaches cp too) says nothing of the entry
        try:
            self.executor.start()
        except Exception:
            if not self.from_cache or self.stopping.is_set():  # stopped while it started: the entry is not at fault
                raise
            # An entry that does not start (damaged, copied without its owner) is dropped, the volume loaded again.
            shutil.rmtree(self.entry, ignore_errors=True)
            self.from_cache = False
            self.executor.reseed(cache.initdb_entry(self.pg_ctl, server.server_version(self.pg_ctl)))
            self.executor.start()

    def _load(self) -> None:
        pg = self.executor
        conninfo = create_with_prerequisites(pg.host, pg.port, pg.user, self.timeouts, DBNAME)
        with connect(conninfo, self.timeouts) as conn:
            apply_file(conn, self.migration)
            conn.commit()
        load_timeouts = Timeouts(self.timeouts.lock_ms, statement_ms=0)  # bounded by its size, not a timeout
        overrides = column_roles.read_overrides(self.columns)
        self.timings.update(
            volume.load(conninfo, self.rows, lambda info, **kw: connect(info, load_timeouts, **kw), overrides)
        )

    def _report(self, status: str) -> None:
        path = Path(self.handle.status)
        partial = path.with_suffix(".partial")
        partial.write_text(status)
        partial.rename(path)  # whole or absent for a reader

    def stop(self) -> None:
        """Stop the cluster; a volume loaded by this run becomes the cache entry for the next runs.

        Only a server this stop() shut down is stored: one that died before (killed, crashed) left its
        activity log, UNLOGGED while it is loaded, to be emptied by crash recovery at its next start, so
        every run of the week would copy a volume without it.
        """
        self.stopping.set()
        ready_and_up = self.handle.status_now() == READY and self.executor.running()
        deadline = time.monotonic() + JOIN_LIMIT_S
        while self.thread.is_alive() and time.monotonic() < deadline:
            if self.executor.running():  # a start or a load still running ends with an error, its thread with it
                self.executor.stop()
            self.thread.join(0.2)
        if self.executor.running():  # started while it was being stopped
            self.executor.stop()
        stuck = self.thread.is_alive()
        if not stuck and not self.from_cache and ready_and_up:
            cache.store(Path(self.executor.datadir), self.entry, move=True)
            cache.prune("volume-", cache.VOLUME_ENTRIES_KEPT)
        server.stop(self.executor, self.keep_log)
        if stuck:
            raise VolumeUnavailable(f"the volume's thread did not end within {JOIN_LIMIT_S} s of its server's stop")
