"""Benchmark: build the migrated schema and load the readiness volume; print each step's time.

Run: make bench-volume  (or: python bench/volume.py ROWS)
"""

from __future__ import annotations

import sys
import time
from functools import partial

from readiness import server, volume
from readiness.database import DEFAULT_MIGRATION, Timeouts, connect, create_ephemeral

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


def main() -> None:
    """Start a server, build the schema, load ROWS activity-log rows, print the figures."""
    started = time.perf_counter()
    with server.ephemeral_server(server.find_pg_ctl(None)) as pg:
        ready = time.perf_counter()
        state = create_ephemeral(pg.host, pg.port, pg.user, Timeouts(), DEFAULT_MIGRATION)
        built = time.perf_counter()
        timings = volume.load(state.conninfo, ROWS, partial(connect, timeouts=Timeouts(statement_ms=0)))
    print(f"server start: {ready - started:.2f} s")
    print(f"schema build: {built - ready:.2f} s")
    for step, seconds in timings.items():
        print(f"{step}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
