"""Child runs in a process group of their own, which never outlive the wait for them.

subprocess.run SIGKILLs its child when the wait is cut short (at once on a timeout, 0.25 s after a
Ctrl-C). A readiness run killed so cannot stop its servers, which pg_ctl starts in sessions of
their own, and they run on. Here the child's group gets SIGINT instead, as a Ctrl-C in its own
terminal would, and STOP_LIMIT_S to stop its servers; only then SIGKILL. In a session of its own
the child sees no Ctrl-C meant for its parent, so it is interrupted exactly once, by us, whether
the parent's whole group or only its pid was signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

STOP_LIMIT_S = 120  # for an interrupted readiness run to stop its servers, on a loaded machine


def signal_group(child: subprocess.Popen, signum: int) -> None:  # type: ignore[type-arg]
    """`signum` to the child's group; nothing if the group has ended."""
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass


def stop(child: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Interrupt the child's group and wait for it, bounded; SIGKILL it after STOP_LIMIT_S, or at once on a
    second interrupt (which then goes on)."""
    if child.poll() is not None:
        return
    signal_group(child, signal.SIGINT)
    try:
        child.communicate(timeout=STOP_LIMIT_S)  # drains its pipes meanwhile: a full pipe would hold it
    except BaseException as cut_short:
        signal_group(child, signal.SIGKILL)
        child.wait()
        if not isinstance(cut_short, subprocess.TimeoutExpired):
            raise


@contextmanager
def started(args: list[str], **popen: object) -> Iterator[subprocess.Popen]:  # type: ignore[type-arg]
    """The child, started in a session of its own; stopped (see stop) if it is still running when the block
    is left, by an exception or not."""
    child = subprocess.Popen(args, start_new_session=True, **popen)  # type: ignore[call-overload]
    try:
        yield child
    finally:
        stop(child)


def run(args: list[str], *, timeout: float, **popen: object) -> subprocess.CompletedProcess[str]:
    """subprocess.run(args, capture_output=True, text=True, timeout=...) whose child is stopped, never
    SIGKILLed first, when the timeout passes (TimeoutExpired is raised then, as by subprocess.run) or
    the caller is interrupted."""
    with started(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen) as child:
        stdout, stderr = child.communicate(timeout=timeout)
    return subprocess.CompletedProcess(args, child.returncode, stdout, stderr)
