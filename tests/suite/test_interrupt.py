"""Ctrl-C (or CI's SIGTERM) at each moment a run announces: exit 2, no server, no directory left.

The run is held at the moment (READINESS_HOLD_AT) until the signal comes, so each case means the
same on a fast machine and a slow one: no case waits a number of seconds and hopes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from readiness import PROJECT_ROOT
from readiness.databases.volume_cluster import VolumeCluster
from readiness.postgres import cache, interrupt, process_group, server
from readiness.postgres.connection import Timeouts
from readiness.schema.files import DEFAULT_MIGRATION
from tests.suite.helpers import NESTED_VOLUME

pytestmark = pytest.mark.suite

REACH_LIMIT_S = 300  # for the run to reach the moment: a start-up, even on a loaded machine
END_LIMIT_S = 120  # for the run to end once signalled: stopping two servers


def servers_in(scratch: Path) -> dict[str, int]:
    """The data directory and pid of every postgres server running in `scratch`."""
    # ww: under pytest, ps cut its lines at 80 columns here, before " -D ", and no server was ever seen.
    ps = subprocess.run(["ps", "ww", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in ps.splitlines():
        pid, _, args = line.strip().partition(" ")
        if f"postgres -D {scratch}/" in args:
            found[args.split(" -D ")[1].split()[0]] = int(pid)
    return found


def wait_for_servers_to_exit(scratch: Path, limit: float) -> dict[str, int]:
    """The servers still running in `scratch` after up to `limit` seconds."""
    deadline = time.monotonic() + limit
    while (left := servers_in(scratch)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory for this test's clusters alone (other runs may be going on). Whatever a failed case left
    in it, servers included, is stopped and removed afterwards."""
    path = Path(tempfile.mkdtemp(dir=server.scratch_dir(server.CLUSTER_ROOM)))
    path.chmod(0o755)  # as root, the server's own user works inside
    yield path
    for pid in servers_in(path).values():
        os.kill(pid, signal.SIGQUIT)  # the postmaster's immediate shutdown
    wait_for_servers_to_exit(path, 30)
    shutil.rmtree(path, ignore_errors=True)


def wait_for_end(run: subprocess.Popen, sent: signal.Signals, output: Path) -> None:  # type: ignore[type-arg]
    """Until the signalled run ends; fails (and kills its group) if it is still alive after END_LIMIT_S."""
    try:
        run.wait(timeout=END_LIMIT_S)
    except subprocess.TimeoutExpired:
        process_group.signal_group(run, signal.SIGKILL)  # the group may have ended meanwhile
        run.wait()
        pytest.fail(f"the run was still alive {END_LIMIT_S} s after {sent.name}:\n{output.read_text()[-3000:]}")


def assert_nothing_left(scratch: Path) -> None:
    """No server runs in `scratch` (after a moment to exit) and nothing is left in it."""
    left = wait_for_servers_to_exit(scratch, 10)  # a server told to stop may take a moment to exit
    assert not left, f"servers of the interrupted run still running: {sorted(left)}"
    assert list(scratch.iterdir()) == [], "cluster directories left behind"


def wait_for_moment(run: subprocess.Popen, phases: Path, moment: str, output: Path) -> None:  # type: ignore[type-arg]
    """Until the run announces `moment`; fails (and kills the run) if it ends or never gets there."""
    deadline = time.monotonic() + REACH_LIMIT_S
    while run.poll() is None and time.monotonic() < deadline:
        if phases.is_file() and moment in phases.read_text().splitlines():
            return
        time.sleep(0.05)
    if run.poll() is None:
        process_group.signal_group(run, signal.SIGKILL)  # the group may have ended meanwhile
    pytest.fail(f"the run never reached '{moment}' (exit {run.poll()}):\n{output.read_text()[-3000:]}")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two workers"])
