"""Soak: the timing- and process-sensitive tests of the suite, N rounds; prints the failures per test.

Run: make soak ROUNDS=20  (or: python bench/soak.py ROUNDS)
Each round is one pytest process over the interrupt, concurrent-runs, parallel and cache tests;
a test that fails in any round is flaky until its cause is found.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from readiness import PROJECT_ROOT
from readiness.postgres import process_group

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
ROUND_LIMIT_S = 3600  # a round takes 2-6 min here; a round that hangs is stopped and counted as failed
HUNG = "(the round itself)"
TESTS = [f"tests/suite/{name}.py" for name in ("test_interrupt", "test_concurrent", "test_parallel", "test_cache")]


def main() -> int:
    """Run the rounds; exit 1 when any test failed in any of them."""
    failures: Counter[str] = Counter()
    seen: set[str] = set()
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(1, ROUNDS + 1):
            junit = Path(scratch) / f"round-{round_}.xml"
            started = time.monotonic()
            failed = []
            try:
                process_group.run(
                    [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--junitxml={junit}",
                     f"--report-dir={scratch}/reports", *TESTS],
                    cwd=PROJECT_ROOT, timeout=ROUND_LIMIT_S,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                failures[HUNG] += 1
                failed.append(f"{HUNG}: still running after {ROUND_LIMIT_S} s, interrupted")
            cases = ET.parse(junit).getroot().iter("testcase") if junit.is_file() else []
            for case in cases:
                name = f"{case.get('classname')}::{case.get('name')}"
                seen.add(name)
                problem = case.find("failure") if case.find("failure") is not None else case.find("error")
                if problem is not None:
                    failures[name] += 1
                    failed.append(f"{name}: {(problem.get('message') or '').splitlines()[0][:300]}")
            print(f"round {round_}/{ROUNDS}: {len(failed)} failed in {time.monotonic() - started:.0f} s", flush=True)
            for name in failed:
                print(f"  FAILED {name}", flush=True)
    print(f"\n{ROUNDS} rounds, {len(seen)} tests, failures per test:")
    for name in sorted(seen | failures.keys()):
        print(f"  {failures[name]:3d}  {name}")
    print(f"total failures: {sum(failures.values())}")
    return 1 if failures or not seen else 0


if __name__ == "__main__":
    sys.exit(main())
