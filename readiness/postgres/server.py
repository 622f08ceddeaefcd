"""Find PostgreSQL 17 and run it through pytest-postgresql's executor, as root too.

Discovery order: an explicit pg_ctl (--postgresql-exec or READINESS_PG_CTL), then the
binaries the project installs (readiness.postgres.install), then `pg_config --bindir`, then Homebrew's
postgresql@17 and Postgres.app where a Mac keeps them.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirakuru.base import ENV_UUID
from port_for import get_port
from pytest_postgresql.executors import PostgreSQLExecutor

from readiness.errors import ReadinessUsageError
from readiness.postgres import cache, install, platforms

REQUIRED_MAJOR = 17
PG_CTL_ENV = "READINESS_PG_CTL"
# Durability is irrelevant for a throw-away cluster; these make loading data fast.
FAST_SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
RAM_DIR = Path("/dev/shm")
SCRATCH_ENV = "READINESS_SCRATCH"  # where the run's clusters go, when not where scratch_dir() would put them
WORKDIR_PREFIX = "readiness-pg-"
STALE_AFTER_S = 3600
CLUSTER_ROOM = 256 * 2**20  # a cluster with the schema and the tests' rows; the volume says its own
START_LIMIT_S = 120  # pg_ctl start -w -t: a server not accepting connections by then has failed to start
HOW_TO_GET_17 = (
    "Run `make setup` (or `python -m readiness.postgres.install`) to install PostgreSQL 17 into the project, "
    "or point --postgresql-exec / READINESS_PG_CTL at a PostgreSQL 17 pg_ctl "
    "(another major on purpose: `python -m readiness.postgres.install 18` and --pg-major=18)."
)


# Where PostgreSQL 17 usually lives on a Mac: Homebrew (Apple silicon, then Intel), then Postgres.app.
MAC_LOCATIONS = (
    "/opt/homebrew/opt/postgresql@{major}/bin/pg_ctl",
    "/usr/local/opt/postgresql@{major}/bin/pg_ctl",
    "/Applications/Postgres.app/Contents/Versions/{major}/bin/pg_ctl",
)


def find_pg_ctl(explicit: str | None, major: int = REQUIRED_MAJOR) -> Path:
    """The pg_ctl to use, in the documented discovery order (the project install of `major`)."""
    return discover(explicit, major)[0]


def discover(explicit: str | None, major: int = REQUIRED_MAJOR) -> tuple[Path, str]:
    """The pg_ctl to use and how it was found: --postgresql-exec, READINESS_PG_CTL, the project install,
    `pg_config --bindir`, then Homebrew's and Postgres.app's usual places."""
    origin, given = ("--postgresql-exec", explicit) if explicit else (PG_CTL_ENV, os.environ.get(PG_CTL_ENV))
    if given:
        path = Path(given)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ReadinessUsageError(f"pg_ctl given by {origin} does not exist or is not executable: {path}")
        return path, origin
    for path, how in _candidates(major):  # pg_config is asked only when the project has no install
        if path.is_file() and os.access(path, os.X_OK):
            return path, how
    raise ReadinessUsageError(f"No PostgreSQL server binaries found. {HOW_TO_GET_17}")


def _candidates(major: int) -> Iterator[tuple[Path, str]]:
    """The project's install of `major`, the server `pg_config --bindir` names, then the usual Mac places."""
    try:
        yield install.bindir(major) / "pg_ctl", "the project install (.postgresql/)"
    except platforms.UnsupportedPlatform:
        pass  # no package for this machine: a PostgreSQL installed otherwise may still serve
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            yield Path(out.stdout.strip()) / "pg_ctl", f"pg_config ({pg_config})"
    for location in MAC_LOCATIONS:
        yield Path(location.format(major=major)), "a usual Mac location"


