"""Task 1, Schema Validation: prerequisites, 0023, 0024 applying cleanly, and every table it creates."""

from __future__ import annotations

import psycopg
import pytest

from readiness.acting import factories, rows
from readiness.databases.build import MigrationState
from readiness.report.messages import apply_error_issue, differences, missing_prerequisite
from readiness.report.record import Record
from readiness.schema import catalog, design, expected
from readiness.schema.apply import NotRun
from readiness.schema.prerequisites import evidence_of_0023
from readiness.verdicts import Issue, blocked

pytestmark = [pytest.mark.readiness, pytest.mark.task(1)]

TABLES = sorted(expected.CONTRACT_COLUMNS)


@pytest.mark.enforces("report.prerequisites")
@pytest.mark.task(1, 7)  # the report's task 1 and its readiness table in task 7 both ask for them
@pytest.mark.parametrize(
    "prerequisite",
    [pytest.param(p, marks=pytest.mark.check(p.check), id=p.label) for p in expected.PREREQUISITES],
)
def test_prerequisite_exists(
    readonly_db: psycopg.Connection,
    prerequisite: expected.Prerequisite,
    migration_state: MigrationState,
    record,
) -> None:
    """A prerequisite of 0024 named by the report (organization, schema auth, auth.users_extended) exists."""
    issue = missing_prerequisite(readonly_db, prerequisite, migration_state.migration)
    if issue:
        record.block(issue, cause=migration_state.cause)
    assert issue is None, (
        f"{prerequisite.label} DOES NOT EXIST; 0024 references it. "
        "Create it as the report's Recommendations (Steps 1-2) give it: sql/prerequisites/."
    )


@pytest.mark.enforces("report.migration-0023")
@pytest.mark.task(1, 7)
@pytest.mark.check("Schema prerequisites exist")
def test_migration_0023_applied(
    readonly_db: psycopg.Connection, migration_state: MigrationState, pytestconfig: pytest.Config, record: Record
) -> None:
    """Migration 0023 (sync infrastructure) is applied before 0024: the report's Step 3 query finds its tables, or
    the database's migration history records it."""
    found = evidence_of_0023(readonly_db, migration_state.migration, pytestconfig.getoption("migration_0023"))
    record.note("migration 0023 applied, as shown by", "; ".join(found) or "nothing")
    assert found, (
        "no sync infrastructure table in public besides 0024's own, and no migration history recording 0023: "
        "migration 0023 is not applied (report, Recommendations, Step 3: SELECT table_name FROM "
        "information_schema.tables WHERE table_schema='public' AND table_name LIKE 'sync%'). A layout this does "
        "not know: name a table 0023 made with --migration-0023=schema.table"
    )


@pytest.mark.enforces("design.migration-0023")
def test_our_0023_connection_table(readonly_db: psycopg.Connection) -> None:
    """Our own 0023 made public.sync_connection (an organisation's connection to its ERP or shop)."""
    assert catalog.relation_exists(readonly_db, design.MIGRATION_0023_TABLE), (
        f"ours makes {design.MIGRATION_0023_TABLE}; this database's 0023 does not"
    )


@pytest.mark.enforces("report.executes")
@pytest.mark.check("Migration can execute")
def test_migration_0024_applies_cleanly(migration_state: MigrationState, record) -> None:
    """Every statement of the 0024 under test runs without error, after the prerequisites and 0023; a target
    holds all of it or none of it (a deploy stopped half-way is the one CRITICAL cause)."""
    if migration_state.partial:
        record.block(Issue("CRITICAL", migration_state.partial, "the target"), cause=migration_state.cause)
    assert not migration_state.partial, migration_state.partial
    error = migration_state.error
    if isinstance(error, NotRun):  # what it does no rollback undoes: task 7 names each statement
        blocked(migration_state.blocked_reason or str(error))
    if error is not None:
        record.block(apply_error_issue(error), cause=migration_state.cause)
    assert error is None, f"0024 fails at {error}. Nothing of it was committed." if error else ""


@pytest.mark.enforces("report.tables")
@pytest.mark.existence("tables")
@pytest.mark.parametrize("table", TABLES)
def test_table_exists(migrated: psycopg.Connection, table: str) -> None:
    """Each of the three sync tables exists in public."""
    assert catalog.relation_exists(migrated, f"public.{table}"), f"table {table} was not created by 0024"