@pytest.mark.parametrize(
    ("sent", "moment"),
    [*((signal.SIGINT, moment) for moment in interrupt.MOMENTS), (signal.SIGTERM, interrupt.TESTS_RUNNING)],
    ids=[*(f"Ctrl-C, {moment}" for moment in interrupt.MOMENTS), f"SIGTERM, {interrupt.TESTS_RUNNING}"],
)
def test_interrupt_leaves_no_server_and_no_directory(
    nested_cache: Path, scratch: Path, tmp_path: Path, workers, sent: signal.Signals, moment: str
) -> None:
    """A signal to the run's process group at an announced moment: exit 2, no server, no directory."""
    output, phases = tmp_path / "output.txt", tmp_path / "phases.txt"
    env = {
        **os.environ,
        cache.ROOT_ENV: str(nested_cache),
        server.SCRATCH_ENV: str(scratch),
        interrupt.PHASES_ENV: str(phases),
        interrupt.HOLD_ENV: moment,
    }
    with output.open("w") as sink, process_group.started(
        [sys.executable, "-m", "pytest", "-m", "readiness", "-q", f"--report-dir={tmp_path}",
         f"--volume={NESTED_VOLUME}", *workers],
        cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True,
    ) as run:  # fmt: skip
        wait_for_moment(run, phases, moment, output)
        os.killpg(run.pid, sent)
        wait_for_end(run, sent, output)
    text = output.read_text()
    assert run.returncode == pytest.ExitCode.INTERRUPTED, f"exit {run.returncode}, not 2:\n{text[-3000:]}"
    assert "INTERNALERROR" not in text, text[-3000:]
    assert "PytestUnraisableExceptionWarning" not in text, text[-3000:]  # a connection left open at exit
    assert_nothing_left(scratch)


OUTER_RUN = """
import json, os, sys
from readiness import PROJECT_ROOT
from readiness.postgres import process_group

def test_a_nested_readiness_run():
    inner = json.loads(os.environ["NESTED_RUN"])
    process_group.run([sys.executable, "-m", "pytest", "-m", "readiness", "-q", *inner.pop("args")],
                      cwd=PROJECT_ROOT, timeout=600, env={**os.environ, **inner})
"""


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["kill -INT", "kill -TERM"])
def test_a_signal_to_the_suite_alone_stops_its_nested_runs(
    nested_cache: Path, scratch: Path, tmp_path: Path, sent: signal.Signals
) -> None:
    """A signal to the pid of a pytest that waits for a nested run (kill PID; a CI runner that signals one
    process): the nested run, in a session of its own, is interrupted in turn and stops its servers; both exit 2."""
    (tmp_path / "test_outer.py").write_text(OUTER_RUN)
    output, phases = tmp_path / "output.txt", tmp_path / "phases.txt"
    inner = {
        "args": [f"--report-dir={tmp_path / 'inner'}", f"--volume={NESTED_VOLUME}"],
        interrupt.PHASES_ENV: str(phases),
        interrupt.HOLD_ENV: interrupt.SERVER_STARTED,
    }
    env = {**os.environ, cache.ROOT_ENV: str(nested_cache), server.SCRATCH_ENV: str(scratch)}
    env["NESTED_RUN"] = json.dumps(inner)
    with output.open("w") as sink, process_group.started(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--report-dir={tmp_path / 'outer'}",
         str(tmp_path / "test_outer.py")],
        cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True,
    ) as outer:  # fmt: skip
        wait_for_moment(outer, phases, interrupt.SERVER_STARTED, output)
        os.kill(outer.pid, sent)  # its pid alone
        wait_for_end(outer, sent, output)
    text = output.read_text()
    assert outer.returncode == pytest.ExitCode.INTERRUPTED, f"exit {outer.returncode}, not 2:\n{text[-3000:]}"
    assert "INTERNALERROR" not in text, text[-3000:]
    assert_nothing_left(scratch)


SWALLOWING = """
import os, signal

def test_a_third_party_swallows_the_interrupt():
    try:
        os.kill(os.getpid(), signal.SIGINT)
    except KeyboardInterrupt:
        pass  # as hypothesis's gc callback does: "Exception ignored in"

def test_after_the_interrupt():
    pass
"""


def test_a_swallowed_interrupt_still_ends_the_run(tmp_path: Path) -> None:
    """A Ctrl-C whose KeyboardInterrupt a third party swallows still stops the run after that test, with exit 2."""
    (tmp_path / "test_swallowing.py").write_text(SWALLOWING)
    run = process_group.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
         f"--report-dir={tmp_path / 'reports'}", str(tmp_path)],
        cwd=tmp_path, timeout=END_LIMIT_S,
    )  # fmt: skip
    assert run.returncode == pytest.ExitCode.INTERRUPTED, run.stdout[-3000:] + run.stderr[-3000:]
    assert "test_after_the_interrupt" not in run.stdout, run.stdout[-3000:]


FAILING_START = """
import os, signal, time

def pytest_sessionstart(session):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        pass  # as execnet's reader does: the worker it talks to died of the same Ctrl-C
    raise EOFError("couldn't load message header, expected 9 bytes, got 0")
"""


