"""Readiness runs side by side in one checkout, sharing one empty cache: each signs off as it would alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from readiness import PROJECT_ROOT
from readiness.postgres import cache, process_group
from tests.suite.helpers import NESTED_VOLUME

pytestmark = pytest.mark.suite

RUNS = {"first": [], "second": [], "two workers": ["-n", "2"]}
RUN_LIMIT_S = 900  # three cold runs share two cores here: each loads its volume meanwhile


def test_three_runs_at_once_each_approve(tmp_path: Path) -> None:
    """Three runs started together (two serial, one -n 2) on an empty cache: each APPROVED, the cache whole."""
    shared_cache = tmp_path / "cache"
    popen = {"cwd": PROJECT_ROOT, "env": {**os.environ, cache.ROOT_ENV: str(shared_cache)}, "text": True}
    popen |= {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    pytest_readiness = [sys.executable, "-m", "pytest", "-m", "readiness", "-q", f"--volume={NESTED_VOLUME}"]
    with ExitStack() as stack:
        started = {
            name: stack.enter_context(
                process_group.started([*pytest_readiness, f"--report-dir={tmp_path / name}", *workers], **popen)
            )
            for name, workers in RUNS.items()
        }
        outputs = {}
        for name, run in started.items():
            try:
                outputs[name] = run.communicate(timeout=RUN_LIMIT_S)[0]
            except subprocess.TimeoutExpired:
                pytest.fail(f"run '{name}' still alive after {RUN_LIMIT_S} s: all three are interrupted")
    for name, run in started.items():
        signoff = json.loads((tmp_path / name / "signoff.json").read_text())
        assert (run.returncode, signoff["verdict"]) == (0, "APPROVED"), f"{name}:\n{outputs[name][-3000:]}"
        assert "INTERNALERROR" not in outputs[name], outputs[name][-3000:]
    # Whole entries only: the initdb output and one volume (the runs that lost the race kept the winner's).
    names = sorted(path.name for path in shared_cache.iterdir())
    assert [name for name in names if name.startswith(".")] == [], f"entries half written: {names}"
    assert len([name for name in names if name.startswith("volume-")]) == 1, names
