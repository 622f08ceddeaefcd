"""An existing database given by DSN: read it, check 0024 in a shadow of it, and run it on the target only within
a lock budget.

One read-only transaction reads what the target holds of the file (readiness.schema.deployment), its
prerequisites and 0023, its linter findings, and the definitions of what 0024 touches (readiness.databases.shadow).
Those definitions are built into two databases of the suite's own server: `readiness_pre`, the target
before 0024, and `readiness`, the target with 0024 (the file applied there; or, deployed already, the
deployed objects as they are). Every check that writes runs there, so nothing waits on the run; on the
target itself remain the read-only checks, the plans on its own statistics, and one dry run within the
lock budget (readiness.rules.budget): the file, or on a deployed 0024 its rollback, in a transaction rolled back
at once, to prove it runs there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from pytest_postgresql.janitor import DatabaseJanitor

from readiness.databases import facts, shadow
from readiness.databases.build import MigrationState, as_deploying_role, inspect, lint_findings
from readiness.errors import ReadinessUsageError
from readiness.postgres.connection import Timeouts, connect
from readiness.postgres.dsn import CODES, describe, redact, unreadable
from readiness.rules.budget import DryRun, LockBudget
from readiness.schema import deployment, drift, snapshot
from readiness.schema.apply import ApplyError, apply_file
from readiness.schema.prerequisites import migration_0023_evidence

SHADOW, SHADOW_BEFORE = "readiness", "readiness_pre"
# The schemas the run reads 0024's prerequisites and tables in: looking a name up there needs USAGE on them.
READ_SCHEMAS = ("public", "auth")
UNREADABLE_SCHEMAS = (
    "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) AND NOT has_schema_privilege(oid, 'USAGE') ORDER BY 1"
)


def open_target(dsn: str, timeouts: Timeouts) -> psycopg.Connection:
    """Connect to the target, or raise a usage error saying what failed and what to check, never the password."""
    try:
        return connect(dsn, timeouts)
    except psycopg.ProgrammingError as error:
        raise ReadinessUsageError(unreadable(dsn, error)) from None
    except psycopg.OperationalError as error:
        cause = redact(str(error).strip(), dsn)
        hint = (
            f"check the password: in a URL it must be URL-encoded, {CODES}"
            if "password" in cause
            else "check host, port, database name and network access"
        )
        raise ReadinessUsageError(f"Cannot connect to the target {describe(dsn)}: {cause} ({hint}).") from None


def server_major(conn: psycopg.Connection) -> tuple[int, str]:
    """The target's major version and its version ('17.5')."""
    number, version = conn.execute(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version')"
    ).fetchone()
    conn.rollback()
    return number // 10000, version


@dataclass(frozen=True)
class Server:
    """The suite's own server, where the shadow is built."""

    host: str
    port: int
    user: str

    def conninfo(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(host=self.host, port=self.port, user=self.user, dbname=dbname)


class ShadowError(ReadinessUsageError):
    """The target's definitions could not be built on the suite's server: which statement, and why."""


@dataclass
class Reading:
    """What the read-only look at the target found."""

    state: MigrationState
    shadow: shadow.Shadow
    sequences: dict[str, int | None] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)  # what it has of Supabase's platform (databases.facts)


def read_target(conn: psycopg.Connection, migration: Path) -> Reading:
    """The target as it is, in one read-only transaction (nothing is locked but what reading the catalog takes)."""
    state = MigrationState("", migration, on_target=True)
    conn.read_only = True
    try:
        objects = deployment.created_objects(migration)
    except ApplyError as error:  # the file does not parse: the shadow's apply says so, where
        objects, state.error = [], error
    state.held = held = deployment.read(conn, objects)
    inspect(conn, state)  # prerequisites, 0023, the target's own linter findings before 0024
    definitions = shadow.read(conn, held, migration_0023_evidence(conn, migration))
    sequences = sequence_values(conn)
    found = facts.of(conn)
    conn.rollback()
    return Reading(state, definitions, sequences, found)


def build(server: Server, definitions: shadow.Shadow, dbname: str, timeouts: Timeouts) -> str:
    """A database of the suite's server holding the definitions; its conninfo."""
    with connect(server.conninfo("postgres"), timeouts, autocommit=True) as admin:
        for statement in definitions.roles:
            admin.execute(statement)
    DatabaseJanitor(user=server.user, host=server.host, port=server.port, dbname=dbname).init()
    conninfo = server.conninfo(dbname)
    owned_as_on_the_target(server, dbname, definitions.database_owner, timeouts)
    with connect(conninfo, timeouts) as conn:
        conn.execute("SET check_function_bodies = off")  # a SQL function may name a table made after it
        for statement in definitions.statements:
            try:
                with conn.transaction():
                    conn.execute(statement)
            except psycopg.Error as error:
                text = statement.as_string(conn)
                raise ShadowError(
                    f"The target's definitions could not be rebuilt on the suite's server at `{text[:300]}`: "
                    f"{error.diag.message_primary}. Verify a staging copy, or report it with this statement."
                ) from None
        conn.commit()
    return conninfo


