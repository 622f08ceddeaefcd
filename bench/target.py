"""Benchmark: a readiness run against a target while the application writes to it, every 100 ms.

A target with the prerequisites and 0023 (0024 absent), then the same with 0024 deployed. A writer updates
organization and auth.users_extended every 100 ms (as the application would, lock_timeout 5 s) for the whole
run; the benchmark prints the longest any of its writes waited, and the run's own lock moments on the target
(signoff.json's lock_moments). The gate's budget is 1 s a moment: no write should wait longer than about that.
Run: make bench-target  (or: python bench/target.py RUNS)
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

from readiness import PROJECT_ROOT
from readiness.postgres import process_group, server
from readiness.schema.apply import apply_file
from readiness.schema.files import DEFAULT_MIGRATION, MIGRATION_0023, PREREQUISITE_FILES

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
WRITE_EVERY_S = 0.1
SEED = """
INSERT INTO organization (name, slug) SELECT 'tenant ' || g, 'tenant-' || g FROM generate_series(1, 50) g;
INSERT INTO auth.users_extended (id, org_id) SELECT gen_random_uuid(), id FROM organization;
"""


class Writer(threading.Thread):
    """Updates one organisation and one user every WRITE_EVERY_S; keeps how long each write took."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.stop, self.waits = dsn, threading.Event(), []  # type: ignore[var-annotated]
        self.errors: list[str] = []

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, options="-c lock_timeout=5000") as conn:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    with conn.transaction():
                        conn.execute("UPDATE organization SET name = name WHERE slug = 'tenant-1'")
                        conn.execute("UPDATE auth.users_extended SET email = email WHERE org_id = "
                                     "(SELECT id FROM organization WHERE slug = 'tenant-2')")  # fmt: skip
                except psycopg.Error as error:
                    self.errors.append(str(error).strip())
                self.waits.append(time.monotonic() - started)
                self.stop.wait(WRITE_EVERY_S)


def make_target(pg: server.Executor, name: str, files: list[Path]) -> str:
    """A database of `pg` built from `files`, with organisations and users the writer updates; its DSN."""
    with psycopg.connect(host=pg.host, port=pg.port, user=pg.user, dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(host=pg.host, port=pg.port, user=pg.user, dbname=name) as conn:
        for path in files:
            apply_file(conn, path, trusted=True)
        conn.execute(SEED)
    return f"postgresql://{pg.user}@{pg.host}:{pg.port}/{name}"


def one_run(dsn: str) -> tuple[float, float, dict[str, object]]:
    """(the run's wall time, the longest write wait, the run's lock moments) of one readiness run on `dsn`."""
    writer = Writer(dsn)
    writer.start()
    with tempfile.TemporaryDirectory() as reports:
        started = time.perf_counter()
        process_group.run([sys.executable, "-m", "pytest", "-m", "readiness", "-q", "--volume=100000",
                           f"--report-dir={reports}", f"--dsn={dsn}"], cwd=PROJECT_ROOT, timeout=3600,
                          env=dict(os.environ))  # fmt: skip
        took = time.perf_counter() - started
        signoff = json.loads((Path(reports) / "signoff.json").read_text())
    writer.stop.set()
    writer.join()
    assert not writer.errors, writer.errors[:3]
    return took, max(writer.waits), signoff.get("lock_moments") or {"per_table": {}}


def main() -> None:
    """Both targets, RUNS runs each: the longest write wait and the lock moments."""
    with server.ephemeral_server(server.find_pg_ctl(None)) as pg:
        before = [*PREREQUISITE_FILES, MIGRATION_0023]
        targets = {
            "0024 absent": make_target(pg, "bench_absent", before),
            "0024 deployed": make_target(pg, "bench_deployed", [*before, DEFAULT_MIGRATION]),
        }
        for label, dsn in targets.items():
            runs = [one_run(dsn) for _ in range(RUNS)]
            print(f"{label}: {RUNS} runs, a write to organization and auth.users_extended every 100 ms")
            print(f"  run (wall)                         median {statistics.median(r[0] for r in runs):8.2f} s")
            print(f"  longest write wait, of every run   {max(r[1] for r in runs) * 1000:8.0f} ms")
            print(f"  longest write wait, median of runs {statistics.median(r[1] for r in runs) * 1000:8.0f} ms")
            for table, figures in sorted(runs[-1][2]["per_table"].items()):  # type: ignore[union-attr]
                print(
                    f"  lock moments on {table:<20} {figures['moments']} moment(s), longest {figures['longest_ms']} ms"
                )


if __name__ == "__main__":
    main()
