"""Benchmark: per-test isolation by a rolled-back transaction vs a clone of the migrated template.

Prints the median cost of each over N rounds, on the project's migrated schema.
Run: make bench-isolation
"""

from __future__ import annotations

import statistics
import sys
import time

import psycopg
from migrated import migrated_server  # bench/, on the path when a benchmark runs as a script
from psycopg import sql

from readiness.postgres.connection import Timeouts, connect

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def main() -> None:
    """Start a server, build the schema, time both isolation strategies."""
    with migrated_server() as (pg, state, took):
        with connect(state.conninfo, Timeouts()) as conn:
            relations = conn.execute(
                "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            ).fetchone()[0]
            rollback = []
            for _ in range(ROUNDS):
                t = time.perf_counter()
                conn.execute("INSERT INTO organization (name) VALUES ('bench')")
                conn.rollback()
                rollback.append(time.perf_counter() - t)
        admin = psycopg.connect(host=pg.host, port=pg.port, user=pg.user, dbname="postgres", autocommit=True)
        clone = []
        for i in range(ROUNDS):
            name = sql.Identifier(f"clone_{i}")
            t = time.perf_counter()
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE readiness").format(name))
            clone.append(time.perf_counter() - t)
            admin.execute(sql.SQL("DROP DATABASE {}").format(name))
    print(f"server start:            {took['server start']:8.3f} s")
    print(f"schema build (prereqs, 0023, 0024): {took['schema build']:8.3f} s")
    print(f"public relations in template: {relations}")
    print(f"isolation by rollback:   median {statistics.median(rollback) * 1000:8.3f} ms over {ROUNDS}")
    print(f"isolation by clone:      median {statistics.median(clone) * 1000:8.3f} ms over {ROUNDS}")


if __name__ == "__main__":
    main()
