"""Ctrl-C and SIGTERM end a run with exit 2 wherever they land; the moments a run announces.

Python runs a signal handler between two bytecodes of the main thread, and a third party can
swallow the KeyboardInterrupt it raises (hypothesis's gc callback does: "Exception ignored in").
So the handler also records the signal, and the run checks the record after every test and at
its end: a swallowed interrupt still stops the run and still exits 2.

A run announces the moments a person (or a test of the suite) may interrupt it at, in a file
named by READINESS_PHASES; READINESS_HOLD_AT=<moment> makes the run wait there for the signal,
so a test interrupts "while the sign-off is written", not "after 2.5 s" of a machine's speed; or,
when READINESS_RESUME names a file, until that file exists (a test looks at the run while it is held,
then lets it go on).
"""

from __future__ import annotations

import os
import signal
import threading
import time

PHASES_ENV = "READINESS_PHASES"
HOLD_ENV = "READINESS_HOLD_AT"
RESUME_ENV = "READINESS_RESUME"
HOLD_LIMIT_S = 300  # a held run nobody signals goes on by itself

# The moments, in the order a run reaches them.
SERVER_STARTED = "server started"
VOLUME_LOADING = "volume loading"
TESTS_RUNNING = "tests running"
SIGNOFF_WRITING = "sign-off being written"
MOMENTS = (SERVER_STARTED, VOLUME_LOADING, TESTS_RUNNING, SIGNOFF_WRITING)
# Against a target: its definitions read and its shadow built; a lock moment on it (readiness.rules.budget), while held.
TARGET_READ = "target read, shadow built"
LOCK_MOMENT = "lock moment on the target"

_received: list[int] = []


def handle(signum: int, frame: object) -> None:
    """Record the signal, then interrupt as Ctrl-C does."""
    _received.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> None:
    """SIGINT and SIGTERM (how CI cancels a job) both interrupt, and are remembered."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)


def received() -> int | None:
    """The signal that interrupted the run, if one did (even when its KeyboardInterrupt was swallowed)."""
    return _received[0] if _received else None


def announce(moment: str, stopping: threading.Event | None = None) -> None:
    """Say the run reached `moment`; wait there for a signal when READINESS_HOLD_AT names it.

    In a background thread, the wait ends when `stopping` is set: the signal goes to the main thread.
    """
    path = os.environ.get(PHASES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as phases:
            phases.write(f"{moment}\n")
    if os.environ.get(HOLD_ENV) != moment:
        return
    deadline = time.monotonic() + HOLD_LIMIT_S
    resume = os.environ.get(RESUME_ENV)
    while time.monotonic() < deadline and not (stopping is not None and stopping.is_set()):
        if resume and os.path.exists(resume):
            return
        time.sleep(0.05)  # the main thread's KeyboardInterrupt is raised here