def copy_of(server: Server, template: str, dbname: str, timeouts: Timeouts, owner: str) -> str:
    """A new database `dbname` made from `template` (which nobody may be connected to), owned by `owner`; its
    conninfo."""
    with connect(server.conninfo("postgres"), timeouts, autocommit=True) as admin:
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
        admin.execute(create.format(sql.Identifier(dbname), sql.Identifier(template)))
    owned_as_on_the_target(server, dbname, owner, timeouts)
    return server.conninfo(dbname)


def owned_as_on_the_target(server: Server, dbname: str, owner: str, timeouts: Timeouts) -> None:
    """The shadow database owned by the target database's owner: on PostgreSQL 15+ public belongs to whoever owns
    the database (pg_database_owner), so who may create there is as on the target."""
    if owner and owner != server.user:
        with connect(server.conninfo("postgres"), timeouts, autocommit=True) as admin:
            alter = sql.SQL("ALTER DATABASE {} OWNER TO {}")
            admin.execute(alter.format(sql.Identifier(dbname), sql.Identifier(owner)))


class TargetSession:
    """The run's look at the target, the shadow its checks run in, and the one budgeted dry run on the target.

    What the target holds of 0024 decides what the run does (readiness.schema.deployment): absent, the file is
    applied in the shadow (the dry run gating its deploy); present, the tests verify the deployed objects
    copied into the shadow, where the rollback and then the file are run to compare with them; partly
    present, nothing of 0024 is checked and the ways out are tried in the shadow instead.
    """

    def __init__(
        self, dsn: str, timeouts: Timeouts, migration: Path, rollback: Path, required_major: int, budget: LockBudget
    ) -> None:
        """Connect, check the server's major, and read the target (nothing is built yet: see `prepare`)."""
        self.conn = open_target(dsn, timeouts)
        major, self.version = server_major(self.conn)
        if major != required_major:
            self.conn.close()
            raise ReadinessUsageError(
                f"The target {describe(dsn)} runs {self.version.split(',')[0]}, but migration 0024 targets "
                f"PostgreSQL {required_major}. Point --dsn at a PostgreSQL {required_major} server, or pass "
                f"--pg-major={major} to verify against {major} on purpose."
            )
        self.migration, self.rollback, self.timeouts, self.budget = migration, rollback, timeouts, budget
        unreadable = [row[0] for row in self.conn.execute(UNREADABLE_SCHEMAS, (list(READ_SCHEMAS),))]
        self.conn.rollback()
        if unreadable:
            grants = " ".join(f"GRANT USAGE ON SCHEMA {name} TO {self.conn.info.user};" for name in unreadable)
            role = self.conn.info.user
            self.conn.close()
            raise ReadinessUsageError(
                f"The target {describe(dsn)} cannot be read: its role {role} lacks USAGE on schema "
                f"{', '.join(unreadable)}, where 0024's prerequisites are. Grant it ({grants}) or verify as the "
                "role that deploys 0024."
            )
        reading = read_target(self.conn, migration)
        self.state, self.shadow, self.sequences = reading.state, reading.shadow, reading.sequences
        self.facts = reading.facts
        self.target_lint = self.state.lint_before  # the target's own findings before 0024: the app's other tables'
        self.dry_run: DryRun | None = None

    def prepare(self, server: Server) -> None:
        """Build the shadow on the suite's `server`, apply or rebuild 0024 there, and dry-run on the target."""
        held, timeouts, migration, rollback = self.state.held, self.timeouts, self.migration, self.rollback
        assert held is not None, "the target's state was not read"
        self.state.deploying_role = self.shadow.deploying_role
        self.state.verifying_role = self.conn.info.user
        if held.state == deployment.ABSENT:
            self.state.premigration = build(server, self.shadow, SHADOW_BEFORE, timeouts)
            self.state.conninfo = copy_of(server, SHADOW_BEFORE, SHADOW, timeouts, self.shadow.database_owner)
            self.apply_in_the_shadow()
            if self.state.error is None and not self.state.missing_prerequisites:
                self.dry_run = self.on_the_target(migration, "0024 applied on the target, rolled back")
        else:
            self.state.conninfo = build(server, self.shadow, SHADOW, timeouts)
            if held.state == deployment.PRESENT:
                self.rebuild_from_the_file(server)
                if self.state.rollback_error is None:
                    self.dry_run = self.on_the_target(rollback, "the rollback run on the target, rolled back")
            else:
                with connect(self.state.conninfo, timeouts) as conn:
                    self.state.partial = self.ways_out(conn, held)
        self.conn.read_only = True  # from here on the target is only read

    def on_the_target(self, path: Path, what: str) -> DryRun:
        """The one dry run on the target, within the lock budget."""
        self.conn.read_only = False
        try:
            return self.budget.dry_run(self.conn, path, what)
        finally:
            self.conn.rollback()
            self.conn.read_only = True

    def apply_in_the_shadow(self) -> None:
        """Apply the file to the shadow, as the target's deploying role, and commit it (or record its failure)."""
        with connect(self.state.conninfo, self.timeouts) as conn:
            self.state.baseline = snapshot.take(conn)
            self.state.lint_before = lint_findings(conn)
            if self.state.error is not None:
                return
            self.state.error = self.committed(conn, self.migration)

    def rebuild_from_the_file(self, server: Server) -> None:
        """0024 present: the shadow before it (the rollback run on a copy of the deployed objects, committed) and
        the catalog as the file builds it there (rolled back)."""
        self.state.deployed = self.shadow_snapshot()
        self.state.premigration = copy_of(server, SHADOW, SHADOW_BEFORE, self.timeouts, self.shadow.database_owner)
        with connect(self.state.premigration, self.timeouts) as conn:
            self.state.rollback_error = self.committed(conn, self.rollback)
            if self.state.rollback_error is not None:
                return
            self.state.baseline = snapshot.take(conn)
            self.state.lint_before = lint_findings(conn)
            with conn.transaction(force_rollback=True):
                try:
                    with as_deploying_role(conn, self.state):
                        apply_file(conn, self.migration)
                    self.state.file_built = snapshot.take(conn)
                except ApplyError as error:
                    self.state.file_error = error

    def committed(self, conn: psycopg.Connection, path: Path) -> ApplyError | None:
        """Apply `path` as the deploying role and commit it; its failure (rolled back) when it does not apply."""
        try:
            with as_deploying_role(conn, self.state):
                apply_file(conn, path)
            conn.commit()
        except ApplyError as error:
            conn.rollback()
            return error
        return None

    def shadow_snapshot(self) -> snapshot.Snapshot:
        with connect(self.state.conninfo, self.timeouts) as conn:
            return snapshot.take(conn)

    def ways_out(self, conn: psycopg.Connection, held: deployment.TargetState) -> str:
        """0024 partly present: the one blocking cause, with what exists, what is missing, and each way out tried
        in the shadow."""
        tried, compared = [], "the objects present could not be compared with the file (its rollback fails)"
        baseline = snapshot.take(conn)
        try:
            with conn.transaction(force_rollback=True):
                with as_deploying_role(conn, self.state):
                    apply_file(conn, self.rollback)
                left = deployment.read(conn, held.existing).existing
                if left:
                    tried.append(f"the rollback leaves {', '.join(map(str, left))}: it does NOT clean the target")
                else:
                    apply_file(conn, self.migration)
                    tried.append("the rollback leaves the target clean and 0024 then applies: this way out WORKS")
                    found = [d for d in drift.compare(baseline, snapshot.take(conn)) if d.deployed]
                    compared = f"the {len(held.existing)} objects present match what the file creates"
                    if found:
                        compared = "the objects present differ from what the file creates: " + "; ".join(
                            map(str, found)
                        )
        except ApplyError as error:
            tried.append(f"rollback then 0024 FAILS: {error}")
        resume = held.first_missing
        with conn.transaction(force_rollback=True):
            try:
                with as_deploying_role(conn, self.state):
                    apply_file(conn, self.migration, start=resume.position)
                tried.append(
                    f"applying the rest of the file (from {resume.where}, {resume}) WORKS"
                    if deployment.read(conn, held.missing).state == deployment.PRESENT
                    else "applying the rest of the file runs but does not create every missing object"
                )
            except ApplyError as error:
                tried.append(f"applying the rest of the file FAILS: {error}")
        return (
            f"0024 is partly present on the target, as a deploy that stopped half-way leaves it: "
            f"{len(held.existing)} of the file's {len(held.existing) + len(held.missing)} objects exist "
            f"({deployment.listed(held.existing)}); missing: {deployment.listed(held.missing)}; {compared}. "
            f"Tried in the shadow of the target: {'; '.join(tried)}"
        )

    def moved_sequences(self) -> list[str]:
        """The target's sequences the run advanced (none: nothing the run does on the target writes)."""
        try:
            now = sequence_values(self.conn)
            self.conn.rollback()
        except psycopg.Error as error:  # the connection was lost, or the run interrupted mid-statement
            return [f"unknown: {str(error).strip()}"]
        return [f"{name}: {self.sequences.get(name)} -> {value}" for name, value in now.items()
                if value != self.sequences.get(name)]  # fmt: skip

    def close(self) -> None:
        """Disconnect; nothing the run did on the target outlived its transaction."""
        if not self.conn.closed:
            try:
                self.conn.rollback()
            finally:
                self.conn.close()


def sequence_values(conn: psycopg.Connection) -> dict[str, int | None]:
    """Every sequence's last value, read without advancing it."""
    rows = conn.execute("SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences").fetchall()
    return dict(rows)
