"""What a check records (blocking issues, recommendations, design differences, figures), the causes its failure is
attributed to (read once, before any check of 0024 runs), and the fixtures the checks act through."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import psycopg
import pytest

from readiness.acting import factories
from readiness.acting.access import Observation
from readiness.acting.factories import Tenant
from readiness.databases.build import MigrationState
from readiness.plugin.outcomes import recorded, requirement_of
from readiness.report.signoff import SIGNOFF_KEY
from readiness.rules import privileges
from readiness.rules.causes import CAUSES_KEY, Causes, rls_cause
from readiness.rules.causes import find as find_causes
from readiness.rules.decisions import Decision
from readiness.schema import column_roles
from readiness.verdicts import DesignDifference, Issue, blocked


@pytest.fixture
def blocking_issue(request: pytest.FixtureRequest, migration_state: MigrationState) -> Callable[[dict[str, str]], None]:
    """Record a blocking issue (severity, message, location) the sign-off lists if this test fails.

    When the migration did not apply (or a prerequisite is missing), that is the issue's cause: the checks
    BLOCKED by it are counted under it.
    """

    def record(issue: dict[str, str]) -> None:
        recorded(request.node).issues.append(Issue(**issue))
        if migration_state.blocked_reason:
            recorded(request.node).cause = migration_state.blocked_reason

    return record


@pytest.fixture
def recommendation(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a recommendation (MEDIUM or LOW: severity, message, location; its rule id, else the check's
    requirement's) the sign-off lists; never blocking."""

    def record(severity: str, message: str, location: str, rule: str | None = None) -> None:
        assert severity in ("MEDIUM", "LOW"), f"a recommendation is MEDIUM or LOW, not {severity}"
        requirement = requirement_of(request.node)
        recorded(request.node).recommendations.append(Issue(severity, message, location, requirement=requirement,
                                                            rule=rule))  # fmt: skip

    return record


@pytest.fixture
def settled(request: pytest.FixtureRequest) -> Callable[[Issue, Decision], None]:
    """Record a finding the check's own rule settled (squawk's config or comment, a setting of the deploy): listed
    under the accepted risks with its decision, never blocking."""

    def record(issue: Issue, decision: Decision) -> None:
        recorded(request.node).settled.append((issue, decision))

    return record


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Callable[[str, str, str, str, bool], None]:
    """Record what PostgreSQL did when an actor tried a command on organisation A's row of a table or partition
    (table, command, actor, observed, reached): a cell of the sign-off's access matrix."""

    def record(table: str, command: str, actor: str, observed: str, reached: bool) -> None:
        recorded(request.node).observations.append(
            Observation(table, command, actor, observed, reached, request.node.nodeid)
        )

    return record


@pytest.fixture
def design_difference(request: pytest.FixtureRequest) -> Callable[[str, object, object], None]:
    """Record where the migration under test differs from our own 0024's design: listed, never blocking."""

    def record(subject: str, design: object, found: object) -> None:
        recorded(request.node).differences.append(DesignDifference(subject, str(design), str(found)))

    return record


@pytest.fixture
def record_figure(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Record a measured figure (a timing, a count) for the sign-off's measurements table."""

    def record(name: str, value: str) -> None:
        recorded(request.node).figures[name] = value

    return record


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


@pytest.fixture
def counts_under_rls_of(request: pytest.FixtureRequest, causes: Causes) -> Callable[[Iterable[str]], None]:
    """Count this check's failure under the RLS cause of `tables` (readiness.rules.causes), when they have one: a
    policy the report names that is missing is its table's fault, with every isolation failure it makes."""

    def record(tables: Iterable[str]) -> None:
        cause = rls_cause(tuple(tables), causes.rls)
        if cause is not None:
            recorded(request.node).cause = cause

    return record


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
    environment = pytestconfig.stash[SIGNOFF_KEY].environment
    for (table, role), found in resolved.resolved.items():
        entry = f"{role}: {found.column or 'UNRESOLVED'} ({found.how})"
        key = f"column roles of {table}"
        environment[key] = f"{environment[key]}; {entry}" if key in environment else entry
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