def referenced_type(conn: psycopg.Connection, rule: expected.Rule) -> str | None:
    """The type of the key a column's rule says it references (organization.id, auth.users_extended.id)."""
    if rule.references is None:
        return None
    schema, table, column = rule.references.split(".")
    found = catalog.columns(conn, f"{schema}.{table}").get(column)
    return found.type if found else None


@pytest.mark.enforces("report.columns")
@pytest.mark.existence("columns")
@pytest.mark.parametrize("table", TABLES)
def test_columns(migrated: psycopg.Connection, table: str, record) -> None:
    """Each table has the columns the report names; a key column has its referenced key's type, an enum-named
    one its enum, a timestamp a timestamp type, and the NULL-ability the report implies."""
    found = catalog.columns(migrated, table)
    wrong = {}
    for name, rule in expected.CONTRACT_COLUMNS[table].items():
        referenced = referenced_type(migrated, rule)
        if name not in found or not rule.allows(found[name], referenced):
            wrong[name] = f"expected {rule.describe(referenced)}, found {found.get(name, 'no such column')}"
    ours = design.COLUMNS[table]
    if found != ours:
        only_ours = "; ".join(f"{name} {column}" for name, column in ours.items() if found.get(name) != column)
        only_found = "; ".join(f"{name} {column}" for name, column in found.items() if ours.get(name) != column)
        record.differ(f"columns of {table}", only_ours or "the same", only_found or "the same")
    assert not wrong, f"columns of {table} the report requires: " + "; ".join(f"{n}: {w}" for n, w in wrong.items())


@pytest.mark.enforces("report.foreign-keys")
@pytest.mark.parametrize("table", TABLES)
def test_foreign_keys(migrated: psycopg.Connection, table: str) -> None:
    """Each table references organization ON DELETE CASCADE and auth.users_extended ON DELETE SET NULL."""
    found = catalog.foreign_keys(migrated, table)
    assert found == expected.FOREIGN_KEYS[table], differences(
        f"foreign keys of {table}", expected.FOREIGN_KEYS[table], found
    )


@pytest.mark.enforces("design.primary-keys")
@pytest.mark.parametrize("table", TABLES)
def test_primary_key(migrated: psycopg.Connection, table: str) -> None:
    """Each table has the primary key of our design (a table without one: its row checks are BLOCKED)."""
    found = catalog.primary_key(migrated, table)
    assert found == design.PRIMARY_KEYS[table], (
        f"primary key of {table}: ours is ({', '.join(design.PRIMARY_KEYS[table])}), "
        f"this migration's is ({', '.join(found) or 'none'})"
    )


@pytest.mark.enforces("report.partitioned")
@pytest.mark.parametrize("table", expected.PARTITIONED)
def test_log_is_partitioned(migrated: psycopg.Connection, table: str) -> None:
    """sync_activity_log is a partitioned table (the report's rollback: "partitions cascade")."""
    key = catalog.partition_key(migrated, table)
    assert key is not None, f"{table} is not partitioned: the report's rollback drops its partitions with it"


@pytest.mark.enforces("design.partitions")
@pytest.mark.parametrize("table", expected.PARTITIONED)
def test_partition_scheme(migrated: psycopg.Connection, table: str) -> None:
    """sync_activity_log is partitioned by range on created_at with a default partition, as ours is."""
    key = catalog.partition_key(migrated, table)
    default = "DEFAULT" in catalog.partitions(migrated, table).values()
    found = f"{key[0]} on {key[1]}" if key else "not partitioned"
    assert key == design.PARTITION_KEY and default, (
        f"{table}: ours is by range on created_at with a default partition; this migration's is {found}, "
        f"{'with' if default else 'without'} a default partition"
    )


@pytest.mark.enforces("report.partitioned")
@pytest.mark.parametrize("table", expected.PARTITIONED)
def test_row_created_now_is_accepted(migrated: psycopg.Connection, table: str) -> None:
    """A row created now is accepted by a partition of sync_activity_log (the audit trigger writes such rows)."""
    org = factories.organization(migrated, "partition probe")
    now = migrated.execute("SELECT now()").fetchone()[0]
    try:
        factories.sync_row(migrated, table, org, created_at=now)
    except rows.Refused as refused:
        pytest.fail(f"inserting a {table} row created now is refused: {refused.reason}", pytrace=False)
