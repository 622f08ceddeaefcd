"""What 0024 needs before it: the report's prerequisites (organization, schema auth, auth.users_extended), and the
evidence that migration 0023 is applied."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

from readiness.schema import catalog, expected
from readiness.schema.apply import ApplyError
from readiness.schema.deployment import created_objects


def prerequisite_exists(conn: psycopg.Connection, prerequisite: expected.Prerequisite) -> bool:
    """Whether a prerequisite table or schema exists."""
    if prerequisite.kind == "schema":
        return catalog.schema_exists(conn, prerequisite.name)
    return catalog.relation_exists(conn, prerequisite.name)


def missing_prerequisites(conn: psycopg.Connection) -> list[str]:
    """The report's prerequisites that are absent, in the report's order."""
    return [p.label for p in expected.PREREQUISITES if not prerequisite_exists(conn, p)]


# Report, Recommendations, Step 3: "Check if sync infrastructure tables exist" -- public's sync% tables, but those
# the 0024 under test creates (and the partitions of its tables).
SYNC_INFRASTRUCTURE = """
SELECT c.relname::text FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname LIKE 'sync%%'
  AND NOT (c.relname::text = ANY (%(ours)s::text[]))
  AND NOT EXISTS (SELECT FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                  WHERE i.inhrelid = c.oid AND p.relname::text = ANY (%(ours)s::text[]))
ORDER BY 1
"""
# (the report's query reads information_schema.tables, which shows a role only the tables it holds a privilege on:
# read from pg_class, a verifying role that owns none of 0023 sees its tables too)


def migration_0023_evidence(conn: psycopg.Connection, migration: Path) -> list[str]:
    """The sync infrastructure tables the report's Step 3 query finds, not counting 0024's own."""
    try:
        ours = {obj.name.split(".")[-1] for obj in created_objects(migration) if obj.kind == "table"}
    except ApplyError:  # a file that does not parse: its own check says so
        ours = set()
    ours |= set(expected.CONTRACT_COLUMNS)
    return [row[0] for row in conn.execute(SYNC_INFRASTRUCTURE, {"ours": sorted(ours)})]


# Migration histories as the usual tools keep them: the table, and what names a migration in it. A record of
# 0023 is a version or name that is 23 (0023, V0023__..., 0023_sync_...), not a timestamp holding "23".
HISTORIES = (
    ("supabase_migrations.schema_migrations", "version || ' ' || coalesce(name, '')"),
    ("public.flyway_schema_history", "coalesce(version, '') || ' ' || script"),
    ("sqitch.changes", "change"),
    ("public.schema_migrations", "version::text"),  # dbmate, Rails
    ("public._prisma_migrations", "migration_name"),
)
RECORDS_0023 = r"(^|\D)0*23(\D|$)"


def migration_0023_history(conn: psycopg.Connection) -> list[str]:
    """The migration histories on the database that record 0023, each as 'table: record'."""
    found = []
    for table, record in HISTORIES:
        if not catalog.relation_exists(conn, table):
            continue
        query = sql.SQL("SELECT {} FROM {} WHERE {} ~ %s LIMIT 1").format(
            sql.SQL(record), sql.Identifier(*table.split(".")), sql.SQL(record)
        )
        try:
            with conn.transaction():
                row = conn.execute(query, (RECORDS_0023,)).fetchone()
        except psycopg.Error:  # a table of that name kept otherwise: not a history this knows
            continue
        if row:
            found.append(f"{table} records {row[0].strip()}")
    return found


def evidence_of_0023(conn: psycopg.Connection, migration: Path, configured: str | None = None) -> list[str]:
    """What shows migration 0023 applied, each saying where it was seen: the report's Step 3 query's tables, a
    migration history that records 0023, or the table a configuration names (--migration-0023)."""
    found = [f"public.{name} (the report's Step 3 query)" for name in migration_0023_evidence(conn, migration)]
    found += migration_0023_history(conn)
    if configured and catalog.relation_exists(conn, configured):
        found.append(f"{configured} (named by --migration-0023)")
    return found
