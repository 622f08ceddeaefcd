"""Task 1, Schema Validation: prerequisites, 0023, 0024 applying cleanly, and every table it creates."""

from __future__ import annotations

import psycopg
import pytest

from readiness import catalog, expected
from readiness.database import MigrationState
from readiness.explain import apply_error_issue, differences, missing_prerequisite

pytestmark = pytest.mark.readiness

TABLES = sorted(expected.TABLES)


@pytest.mark.parametrize(
    "prerequisite",
    [pytest.param(p, marks=pytest.mark.check(p.check), id=p.label) for p in expected.PREREQUISITES],
)
def test_prerequisite_exists(
    readonly_db: psycopg.Connection,
    prerequisite: expected.Prerequisite,
    migration_state: MigrationState,
    blocking_issue,
) -> None:
    """A prerequisite of 0024 named by the report (organization, schema auth, auth.users_extended) exists."""
    issue = missing_prerequisite(readonly_db, prerequisite, migration_state.migration)
    if issue:
        blocking_issue(issue)
    assert issue is None, (
        f"{prerequisite.label} DOES NOT EXIST; 0024 references it. "
        "Create it as the report's Recommendations (Steps 1-2) give it: sql/prerequisites/."
    )


def test_migration_0023_applied(readonly_db: psycopg.Connection) -> None:
    """Migration 0023 (sync infrastructure) is applied before 0024."""
    assert catalog.relation_exists(readonly_db, expected.MIGRATION_0023_TABLE), (
        f"{expected.MIGRATION_0023_TABLE} is missing: migration 0023 is not applied (report, Recommendations, Step 3)."
    )


@pytest.mark.check("Migration can execute")
def test_migration_0024_applies_cleanly(migration_state: MigrationState, blocking_issue) -> None:
    """Every statement of the 0024 under test runs without error, after the prerequisites and 0023."""
    error = migration_state.error
    if error is not None:
        blocking_issue(apply_error_issue(error))
    assert error is None, f"0024 fails at {error}. Nothing of it was committed." if error else ""


@pytest.mark.parametrize("table", TABLES)
def test_table_exists(migrated: psycopg.Connection, table: str) -> None:
    """Each of the three sync tables exists in public."""
    assert catalog.relation_exists(migrated, f"public.{table}"), f"table {table} was not created by 0024"


@pytest.mark.parametrize("table", TABLES)
def test_columns(migrated: psycopg.Connection, table: str) -> None:
    """Each table has exactly the expected columns, with their types, nullability and defaults."""
    found = catalog.columns(migrated, table)
    assert found == expected.TABLES[table], differences(f"columns of {table}", expected.TABLES[table], found)


@pytest.mark.parametrize("table", TABLES)
def test_primary_key(migrated: psycopg.Connection, table: str) -> None:
    """Each table's primary key is on the expected columns."""
    assert catalog.primary_key(migrated, table) == expected.PRIMARY_KEYS[table], (
        f"primary key of {table}: expected {expected.PRIMARY_KEYS[table]}, found {catalog.primary_key(migrated, table)}"
    )


@pytest.mark.parametrize("table", TABLES)
def test_foreign_keys(migrated: psycopg.Connection, table: str) -> None:
    """Each table references organization ON DELETE CASCADE and auth.users_extended ON DELETE SET NULL."""
    found = catalog.foreign_keys(migrated, table)
    assert found == expected.FOREIGN_KEYS[table], differences(
        f"foreign keys of {table}", expected.FOREIGN_KEYS[table], found
    )


@pytest.mark.parametrize("table", TABLES)
def test_partitioning(migrated: psycopg.Connection, table: str) -> None:
    """sync_activity_log is partitioned by range on created_at; the other tables are not partitioned."""
    assert catalog.partition_key(migrated, table) == expected.PARTITIONED.get(table), (
        f"partitioning of {table}: expected {expected.PARTITIONED.get(table) or 'none'}, "
        f"found {catalog.partition_key(migrated, table) or 'none'}"
    )


@pytest.mark.parametrize("table", sorted(expected.PARTITIONED))
def test_partitions_cover_now_and_default(migrated: psycopg.Connection, table: str) -> None:
    """A row created now lands in a dated partition, and a default partition catches the rest."""
    bounds = catalog.partitions(migrated, table)
    assert "DEFAULT" in bounds.values(), f"{table} has no default partition; partitions: {sorted(bounds)}"
    org = migrated.execute("INSERT INTO organization (name) VALUES ('partition probe') RETURNING id").fetchone()[0]
    landed = migrated.execute(
        "INSERT INTO sync_activity_log (org_id, action, status) VALUES (%s, 'sync_start', 'pending') "
        "RETURNING tableoid::regclass::text",
        (org,),
    ).fetchone()[0]
    assert bounds.get(landed) not in (None, "DEFAULT"), (
        f"a row created now lands in {landed}, not in a dated partition: add a partition covering now"
    )
