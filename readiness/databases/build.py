"""Build the database under test once per run.

Order, as the report requires: prerequisites, then 0023, then the 0024 under test. Each
step is committed on its own, so a failing 0024 leaves the prerequisites in place and the
dependent checks can be reported BLOCKED by the failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from pytest_postgresql.janitor import DatabaseJanitor

from readiness.postgres.connection import Timeouts, connect
from readiness.rules import lint
from readiness.schema import expected, snapshot
from readiness.schema.apply import ApplyError, NotRun, apply_file
from readiness.schema.deployment import TargetState
from readiness.schema.files import MIGRATION_0023, PREREQUISITE_FILES
from readiness.schema.prerequisites import evidence_of_0023, missing_prerequisites
from readiness.schema.snapshot import Snapshot
from readiness.verdicts import Cause

DBNAME = "readiness"


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
    lint_before: dict[str, frozenset[lint.LintFinding]] = field(default_factory=dict)  # linter findings before it
    on_target: bool = False  # an existing database given by DSN, not the ephemeral cluster
    held: TargetState | None = None  # on a target: what it held of the file before the run
    deployed: Snapshot = field(default_factory=dict)  # 0024 present: the catalog as deployed
    file_built: Snapshot | None = None  # 0024 present: the catalog once the rollback, then the file, ran on it
    rollback_error: ApplyError | None = None  # 0024 present: the rollback failed on the deployed objects
    file_error: ApplyError | None = None  # 0024 present: the file failed once its rollback ran
    partial: str | None = None  # 0024 partly present: what exists, what is missing, the way out
    target_dry_run: object = None  # on a target: its budgeted dry run (readiness.rules.budget.DryRun), if one ran
    deploying_role: str = ""  # on a target: the role 0024 is applied as in its shadow (readiness.databases.shadow)
    verifying_role: str = ""  # on a target: the role the run connects to it as

    @property
    def applied(self) -> bool:
        return self.error is None and not self.missing_prerequisites

    @property
    def ran(self) -> str:
        """What became of the file, for the sign-off: applied, failed, or not run (it escapes a rollback)."""
        return "not run" if isinstance(self.error, NotRun) else "failed" if self.error is not None else "applied"

    @property
    def blocked_reason(self) -> str | None:
        if self.partial:
            return self.partial
        if self.missing_prerequisites:
            return f"missing prerequisites: {', '.join(self.missing_prerequisites)}"
        if isinstance(self.error, NotRun):
            return f"migration 0024 was run nowhere, since what it does no rollback undoes: {self.error}"
        if self.error is not None:
            return f"migration 0024 did not apply: {self.error}"
        return None

    @property
    def cause(self) -> Cause | None:
        """Why checks of 0024 cannot run, as the root cause they count under (the missing prerequisites are its
        objects)."""
        reason = self.blocked_reason
        missing = () if self.partial else self.missing_prerequisites
        about = tuple(p.name for p in expected.PREREQUISITES if p.label in missing)
        return Cause(reason, about) if reason else None


def create_with_prerequisites(host: str, port: int, user: str, timeouts: Timeouts, dbname: str = DBNAME) -> str:
    """Create `dbname` on a throw-away server with the prerequisites and 0023; return its conninfo."""
    DatabaseJanitor(user=user, host=host, port=port, dbname=dbname).init()
    conninfo = psycopg.conninfo.make_conninfo(host=host, port=port, user=user, dbname=dbname)
    with connect(conninfo, timeouts) as conn:
        for path in [*PREREQUISITE_FILES, MIGRATION_0023]:
            apply_file(conn, path, trusted=True)
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


def lint_findings(conn: psycopg.Connection) -> dict[str, frozenset[lint.LintFinding]]:
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