def test_interrupt_while_workers_start_exits_2(tmp_path: Path) -> None:
    """A Ctrl-C that kills xdist's workers while they start makes xdist raise EOFError: the run still exits 2."""
    (tmp_path / "conftest.py").write_text(FAILING_START)
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    run = process_group.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
         f"--report-dir={tmp_path / 'reports'}", str(tmp_path)],
        cwd=tmp_path, timeout=END_LIMIT_S,
    )  # fmt: skip
    assert run.returncode == pytest.ExitCode.INTERRUPTED, run.stdout[-3000:] + run.stderr[-3000:]
    assert "INTERNALERROR" not in run.stdout + run.stderr, run.stdout[-3000:]


def test_stopping_the_volume_while_it_is_being_made_ends_its_thread(
    nested_cache: Path, scratch: Path, monkeypatch
) -> None:
    """stop() during the volume's preparation (held where the load begins) ends the thread and the server."""
    phases = scratch / "phases.txt"
    monkeypatch.setenv(cache.ROOT_ENV, str(nested_cache))
    monkeypatch.setenv(server.SCRATCH_ENV, str(scratch))
    monkeypatch.setenv(interrupt.PHASES_ENV, str(phases))
    monkeypatch.setenv(interrupt.HOLD_ENV, interrupt.VOLUME_LOADING)
    cluster = VolumeCluster(server.find_pg_ctl(None), DEFAULT_MIGRATION, NESTED_VOLUME, Timeouts(), scratch / "v.log")
    cluster.start()
    deadline = time.monotonic() + REACH_LIMIT_S
    while not phases.is_file() and cluster.handle.status_now() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert phases.is_file(), f"the volume never reached '{interrupt.VOLUME_LOADING}': {cluster.handle.status_now()}"
    assert cluster.executor.running(), "the volume's server should be up when the load is about to begin"
    cluster.stop()  # returns once the thread has ended (else it raises VolumeUnavailable)
    assert not cluster.thread.is_alive()
    assert servers_in(scratch) == {}, "the volume's server still runs"
    assert not Path(cluster.executor.unixsocketdir).exists(), "the volume's directory was left behind"


INTERRUPTED_START = """
import os, signal, sys, threading
from readiness.postgres import server
executor = server.new_executor(server.find_pg_ctl(None))
print(executor.datadir, flush=True)
if sys.argv[1] == "pg_ctl start":
    executor.init_directory()  # the cluster from the cache first: the signal then lands in pg_ctl start
executor.command_parts = ["sh", "-c", 'sleep 1; exec "$@"', "sh", *executor.command_parts]  # pg_ctl, a second late
threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    executor.start()
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
finally:
    server.stop(executor)
"""


@pytest.mark.parametrize("during", ["initdb", "pg_ctl start"])
def test_interrupt_while_the_server_is_made_leaves_nothing(during: str, scratch: Path, tmp_path: Path) -> None:
    """Ctrl-C during initdb (an empty cluster cache) or while `pg_ctl start` runs: each, in a session of its
    own, is waited out and what it made is stopped and removed before the run ends; nothing is left."""
    env = {**os.environ, server.SCRATCH_ENV: str(scratch)}
    if during == "initdb":
        env[cache.ROOT_ENV] = str(tmp_path / "empty-cache")
    run = process_group.run(
        [sys.executable, "-c", INTERRUPTED_START, during], cwd=PROJECT_ROOT, timeout=END_LIMIT_S, env=env,
    )  # fmt: skip
    lines = run.stdout.split()
    assert lines[1:] == ["interrupted"], run.stdout + run.stderr[-2000:]
    ps = subprocess.run(["ps", "ww", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    left = [line for line in ps.splitlines() if lines[0] in line]
    assert left == [], f"processes of the interrupted start still running: {left}"
    assert list(scratch.iterdir()) == [], "cluster directories left behind"


def test_servers_carry_no_mirakuru_uuid(tmp_path: Path) -> None:
    """No server the suite starts has mirakuru_uuid in its environment: mirakuru's atexit, in every Python process
    that exits, SIGKILLs each process whose mirakuru_uuid contains that process's pid, so one run's exit once
    killed another run's volume server, which left no line in its log."""
    with server.ephemeral_server(server.find_pg_ctl(None)) as executor:
        pid = int((Path(executor.datadir) / "postmaster.pid").read_text().split()[0])
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert any(entry.startswith(b"PATH=") for entry in environment), "the postmaster's environment was not read"
    assert not [entry for entry in environment if entry.startswith(b"mirakuru_uuid=")]
