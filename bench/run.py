"""Benchmark: whole readiness runs, each a new process and server; prints the median of each figure.

Run: make bench  (or: python bench/run.py RUNS VOLUME [--cold] [-n 2])
Each run is `pytest -m readiness` in a subprocess: a new server and schema every time. The
volume comes from the cluster cache, as in a DBA's repeated runs (one untimed run fills it
first); with --cold each run gets an empty cache: initdb and the whole volume load are paid,
as on a new machine or after the SQL files changed.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from readiness import PROJECT_ROOT
from readiness.postgres import cache, process_group

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
VOLUME = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
COLD = "--cold" in sys.argv[3:]
EXTRA = [arg for arg in sys.argv[3:] if arg != "--cold"]


def seconds(value: str) -> float | None:
    """A figure such as "1.2 s" or "35 ms" in seconds; None for a figure that is not a time."""
    match = re.fullmatch(r"([\d.]+) (s|ms)", value)
    return None if match is None else float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def one_run(report_dir: Path, env: dict[str, str]) -> dict[str, float]:
    """One readiness run: its wall time, its figures in seconds and each task's test time."""
    started = time.perf_counter()
    process_group.run(
        [sys.executable, "-m", "pytest", "-m", "readiness", "-q", f"--volume={VOLUME}", f"--report-dir={report_dir}",
         *EXTRA],
        cwd=PROJECT_ROOT, timeout=3600, env={**os.environ, **env},
    )  # fmt: skip
    figures: dict[str, float] = {"whole readiness run (wall)": time.perf_counter() - started}
    signoff = json.loads((report_dir / "signoff.json").read_text())
    for name, value in signoff["measurements"].items():
        if (number := seconds(value)) is not None and (name.startswith(("volume:", "server", "schema"))):
            figures[name] = number
    tasks: dict[str, float] = defaultdict(float)
    for case in ET.parse(report_dir / "junit.xml").getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        if module.startswith("test_0"):
            tasks[f"task {module[6]} tests ({module})"] += float(case.get("time", 0))
    figures.update(tasks)
    figures["tests"] = sum(task["passed"] + task["failed"] + task["blocked"] for task in signoff["tasks"])
    figures["hypothesis examples"] = signoff["hypothesis_examples"]["total"]
    figures["verdict APPROVED"] = float(signoff["verdict"] == "APPROVED")
    return figures


def main() -> None:
    """Run RUNS readiness runs and print the median of every figure."""
    runs = []
    if not COLD:
        with tempfile.TemporaryDirectory() as report_dir:
            one_run(Path(report_dir), {})  # fills the cache if this volume is not in it yet
    for i in range(RUNS):
        with tempfile.TemporaryDirectory() as report_dir, tempfile.TemporaryDirectory() as empty_cache:
            runs.append(one_run(Path(report_dir), {cache.ROOT_ENV: empty_cache} if COLD else {}))
        print(f"run {i + 1}/{RUNS}: {runs[-1]['whole readiness run (wall)']:.1f} s", flush=True)
    how = "empty cache (cold)" if COLD else "volume from the cache"
    print(f"\nmedian of {RUNS} runs, volume {VOLUME:,} rows, {how} {' '.join(EXTRA)}")
    for name in runs[0]:
        print(f"  {name:<60} {statistics.median(run.get(name, 0.0) for run in runs):10.2f}")


if __name__ == "__main__":
    main()
