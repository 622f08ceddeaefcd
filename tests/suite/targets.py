"""Target databases for the suite's own tests: what they hold, to prove a run leaves them as they were."""

from __future__ import annotations

import psycopg

from readiness import SQL_DIR
from readiness.schema import snapshot

OPERATIONAL = SQL_DIR / "lookalike" / "operational.sql"
PASSWORD = "s3cret-Pa55word"  # trust authentication ignores it; it must never show in any output


def state_of(dsn: str) -> tuple[snapshot.Snapshot, dict[str, tuple[int, str]]]:
    """The target's catalog and every table's row fingerprint."""
    with psycopg.connect(dsn) as conn:
        tables = [
            f"{schema}.{name}"
            for schema, name in conn.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('public', 'auth')"
            )
        ]
        return snapshot.take(conn), {table: snapshot.fingerprint(conn, table) for table in tables}
