"""Benchmark: build the migrated schema and load the readiness volume; print each step's time.

Run: make bench-volume  (or: python bench/volume.py ROWS)
"""

from __future__ import annotations

import sys
from functools import partial

from migrated import migrated_server  # bench/, on the path when a benchmark runs as a script

from readiness.databases import volume
from readiness.postgres.connection import Timeouts, connect

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


def main() -> None:
    """Start a server, build the schema, load ROWS activity-log rows, print the figures."""
    with migrated_server() as (_, state, took):
        timings = took | volume.load(state.conninfo, ROWS, partial(connect, timeouts=Timeouts(statement_ms=0)))
    for step, seconds in timings.items():
        print(f"{step}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
