"""A run against a target never stalls the application's writes: outside its budgeted lock moments it holds no
lock on the target's tables that conflicts with ROW EXCLUSIVE, and inside one it holds what it announces.

Each case holds the run at a moment it announces (READINESS_HOLD_AT), reads the target's pg_locks for the run's
sessions while it is held, then lets it go on (READINESS_RESUME): no timing, only states.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from readiness import PROJECT_ROOT
from readiness.postgres import cache, interrupt, process_group
from readiness.schema.files import MIGRATION_0023, PREREQUISITE_FILES
from tests.suite.helpers import NESTED_VOLUME
from tests.suite.targets import OPERATIONAL, state_of

pytestmark = pytest.mark.suite

REACH_LIMIT_S = 300  # for a held run to reach its moment, or a run to end, on a loaded machine
# Locks the run's sessions hold on the target's tables in modes that stall an application's row writes.
STALLING = """
SELECT c.relname, l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
JOIN pg_class c ON c.oid = l.relation AND c.relkind IN ('r', 'p')
WHERE a.application_name = 'readiness-0024' AND a.datname = current_database() AND l.granted
  AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
ORDER BY 1, 2
"""
WAITING_FOR_VOLUME = "waiting for the volume for task 3"
FK_LOCK = "ShareRowExclusiveLock"  # what 0024's foreign keys take on the tables they reference


def stalling(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(STALLING).fetchall()


def announced(phases: Path, moment: str) -> bool:
    return phases.is_file() and moment in phases.read_text().splitlines()


@pytest.mark.parametrize(
    ("moment", "held"),
    [
        (interrupt.TARGET_READ, []),
        (interrupt.LOCK_MOMENT, [("organization", FK_LOCK), ("users_extended", FK_LOCK)]),
        (interrupt.VOLUME_LOADING, []),  # held in the volume's thread while the tests of tasks 1, 2, 4-8 run
        (interrupt.SIGNOFF_WRITING, []),
    ],
    ids=["target read", "lock moment", "tests running", "sign-off being written"],
)  # fmt: skip
def test_a_run_holds_no_stalling_lock_outside_its_moments(
    target, nested_cache: Path, tmp_path: Path, moment: str, held: list[tuple[str, str]]
) -> None:
    """Held at a moment it announces, the run holds on the target's tables no lock that stalls row writes; held
    inside its lock moment, exactly the locks it claims; then it goes on to APPROVED, leaving nothing."""
    dsn = target(OPERATIONAL, *PREREQUISITE_FILES, MIGRATION_0023)
    before = state_of(dsn)
    output, phases, resume = tmp_path / "output.txt", tmp_path / "phases.txt", tmp_path / "resume"
    env = {**os.environ, cache.ROOT_ENV: str(nested_cache), interrupt.PHASES_ENV: str(phases),
           interrupt.HOLD_ENV: moment, interrupt.RESUME_ENV: str(resume)}  # fmt: skip
    samples = []
    with output.open("w") as sink, process_group.started(
        [sys.executable, "-m", "pytest", "-m", "readiness", "-q", f"--report-dir={tmp_path / 'reports'}",
         f"--volume={NESTED_VOLUME}", f"--dsn={dsn}"],
        cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True,
    ) as run:  # fmt: skip
        deadline = time.monotonic() + REACH_LIMIT_S
        while not announced(phases, moment) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert announced(phases, moment), f"the run never reached '{moment}':\n{output.read_text()[-3000:]}"
        samples.append(stalling(dsn))
        if moment == interrupt.VOLUME_LOADING:  # sample the tests as they run, until they wait for the volume
            while WAITING_FOR_VOLUME not in output.read_text() and run.poll() is None and time.monotonic() < deadline:
                samples.append(stalling(dsn))
        resume.touch()
        run.wait(timeout=REACH_LIMIT_S)
    signoff = json.loads((tmp_path / "reports" / "signoff.json").read_text())
    assert (run.returncode, signoff["verdict"]) == (0, "APPROVED"), output.read_text()[-3000:]
    assert samples[0] == held, f"held at '{moment}', the run holds on the target: {samples[0]}"
    assert all(sample == [] for sample in samples[1:]), f"while the tests ran, the run held: {samples}"
    assert state_of(dsn) == before, "the run left residue in the target"
