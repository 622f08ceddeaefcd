"""Task 1, Schema Validation: prerequisites, 0023, 0024 applying cleanly, and every table it creates."""

from __future__ import annotations

import psycopg
import pytest

from readiness import catalog, design, expected
from readiness.database import MigrationState
from readiness.explain import apply_error_issue, differences, missing_prerequisite

pytestmark = pytest.mark.readiness

TABLES = sorted(expected.CONTRACT_COLUMNS)


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
    """Every statement of the 0024 under test runs without error, after the prerequisites and 0023; a target
    holds all of it or none of it (a deploy stopped half-way is the one CRITICAL cause)."""
    if migration_state.partial:
        blocking_issue({"severity": "CRITICAL", "message": migration_state.partial, "location": "the target"})
    assert not migration_state.partial, migration_state.partial
    error = migration_state.error
    if error is not None:
        blocking_issue(apply_error_issue(error))
    assert error is None, f"0024 fails at {error}. Nothing of it was committed." if error else ""


@pytest.mark.existence("tables")
@pytest.mark.parametrize("table", TABLES)
def test_table_exists(migrated: psycopg.Connection, table: str) -> None:
    """Each of the three sync tables exists in public."""
    assert catalog.relation_exists(migrated, f"public.{table}"), f"table {table} was not created by 0024"


@pytest.mark.existence("columns")
@pytest.mark.parametrize("table", TABLES)
def test_columns(migrated: psycopg.Connection, table: str, design_difference) -> None:
    """Each table has the columns the report names, with the type (and NULL-ability) the report implies."""
    found = catalog.columns(migrated, table)
    wrong = {
        name: f"expected {rule}, found {found[name] if name in found else 'no such column'}"
        for name, rule in expected.CONTRACT_COLUMNS[table].items()
        if name not in found or not rule.allows(found[name])
    }
    ours = design.COLUMNS[table]
    if found != ours:
        only_ours = "; ".join(f"{name} {column}" for name, column in ours.items() if found.get(name) != column)
        only_found = "; ".join(f"{name} {column}" for name, column in found.items() if ours.get(name) != column)
        design_difference(f"columns of {table}", only_ours or "the same", only_found or "the same")
    assert not wrong, f"columns of {table} the report requires: " + "; ".join(f"{n}: {w}" for n, w in wrong.items())


@pytest.mark.parametrize("table", TABLES)
def test_primary_key(migrated: psycopg.Connection, table: str, design_difference) -> None:
    """Each table has a primary key; sync_activity_log's contains its partition key created_at."""
    found = catalog.primary_key(migrated, table)
    if found != design.PRIMARY_KEYS[table]:
        design_difference(f"primary key of {table}", design.PRIMARY_KEYS[table], found)
    must = expected.PRIMARY_KEY_MUST_CONTAIN[table]
    assert found and must <= set(found), (
        f"primary key of {table}: expected one containing {sorted(must) or 'any column'}, found {found or 'none'}"
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