@functools.cache  # asked for by the server, the volume and both cache keys: one `pg_ctl --version` a run
def server_version(pg_ctl: Path) -> str:
    """'17.10' from `pg_ctl --version`."""
    out = subprocess.run([str(pg_ctl), "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    if out.returncode != 0 or match is None:
        raise ReadinessUsageError(f"Cannot read the version of {pg_ctl}: {out.stderr.strip() or out.stdout}")
    return match.group(0)


# pg_control's DBState DB_SHUTDOWNED, after its uint64 system identifier and two uint32 versions (pg_control.h):
# pg_controldata reads the same, but the embedded packages ship only initdb, pg_ctl and postgres.
STATE_OFFSET, SHUT_DOWN = 16, 1


def shut_down_cleanly(datadir: Path) -> bool:
    """Whether pg_control says the cluster at `datadir` was shut down, not left running (killed, crashed)."""
    try:
        state = (datadir / "global" / "pg_control").read_bytes()[STATE_OFFSET : STATE_OFFSET + 4]
    except OSError:
        return False
    return len(state) == 4 and int.from_bytes(state, sys.byteorder) == SHUT_DOWN


def check_major(version: str, required: int, origin: str) -> None:
    """Refuse a server whose major is not `required`, saying what was found and how to get 17."""
    found = int(version.split(".")[0])
    if found != required:
        raise ReadinessUsageError(
            f"{origin} is PostgreSQL {version}, but migration 0024 targets PostgreSQL {required}. "
            f"{HOW_TO_GET_17} To run on another major on purpose, pass --pg-major {found}."
        )


def run_as_server_user(pg_ctl: Path, workdir: Path) -> Path:
    """As root, a pg_ctl wrapper that runs the real one as the unprivileged server user."""
    if os.geteuid() != 0:
        return pg_ctl
    user = install.ensure_server_user()
    real = install.bindir_for_server_user(pg_ctl.parent) / "pg_ctl"
    wrapper = workdir / "pg_ctl"
    wrapper.write_text(f'#!/bin/sh\nexec runuser -u {user} -- "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    shutil.chown(workdir, user=user)
    return wrapper


def run_to_its_end(command: list[str], env: dict[str, str], limit: float) -> tuple[int, str]:
    """Run `command` in a session of its own (Ctrl-C reaches the run, not it) and return its exit status and
    output. Interrupted, it is waited for (at most `limit` seconds) before the interrupt goes on, so that what
    it starts (initdb's files, a server forked by pg_ctl) is finished, seen and cleaned up by the run."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output = process.communicate(timeout=limit)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    except BaseException:
        process.wait(timeout=limit)
        raise
    return process.returncode, output


class ServerStartError(Exception):
    """A cluster did not start: the message names its log."""

    def __init__(self, executor: PostgreSQLExecutor, why: str) -> None:
        log = Path(executor.logfile)
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.is_file() else []
        super().__init__(
            f"PostgreSQL did not start on port {executor.port}: {why}. Server log {log}:\n" + "\n".join(tail)
        )


@dataclass(frozen=True)
class Address:
    """A running cluster another process started: what a test needs to reach it."""

    host: str
    port: int
    user: str
    datadir: str


class Executor(PostgreSQLExecutor):
    """pytest-postgresql's executor, whose data directory is a copy of `seed` when there is one.

    Without a seed it runs initdb as usual and stores the result as the seed: initdb takes
    1-2 s here, a copy of its output 0.1 s in /dev/shm (1.0-1.3 s on this disk).
    """

    def __init__(self, *args: Any, seed: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seed = seed

    @property
    def envvars(self) -> dict[str, str]:
        """mirakuru's, without its mirakuru_uuid: at exit, every Python process that imported mirakuru SIGKILLs
        each process whose mirakuru_uuid contains its own pid as a substring ("2113" in "21135:..." or in the
        uuid's hex), so any run's exit could kill another run's server, silently (seen twice under load)."""
        return {name: value for name, value in super().envvars.items() if name != ENV_UUID}

    def init_directory(self) -> None:
        if self._directory_initialised:  # pytest-postgresql's flag: this executor made the directory already
            return
        if self.seed.is_dir():
            cache.copy(self.seed, Path(self.datadir))
            self._directory_initialised = True
            return
        super().init_directory()
        cache.store(Path(self.datadir), self.seed, move=False)

    def start(self) -> Executor:
        """`pg_ctl start -w` run to its end: the server accepts connections when it returns.

        Not mirakuru's start, which polls the TCP port: a port that is open answers "the database
        system is starting up" under load, and its polling outlived a server stopped meanwhile.
        """
        self.init_directory()
        limit = START_LIMIT_S + 30
        try:
            code, output = run_to_its_end(self.command_parts, {**os.environ, **self.envvars}, limit)
        except BaseException as error:  # interrupted, or pg_ctl did not return: stop what it started
            if self.running():
                self.stop()
            if isinstance(error, subprocess.TimeoutExpired):
                raise ServerStartError(self, f"pg_ctl start did not return within {limit} s") from None
            raise
        if code != 0:
            raise ServerStartError(self, output.strip())
        return self

    def _run_initdb(self, command: list[str]) -> None:
        """pytest-postgresql's initdb, run to its end even when interrupted: nothing writes in the data
        directory once the run removes it."""
        code, output = run_to_its_end(command, self._initdb_env(), START_LIMIT_S + 30)
        if code != 0:
            raise ServerStartError(self, f"initdb failed: {output.strip()}")

    def reseed(self, seed: Path) -> None:
        """Drop the data directory; the next start makes it from `seed` instead."""
        self.clean_directory()
        self.seed = seed


def sweep(parent: Path) -> None:
    """Remove the clusters runs killed before they could (no server running, untouched for an hour).

    In /dev/shm a leftover holds RAM, up to 0.5 GB for a volume of 1M rows.
    """
    for workdir in parent.glob(f"{WORKDIR_PREFIX}*"):
        try:
            stale = time.time() - workdir.stat().st_mtime > STALE_AFTER_S
            running = (workdir / "data" / "postmaster.pid").exists()
        except OSError:  # another user's (root's data directory is its server user's, 0700): not ours to judge
            continue
        if stale and not running:
            shutil.rmtree(workdir, ignore_errors=True)


def scratch_dir(room: int) -> str | None:
    """READINESS_SCRATCH if set; else /dev/shm when it has room for `room` bytes twice over (and allows
    exec); else the default temporary directory.

    A throw-away cluster loses nothing in RAM, and creating files on this machine's disk is
    slow: a copy of initdb's output (1,000 files) takes 1.0-1.3 s there, 0.1 s in /dev/shm.
    """
    if os.environ.get(SCRATCH_ENV):
        return os.environ[SCRATCH_ENV]
    try:
        stats = os.statvfs(RAM_DIR)
    except OSError:
        return None
    free = stats.f_bavail * stats.f_frsize
    executable = not stats.f_flag & os.ST_NOEXEC  # as root, the pg_ctl wrapper is run from the work directory
    return str(RAM_DIR) if executable and os.access(RAM_DIR, os.W_OK) and free > 2 * room else None


def new_executor(
    pg_ctl: Path, seed: Path | None = None, room: int = CLUSTER_ROOM, superuser: str = "postgres"
) -> Executor:
    """An executor for a cluster in a new directory, on a free port, bootstrapped by `superuser` (a Supabase-like
    cluster's is supabase_admin); `seed` defaults to the cached initdb output."""
    parent = scratch_dir(room)
    sweep(Path(parent or tempfile.gettempdir()))
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=parent))
    workdir.chmod(0o755)
    executable = run_as_server_user(pg_ctl, workdir)
    return Executor(
        executable=str(executable),
        host="127.0.0.1",
        port=get_port(None),
        datadir=str(workdir / "data"),
        unixsocketdir=str(workdir),
        logfile=str(workdir / "postgresql.log"),
        startparams=f"-w -t {START_LIMIT_S}",
        dbname="readiness",
        user=superuser,
        postgres_options=FAST_SERVER_OPTIONS,
        seed=seed or cache.initdb_entry(pg_ctl, server_version(pg_ctl), superuser),
    )


def stop(executor: Executor, keep_log: Path | None = None) -> None:
    """Stop the cluster if it runs, keep its log as `keep_log`, remove its directory."""
    if executor.running():
        executor.stop()
    workdir = Path(executor.unixsocketdir)
    if keep_log is not None and Path(executor.logfile).is_file():
        keep_log.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(executor.logfile, keep_log)
    # After Ctrl-C an initdb may still be exiting, and writing, in there: try again for a few seconds.
    for _ in range(50):
        shutil.rmtree(workdir, ignore_errors=True)
        if not workdir.exists():
            return
        time.sleep(0.1)


@contextmanager
def ephemeral_server(pg_ctl: Path, keep_log: Path | None = None) -> Iterator[Executor]:
    """A throw-away cluster on a free port; its server log is copied to `keep_log` at the end."""
    executor = new_executor(pg_ctl)
    try:
        executor.start()
        yield executor
    finally:
        stop(executor, keep_log)
