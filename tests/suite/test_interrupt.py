"""Ctrl-C (or CI's SIGTERM) at any moment of a run stops its servers and removes their directories."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from readiness import PROJECT_ROOT, cache, server
from tests.suite.conftest import NESTED_VOLUME

pytestmark = pytest.mark.suite


STARTED = "volume for task 3:"  # the run's first line: its server is up, its volume on the way


def server_data_dirs(scratch: Path) -> set[str]:
    """The -D of every postgres server running in `scratch`."""
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return {line.split(" -D ")[1].split()[0] for line in ps.splitlines() if f"postgres -D {scratch}/" in line}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two workers"])
@pytest.mark.parametrize(
    ("sent", "after_s"),
    [(signal.SIGINT, 0.0), (signal.SIGINT, 1.0), (signal.SIGINT, 2.5), (signal.SIGTERM, 1.0)],
    ids=["Ctrl-C at once", "Ctrl-C after 1 s", "Ctrl-C after 2.5 s", "SIGTERM after 1 s"],
)
def test_interrupt_leaves_no_server_and_no_directory(
    nested_cache: Path, tmp_path: Path, workers, sent: signal.Signals, after_s: float
) -> None:
    """A signal to the run's process group (Ctrl-C, or CI's SIGTERM) once it has started: no server, no directory."""
    scratch = Path(tempfile.mkdtemp(dir=server.scratch_dir(server.CLUSTER_ROOM)))  # the run's own: others may run
    scratch.chmod(0o755)  # as root, the server's own user works inside
    output = tmp_path / "output.txt"
    with output.open("w") as sink:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-m", "readiness", "-q", f"--report-dir={tmp_path}",
             f"--volume={NESTED_VOLUME}", *workers],
            cwd=PROJECT_ROOT, env={**os.environ, cache.ROOT_ENV: str(nested_cache), server.SCRATCH_ENV: str(scratch)},
            stdout=sink, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while STARTED not in output.read_text() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.poll() is None, f"the run ended before it started its clusters:\n{output.read_text()[-3000:]}"
        time.sleep(after_s)
        os.killpg(run.pid, sent)
        run.wait(timeout=120)
    # Mostly exit 2 (interrupted); never 0. Depending on where SIGINT lands, a third party can turn it
    # into exit 1: psycopg raises the error of a statement that was failing anyway instead of
    # KeyboardInterrupt (the run goes on, NOT APPROVED), pytest 9.2 can fail to print the interrupt.
    text = output.read_text()
    assert run.returncode not in (0, None), text[-3000:]
    assert "PytestUnraisableExceptionWarning" not in text, text[-3000:]  # a connection left open at exit
    deadline = time.monotonic() + 10  # a server told to stop may take a moment to exit
    while (left := server_data_dirs(scratch)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"servers of the interrupted run still running: {left}"
    assert list(scratch.iterdir()) == [], "cluster directories left behind"
    scratch.rmdir()
