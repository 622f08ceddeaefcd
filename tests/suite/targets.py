"""Target databases for the suite's own tests: how they are made, and what they hold, to prove a run leaves them as
they were."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from pytest_postgresql.executors import PostgreSQLExecutor

from readiness import SQL_DIR
from readiness.schema import snapshot
from readiness.schema.apply import apply_file

OPERATIONAL = SQL_DIR / "lookalike" / "operational.sql"
PASSWORD = "s3cret-Pa55word"  # trust authentication ignores it; it must never show in any output
# A generated password as a secret store hands it out: every character a URL must escape (its words find it in any
# form, escaped for JSON or HTML or cut at an unencoded @).
SECRET = "Quoxel@Zumbra: 9% 'Vexil\" x"


@contextmanager
def databases(pg_server: PostgreSQLExecutor) -> Iterator[Callable[..., str]]:
    """A factory of databases on the test server, built from SQL files and dropped afterwards; each call returns a
    DSN with `password` (default PASSWORD) URL-encoded in it."""
    admin = psycopg.connect(host=pg_server.host, port=pg_server.port, user=pg_server.user, dbname="postgres")
    admin.autocommit = True
    created = []

    def make(*files: Path, password: str = PASSWORD) -> str:
        name = f"target_{uuid.uuid4().hex[:8]}"
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        with psycopg.connect(host=pg_server.host, port=pg_server.port, user=pg_server.user, dbname=name) as conn:
            for path in files:
                apply_file(conn, path, trusted=True)
        return f"postgresql://{pg_server.user}:{quote(password, safe='')}@{pg_server.host}:{pg_server.port}/{name}"

    try:
        yield make
    finally:
        for name in created:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


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
