"""What a check records (its Record: blocking issues, recommendations, design differences, figures), the causes its
failure is attributed to (read once, before any check of 0024 runs), and the fixtures the checks act through."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from readiness.acting import factories
from readiness.acting.factories import Tenant
from readiness.databases.build import MigrationState
from readiness.plugin.outcomes import record_of, run_record
from readiness.report.record import Record
from readiness.rules import privileges
from readiness.rules.causes import CAUSES_KEY, Causes
from readiness.rules.causes import find as find_causes
from readiness.schema import column_roles
from readiness.verdicts import blocked


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    """What this check records for the sign-off (readiness.report.record): block, recommend, settle, observe,
    differ, measure; what it finds is counted under its cause."""
    return record_of(request.node)


@pytest.fixture(scope="session")
def causes(
    pytestconfig: pytest.Config, session_connection: psycopg.Connection, migration_state: MigrationState
) -> Causes:
    """What the applied 0024 lacks or breaks that other checks' failures follow from (readiness.rules.causes): read
    once, before any check of it runs, for readiness.plugin.outcomes to attribute failures to."""
    found = Causes()
    if not migration_state.blocked_reason:
        with session_connection.transaction(force_rollback=True):
            found = find_causes(session_connection)
    pytestconfig.stash[CAUSES_KEY] = found
    return found


@pytest.fixture(scope="session")
def missing_objects(causes: Causes) -> dict[str, list[str]]:
    """The report's objects 0024 did not create, by kind."""
    return causes.missing


@pytest.fixture(scope="session")
def privilege_gaps(causes: Causes) -> list[privileges.Gap]:
    """What the API roles lack that 0024's tables, policies and triggers need them to hold."""
    return causes.privileges


@pytest.fixture
def migrated(db: psycopg.Connection, migration_state: MigrationState, causes: Causes) -> psycopg.Connection:
    """`db` with migration 0024 applied, its causes read; a test needing it is BLOCKED when the migration could not
    apply."""
    if migration_state.blocked_reason:
        blocked(migration_state.blocked_reason)
    return db


@pytest.fixture(scope="session")
def columns(
    pytestconfig: pytest.Config, session_connection: psycopg.Connection, migration_state: MigrationState
) -> column_roles.Columns:
    """Which column of the migration under test plays each role the checks need; listed in the sign-off."""
    if migration_state.blocked_reason:
        blocked(migration_state.blocked_reason)
    with session_connection.transaction(force_rollback=True):
        overrides = column_roles.read_overrides(pytestconfig.getoption("columns"))
        resolved = column_roles.resolve(session_connection, overrides)
    said: dict[str, list[str]] = {}
    for (table, role), found in resolved.resolved.items():
        said.setdefault(f"column roles of {table}", []).append(f"{role}: {found.column or 'UNRESOLVED'} ({found.how})")
    for key, entries in said.items():
        run_record(pytestconfig).note(key, "; ".join(entries))
    return resolved


@pytest.fixture(scope="module")
def module_tenants(
    session_connection: psycopg.Connection, migration_state: MigrationState, causes: Causes
) -> Iterator[tuple[Tenant, ...]]:
    """Organisations A and B, each with a user and rows in each sync table over every column's domain
    (readiness.acting.rows), made once for a module's checks in a transaction rolled back after them: each check
    runs in a savepoint inside it (the `db` fixture), so what one check does to them the next never sees."""
    if migration_state.blocked_reason:
        blocked(migration_state.blocked_reason)
    with session_connection.transaction(force_rollback=True):
        yield factories.tenants(session_connection, 2)


@pytest.fixture
def two_tenants(module_tenants: tuple[Tenant, ...], migrated: psycopg.Connection) -> tuple[Tenant, ...]:
    """Organisations A and B with their rows (module_tenants), for a check acting in its own savepoint."""
    return module_tenants
