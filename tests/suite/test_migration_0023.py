"""Migration 0023 by the evidence the report accepts: its Step 3 query's tables, a migration history, a named table."""

from __future__ import annotations

import psycopg
import pytest

from readiness.schema.files import DEFAULT_MIGRATION, PREREQUISITE_FILES
from readiness.schema.prerequisites import evidence_of_0023

pytestmark = pytest.mark.suite

# (the history as a tool keeps it, a record of 0023 in it, a record that is not 0023's)
HISTORIES = [
    pytest.param("CREATE SCHEMA supabase_migrations; CREATE TABLE supabase_migrations.schema_migrations "
                 "(version text PRIMARY KEY, statements text[], name text)",
                 "INSERT INTO supabase_migrations.schema_migrations VALUES ('20250301120000', NULL, '0023_sync')",
                 "INSERT INTO supabase_migrations.schema_migrations VALUES ('20250223120000', NULL, 'users')",
                 id="supabase"),
    pytest.param("CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), "
                 "description varchar(200), type varchar(20), script varchar(1000))",
                 "INSERT INTO flyway_schema_history VALUES (23, '23', 'sync', 'SQL', 'V23__sync.sql')",
                 "INSERT INTO flyway_schema_history VALUES (22, '22', 'users', 'SQL', 'V22__users.sql')",
                 id="flyway"),
    pytest.param("CREATE SCHEMA sqitch; CREATE TABLE sqitch.changes (change_id text PRIMARY KEY, change text)",
                 "INSERT INTO sqitch.changes VALUES ('a', '0023-sync-infrastructure')",
                 "INSERT INTO sqitch.changes VALUES ('b', 'add-users')", id="sqitch"),
    pytest.param("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)",
                 "INSERT INTO schema_migrations VALUES ('0023')",
                 "INSERT INTO schema_migrations VALUES ('20230123120000')", id="dbmate"),
    pytest.param("CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, migration_name varchar(255))",
                 "INSERT INTO _prisma_migrations VALUES ('a', '0023_sync_infrastructure')",
                 "INSERT INTO _prisma_migrations VALUES ('b', '20240123_init')", id="prisma"),
]  # fmt: skip


@pytest.fixture
def database(target) -> psycopg.Connection:  # type: ignore[no-untyped-def]
    """A database with the report's prerequisites and no 0023, in a transaction rolled back afterwards."""
    with psycopg.connect(target(*PREREQUISITE_FILES)) as conn:
        yield conn
        conn.rollback()


@pytest.mark.parametrize(("history", "of_0023", "other"), HISTORIES)
def test_a_history_recording_0023_is_evidence(database: psycopg.Connection, history, of_0023, other) -> None:
    """A history with only other migrations is no evidence; with 0023 recorded it is, and says where."""
    database.execute(history)
    database.execute(other)
    assert evidence_of_0023(database, DEFAULT_MIGRATION) == []
    database.execute(of_0023)
    found = evidence_of_0023(database, DEFAULT_MIGRATION)
    assert len(found) == 1 and " records " in found[0], found


def test_sync_tables_of_any_name_are_evidence_but_not_0024s_own(database: psycopg.Connection) -> None:
    """The report's Step 3 query: a sync% table in public counts, one 0024 itself creates does not."""
    database.execute("CREATE TABLE sync_progress (id int)")  # 0024's own name
    assert evidence_of_0023(database, DEFAULT_MIGRATION) == []
    database.execute("CREATE TABLE sync_jobs (id int)")
    assert evidence_of_0023(database, DEFAULT_MIGRATION) == ["public.sync_jobs (the report's Step 3 query)"]


def test_a_named_table_is_evidence_when_it_exists(database: psycopg.Connection) -> None:
    """--migration-0023 names a table of a layout nothing else finds: evidence once it exists, none before."""
    assert evidence_of_0023(database, DEFAULT_MIGRATION, "integrations.endpoint") == []
    database.execute("CREATE SCHEMA integrations; CREATE TABLE integrations.endpoint (id int)")
    found = evidence_of_0023(database, DEFAULT_MIGRATION, "integrations.endpoint")
    assert found == ["integrations.endpoint (named by --migration-0023)"], found
