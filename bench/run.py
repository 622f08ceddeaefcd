"""Benchmark: whole readiness runs from a cold start; prints the median of each figure.

Run: make bench  (or: python bench/run.py RUNS VOLUME [-n 2])
Each run is `pytest -m readiness` in a subprocess: a new server, schema and volume every time.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from readiness import PROJECT_ROOT

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
VOLUME = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
EXTRA = sys.argv[3:]


def seconds(value: str) -> float | None:
    """A figure such as "1.2 s" or "35 ms" in seconds; None for a figure that is not a time."""
    match = re.fullmatch(r"([\d.]+) (s|ms)", value)
    return None if match is None else float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def one_run(report_dir: Path) -> dict[str, float]:
    """One cold readiness run: its wall time, its figures in seconds and each task's test time."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "readiness", "-q", f"--volume={VOLUME}", f"--report-dir={report_dir}",
         *EXTRA],
        cwd=PROJECT_ROOT, capture_output=True, check=False,
    )  # fmt: skip
    figures: dict[str, float] = {"whole readiness run (wall)": time.perf_counter() - started}
    signoff = json.loads((report_dir / "signoff.json").read_text())
    for name, value in signoff["measurements"].items():
        if (number := seconds(value)) is not None and ("volume load" in name or "server" in name or "schema" in name):
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
    """Run RUNS cold readiness runs and print the median of every figure."""
    runs = []
    for i in range(RUNS):
        with tempfile.TemporaryDirectory() as report_dir:
            runs.append(one_run(Path(report_dir)))
        print(f"run {i + 1}/{RUNS}: {runs[-1]['whole readiness run (wall)']:.1f} s", flush=True)
    print(f"\nmedian of {RUNS} cold runs, volume {VOLUME:,} rows {' '.join(EXTRA)}")
    for name in runs[0]:
        print(f"  {name:<60} {statistics.median(run.get(name, 0.0) for run in runs):10.2f}")


if __name__ == "__main__":
    main()
