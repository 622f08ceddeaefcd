"""Build the database under test once per run and connect to it with timeouts that never hang.

Order, as the report requires: prerequisites, then 0023, then the 0024 under test. Each
step is committed on its own, so a failing 0024 leaves the prerequisites in place and the
dependent checks can be reported BLOCKED by the failure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from pytest_postgresql.janitor import DatabaseJanitor

from readiness import SQL_DIR, catalog, expected, lint, snapshot
from readiness.apply import ApplyError, apply_file
from readiness.deployment import TargetState, created_objects
from readiness.snapshot import Snapshot

PREREQUISITES = sorted((SQL_DIR / "prerequisites").glob("*.sql"))
ROLES = SQL_DIR / "prerequisites" / "00_supabase_roles.sql"  # cluster-wide: anon, authenticated, service_role
MIGRATION_0023 = SQL_DIR / "migrations" / "0023_sync_infrastructure.sql"
DEFAULT_MIGRATION = SQL_DIR / "migrations" / "0024_sync_preview_progress_logging.sql"
DEFAULT_ROLLBACK = SQL_DIR / "rollback" / "0024_down.sql"
DBNAME = "readiness"
APPLICATION_NAME = "readiness-0024"


@dataclass(frozen=True)
class Timeouts:
    """Per-connection limits: the suite waits for no lock and runs no statement forever."""

    lock_ms: int = 2000
    statement_ms: int = 120_000

    def options(self) -> str:
        return f"-c lock_timeout={self.lock_ms} -c statement_timeout={self.statement_ms}"


STARTING_UP = "57P03"  # cannot_connect_now: the server is starting up (or shutting down, or in recovery)
READY_LIMIT_S = 60  # how long a first connection waits for a server's start-up to end


def connect(conninfo: str, timeouts: Timeouts, **kwargs: object) -> psycopg.Connection:
    """A connection with the suite's timeouts and application_name; waits while the server is starting up."""
    deadline = time.monotonic() + READY_LIMIT_S
    while True:
        try:
            return psycopg.connect(
                conninfo, options=timeouts.options(), application_name=APPLICATION_NAME, connect_timeout=10, **kwargs
            )
        except psycopg.OperationalError as error:
            if not starting_up(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def starting_up(error: psycopg.OperationalError) -> bool:
    """Whether the server refused the connection because it is still starting up."""
    return error.sqlstate == STARTING_UP or "the database system is starting up" in str(error)


@dataclass
class MigrationState:
    """What the build found and did; every task module reads it."""

    conninfo: str = field(repr=False)  # may hold a password: never printed
    migration: Path
    premigration: str = field(default="", repr=False)  # the database before 0024, when the build made it
    missing_prerequisites: list[str] = field(default_factory=list)
    migration_0023_applied: bool = False
    error: ApplyError | None = None  # the first failing statement of the migration under test
    baseline: Snapshot = field(default_factory=dict)  # the catalog before the migration under test
    lint_before: dict[str, frozenset[str]] = field(default_factory=dict)  # linter findings before it
    on_target: bool = False  # an existing database given by DSN, not the ephemeral cluster
    held: TargetState | None = None  # on a target: what it held of the file before the run
    deployed: Snapshot = field(default_factory=dict)  # 0024 present: the catalog as deployed
    file_built: Snapshot | None = None  # 0024 present: the catalog once the rollback, then the file, ran on it
    rollback_error: ApplyError | None = None  # 0024 present: the rollback failed on the deployed objects
    file_error: ApplyError | None = None  # 0024 present: the file failed once its rollback ran
    partial: str | None = None  # 0024 partly present: what exists, what is missing, the way out
    target_dry_run: object = None  # on a target: the budgeted dry run there (readiness.budget.Outcome), if one ran
    deploying_role: str = ""  # on a target: the role 0024 is applied as in its shadow (readiness.shadow)
    verifying_role: str = ""  # on a target: the role the run connects to it as

    @property
    def applied(self) -> bool:
        return self.error is None and not self.missing_prerequisites

    @property
    def blocked_reason(self) -> str | None:
        if self.partial:
            return self.partial
        if self.missing_prerequisites:
            return f"missing prerequisites: {', '.join(self.missing_prerequisites)}"
        if self.error is not None:
            return f"migration 0024 did not apply: {self.error}"
        return None


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


def create_with_prerequisites(host: str, port: int, user: str, timeouts: Timeouts, dbname: str = DBNAME) -> str:
    """Create `dbname` on a throw-away server with the prerequisites and 0023; return its conninfo."""
    DatabaseJanitor(user=user, host=host, port=port, dbname=dbname).init()
    conninfo = psycopg.conninfo.make_conninfo(host=host, port=port, user=user, dbname=dbname)
    with connect(conninfo, timeouts) as conn:
        for path in [*PREREQUISITES, MIGRATION_0023]:
            apply_file(conn, path)
            conn.commit()
    return conninfo


def create_ephemeral(
    host: str, port: int, user: str, timeouts: Timeouts, migration: Path, dbname: str = DBNAME
) -> MigrationState:
    """The database under test on a throw-away server: prerequisites, 0023, then `migration` applied."""
    return inspect_and_apply(create_with_prerequisites(host, port, user, timeouts, dbname), timeouts, migration)


def inspect(conn: psycopg.Connection, state: MigrationState) -> None:
    """Record what is there before the migration: prerequisites, 0023, the catalog."""
    state.missing_prerequisites = missing_prerequisites(conn)
    state.migration_0023_applied = bool(evidence_of_0023(conn, state.migration))
    state.baseline = snapshot.take(conn)
    state.lint_before = lint_findings(conn)


def lint_findings(conn: psycopg.Connection) -> dict[str, frozenset[str]]:
    """The linter's findings on the database as it is, by rule."""
    return {name: frozenset(rule(conn)) for name, rule in lint.RULES.items()}


def inspect_and_apply(conninfo: str, timeouts: Timeouts, migration: Path) -> MigrationState:
    """Record the prerequisites and 0023, then apply `migration` and commit it or record its failure."""
    state = MigrationState(conninfo, migration)
    with connect(conninfo, timeouts) as conn:
        inspect(conn, state)
        try:
            apply_file(conn, migration)
            conn.commit()
        except ApplyError as error:
            conn.rollback()
            state.error = error
    return state


@contextmanager
def as_deploying_role(conn: psycopg.Connection, state: MigrationState) -> Iterator[None]:
    """Run the block as the role that deploys 0024 (on a target's shadow: the target's), so what it makes is owned,
    and given default privileges, as the deploy would; then back to the connection's own role."""
    role = state.deploying_role
    if not role or role == conn.info.user:
        yield
        return
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    try:
        yield
    finally:
        if conn.info.transaction_status != TransactionStatus.INERROR:
            conn.execute("RESET ROLE")
