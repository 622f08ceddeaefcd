"""Task 7, Production Readiness Checks: the report's table, Supabase's linter rules, 0024's lock footprint.

The report's rows first: the server, the prerequisites, no session in the migration's way, the
migration executing on a database that never had it (under lock_timeout, rolled back), RLS on.
Then splinter's rules on the migrated schema: a finding 0024 brings fails its test, a finding the
database had before 0024 (the same rule on the never-migrated database) is reported, not failed.
Then, as the tool eugene traces it, the locks 0024 takes on what existed before it, and rewrites.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from readiness.acting.factories import SYNC_TABLES
from readiness.databases.build import MigrationState
from readiness.postgres.connection import Timeouts, connect
from readiness.report.messages import apply_error_issue
from readiness.report.record import Record
from readiness.rules import lint, locks, squawk
from readiness.schema import catalog, scope
from readiness.schema.apply import ApplyError, NotRun, apply_file
from readiness.verdicts import Issue, blocked, not_applicable

pytestmark = [pytest.mark.readiness, pytest.mark.task(7)]

SERVER_VERSION_NUM = "SELECT current_setting('server_version_num')::int"
SET_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %s, true)"
# What 0024 locks or creates: its referenced tables, and its own tables if present (a re-run).
TOUCHED = ["public.organization", "auth.users_extended", *(f"public.{table}" for table in SYNC_TABLES)]
DEPLOYMENT_SAFE = "Application deployment safe"
INSUFFICIENT_PRIVILEGE = "42501"


def dry_run(conn: psycopg.Connection, migration: Path, timeouts: Timeouts) -> None:
    """Apply `migration` in `conn`'s transaction (the caller rolls it back), never waiting on a lock for long."""
    conn.execute(SET_LOCK_TIMEOUT, (f"{timeouts.lock_ms}ms",))
    apply_file(conn, migration)


# --- what the file does beyond its transaction and its objects ---------------------------

RULE_OF = {scope.ESCAPES: "readiness:escapes-rollback", scope.SCOPE: "readiness:outside-scope",
           scope.SPLIT: "readiness:split-transaction"}  # fmt: skip


@pytest.mark.enforces("rule.contained")
@pytest.mark.separate_causes
@pytest.mark.parametrize("which", ["migration", "rollback"])
def test_file_stays_within_its_transaction_and_objects(
    request: pytest.FixtureRequest, migration: Path, which: str, migration_state: MigrationState, record: Record
) -> None:
    """The file (its DO blocks and functions too) does nothing a rollback cannot undo or that reaches outside the
    database (such a file is run nowhere), changes nothing 0024 does not own, and is one transaction."""
    path = request.getfixturevalue(which)
    found = scope.findings(path, migration)
    for finding in found:
        if finding.kind == scope.UNSEEN:
            record.recommend(Issue("LOW", f"{finding.message}: not read by the scope check; say what it runs, or "
                                   "make it a static statement", str(finding.location), rule="readiness:unread-sql",
                                   at=finding.location))  # fmt: skip
        elif finding.kind == scope.NOTE:
            record.recommend(Issue("LOW", finding.message, str(finding.location), rule="readiness:notifies",
                                   at=finding.location))  # fmt: skip
        else:
            record.block(Issue(finding.severity, finding.message, str(finding.location), rule=RULE_OF[finding.kind],
                               at=finding.location), cause=migration_state.cause)  # fmt: skip
    blocking = [f"{finding.location}: {finding.message}" for finding in found
                if finding.kind not in (scope.UNSEEN, scope.NOTE)]  # fmt: skip
    assert blocking == [], "; ".join(blocking)


# --- the report's table ----------------------------------------------------------------


@pytest.mark.enforces("report.server")
def test_server_is_the_expected_major(db: psycopg.Connection, pytestconfig: pytest.Config) -> None:
    """The server the checks run on is PostgreSQL of the --pg-major release (17, as the report's Neon)."""
    version = catalog.scalar(db, SERVER_VERSION_NUM)
    wanted = pytestconfig.getoption("pg_major")
    assert version // 10000 == wanted, f"server_version_num {version}: PostgreSQL {version // 10000}, not {wanted}"


@pytest.mark.enforces("report.no-active-locks")
@pytest.mark.check("No active locks")
def test_no_session_in_the_way(
    readonly_db: psycopg.Connection,
    session_connection: psycopg.Connection,
    migration_state: MigrationState,
    timeouts: Timeouts,
) -> None:
    """No other session holds a lock on what 0024 touches or keeps a transaction open (idle, or over 5 minutes)."""
    db = readonly_db
    ours = [session_connection.info.backend_pid]  # the suite's own sessions (on a target, it reads only)
    found = locks.sessions_in_the_way(db, TOUCHED, ours)
    assert found == [], "sessions in 0024's way: " + "; ".join(map(str, found))
    if migration_state.on_target:
        return  # a target is only read: no probe session takes locks there
    # The check must see a lock when there is one: another session takes one on organization.
    # It must not wait on one either: that session also locks the partitioned log whole, if present.
    with connect(migration_state.conninfo, timeouts) as other:
        try:
            other.execute("LOCK TABLE organization IN ROW EXCLUSIVE MODE")
            if catalog.relation_exists(db, "public.sync_activity_log"):
                other.execute("LOCK TABLE sync_activity_log IN ACCESS EXCLUSIVE MODE")
            probe = locks.sessions_in_the_way(db, TOUCHED, ours)
        finally:
            other.rollback()
        pid = other.info.backend_pid
    assert any(f.pid == pid and f.relation == "organization" and f.mode == "RowExclusiveLock" for f in probe), (
        f"the check misses a RowExclusiveLock another session (pid {pid}) holds on organization; it found {probe}"
    )


@pytest.mark.enforces("report.executes")
@pytest.mark.check("Migration can execute")
def test_migration_executes_on_a_fresh_database(
    premigration: psycopg.Connection, migration: Path, timeouts: Timeouts, migration_state: MigrationState,
    record: Record,
) -> None:  # fmt: skip
    """The 0024 under test runs to its end on a database at its prerequisites, under lock_timeout (rolled back)."""
    started = time.perf_counter()
    failure = None
    try:
        dry_run(premigration, migration, timeouts)
    except NotRun as error:  # run nowhere: the scope check names each statement, and this is blocked by it
        blocked(f"migration 0024 was run nowhere, since what it does no rollback undoes: {error}")
    except ApplyError as error:
        failure = error
        record.block(apply_error_issue(error), cause=migration_state.cause)
    assert failure is None, f"0024 does not execute on a database at its prerequisites: {failure}"
    record.measure("0024 dry run (apply, rolled back)", f"{(time.perf_counter() - started) * 1000:.0f} ms")


@pytest.mark.enforces("report.executes")
@pytest.mark.check("Migration can execute")
def test_file_runs_on_the_target_within_the_lock_budget(
    migration_state: MigrationState, pytestconfig: pytest.Config, record
) -> None:
    """On a target, the file (or, with 0024 deployed, its rollback) runs there too: once, in a transaction rolled
    back at once, holding what stalls the application's writes no longer than the lock budget."""
    if not migration_state.on_target:
        not_applicable("the ephemeral server is the database under test: 0024 was applied to it")
    if migration_state.blocked_reason or migration_state.rollback_error:
        blocked(str(migration_state.blocked_reason or migration_state.rollback_error))
    outcome = migration_state.target_dry_run
    if outcome is None:
        not_applicable("nothing to run on the target")
    if outcome.stalled:
        record.recommend(Issue(
            "MEDIUM",
            f"could not be checked on the target without stalling it: {outcome.stalled}. The shadow of the target "
            "approves the file; to see it run on the target's own data, run the gate on a staging copy of it.",
            "the target",
        ))
        not_applicable(f"could not be checked on the target without stalling it: {outcome.stalled}")
    if outcome.slow is not None:  # the file's own statement, not other sessions: the deploy would stall writes
        slow, budget_ms = outcome.slow, pytestconfig.getoption("lock_budget")
        record.block(Issue("HIGH", (
            f"{slow.statement}: ran longer than the lock budget ({budget_ms} ms) on the target "
            "after the file had named its existing tables, so the deploy would hold the application's writes on them "
            "at least that long; the run cancelled it there, once"), str(slow.location), at=slow.location),
            cause=migration_state.cause)  # fmt: skip
    assert outcome.slow is None, f"the file's own statement outran the lock budget on the target: {outcome.slow}"
    deployer, verifier = migration_state.deploying_role, migration_state.verifying_role
    if outcome.error is not None and outcome.error.sqlstate == INSUFFICIENT_PRIVILEGE and deployer != verifier:
        # the role verifying may not do what the deploying role does: a finding on the verifier, not on the file
        record.recommend(Issue(
            "MEDIUM",
            f"could not be run on the target as {verifier}, which is not {deployer}, the role that deploys and owns "
            f"0024: {outcome.error}. The shadow ran it as {deployer}; to see it run on the target, run the gate as "
            f"{deployer}.",
            "the target",
        ))
        not_applicable(f"could not be run on the target as {verifier}: {outcome.error.message}")
    if outcome.error is not None:
        record.block(apply_error_issue(outcome.error), cause=migration_state.cause)
    assert outcome.error is None, f"the file runs in the target's shadow but fails on the target: {outcome.error}"
    record.measure(f"on the target: {outcome.moment.what}", str(outcome.moment))


# --- Supabase linter (splinter) rules ---------------------------------------------------


# Each rule is splinter's of that name, scoped to what 0024 adds; its docstring says what it checks.
LINT_RULES = [
    pytest.param(
        lint.rls_disabled_in_public, marks=pytest.mark.check("RLS can be enabled"), id="rls_disabled_in_public"
    ),
    pytest.param(
        lint.policy_exists_rls_disabled, marks=pytest.mark.check("RLS can be enabled"), id="policy_exists_rls_disabled"
    ),
    pytest.param(lint.rls_enabled_no_policy, marks=pytest.mark.check(DEPLOYMENT_SAFE), id="rls_enabled_no_policy"),
    pytest.param(
        lint.multiple_permissive_policies, marks=pytest.mark.check(DEPLOYMENT_SAFE), id="multiple_permissive_policies"
    ),
    pytest.param(lint.auth_rls_initplan, marks=pytest.mark.check(DEPLOYMENT_SAFE), id="auth_rls_initplan"),
    pytest.param(
        lint.function_search_path_mutable, marks=pytest.mark.check(DEPLOYMENT_SAFE), id="function_search_path_mutable"
    ),
    pytest.param(
        lint.anon_security_definer_function_executable,
        marks=pytest.mark.check(DEPLOYMENT_SAFE),
        id="anon_security_definer_function_executable",
    ),
    pytest.param(
        lint.authenticated_security_definer_function_executable,
        marks=pytest.mark.check(DEPLOYMENT_SAFE),
        id="authenticated_security_definer_function_executable",
    ),
    pytest.param(lint.unindexed_foreign_keys, marks=pytest.mark.check(DEPLOYMENT_SAFE), id="unindexed_foreign_keys"),
    pytest.param(lint.duplicate_index, marks=pytest.mark.check(DEPLOYMENT_SAFE), id="duplicate_index"),
    pytest.param(lint.rls_policy_always_true, marks=pytest.mark.check(DEPLOYMENT_SAFE), id="rls_policy_always_true"),
]


# splinter rates these INFO: advice, not a fault. Their findings are recommendations, never blocking.
INFO_RULES = (lint.unindexed_foreign_keys, lint.rls_enabled_no_policy)


@pytest.mark.enforces("rule.splinter")
@pytest.mark.separate_causes  # each rule is its own finding, with its own fix
@pytest.mark.parametrize("rule", LINT_RULES)
def test_linter_rule_finds_nothing_new(
    migrated: psycopg.Connection, migration_state: MigrationState, rule: lint.LintRule, record
) -> None:
    """A Supabase linter (splinter) rule rated ERROR or WARN finds nothing in what 0024 adds; INFO findings
    are listed as recommendations."""
    found = lint.new_findings(rule, migrated, migration_state.lint_before[rule.__name__])  # 0024's, not the database's
    if rule in INFO_RULES:
        for finding in found:
            record.recommend(Issue("LOW", f"splinter {rule.__name__} (INFO): {finding}", "migration 0024",
                                   rule=f"splinter:{rule.__name__}", about=finding.about))  # fmt: skip
        return
    message = f"splinter {rule.__name__} ({(rule.__doc__ or '').strip()}):\n" + "\n".join(map(str, found))
    if found:
        about = tuple(dict.fromkeys(name for finding in found for name in finding.about))
        record.block(Issue("HIGH", message, "migration 0024", rule=f"splinter:{rule.__name__}", about=about),
                     cause=migration_state.cause)
    assert found == [], message


# --- lock footprint (eugene) ------------------------------------------------------------


@pytest.fixture
def footprint(premigration: psycopg.Connection, migration: Path, timeouts: Timeouts, record) -> locks.Footprint:
    """The locks 0024 takes on the relations that existed before it, and their rewrites, in a rolled-back dry run."""
    try:
        traced = locks.lock_footprint(premigration, lambda: dry_run(premigration, migration, timeouts))
    except NotRun as error:
        blocked(f"migration 0024 was run nowhere, since what it does no rollback undoes: {error}")
    except ApplyError as error:  # test_migration_executes_on_a_fresh_database fails with it
        blocked(f"migration 0024 did not apply: {error}")  # one cause with the apply check's
    record.measure("0024 lock footprint", str(traced))
    return traced


# --- squawk, the migration linter -------------------------------------------------------


def server_version(conn: psycopg.Connection) -> str:
    """'17.10' from the server's version number, for squawk's --pg-version."""
    number = conn.info.server_version
    return f"{number // 10000}.{number % 10000}"


@pytest.fixture(scope="session")
def deploy_timeouts(
    readonly_connection: psycopg.Connection, migration_state: MigrationState, pytestconfig: pytest.Config
) -> dict[str, tuple[str, str]]:
    """The timeouts the deploy sets itself: on its role or database (read from the database under test), or, as
    the decisions file's [deploy] says, on its connection. setting -> (value, where it is set)."""
    role = migration_state.deploying_role or readonly_connection.info.user
    found = {}
    try:
        with readonly_connection.transaction(force_rollback=True):
            found = catalog.role_timeouts(readonly_connection, role)
    except psycopg.errors.InsufficientPrivilege:  # a role that may not read the settings: the file's [deploy] only
        pass
    decided = pytestconfig.option.decisions
    for name, value in decided.deploy.items():
        found[name] = (value, f"by the deploy's connection ([deploy] of {decided.path.name})")
    return found


@pytest.mark.enforces("rule.squawk")
@pytest.mark.separate_causes  # the migration and its rollback are two files, each with its own fix
@pytest.mark.check(DEPLOYMENT_SAFE)
@pytest.mark.parametrize("kind", ["migration", "rollback"])
def test_squawk_finds_nothing_blocking(
    kind: str, migration: Path, rollback: Path, footprint: locks.Footprint, readonly_db: psycopg.Connection,
    deploy_timeouts, migration_state: MigrationState, record: Record,
) -> None:  # fmt: skip
    """squawk finds nothing its rule table (rules/squawk_rules.toml) calls blocking in 0024 or its rollback, but
    what the team settled: its .squawk.toml, its squawk-ignore comments, timeouts its deploy sets itself."""
    path = migration if kind == "migration" else rollback
    try:
        locks_existing = bool(footprint.blocks_writes())
        findings = squawk.lint(path, server_version(readonly_db), kind, locks_existing, deploy_timeouts)
    except squawk.SquawkUnavailable as error:
        blocked(str(error))
    blocking = []
    for finding in findings:
        rule = f"squawk:{finding.rule}"
        if finding.settled is not None:
            severity = "HIGH" if finding.decision == squawk.BLOCKING else "MEDIUM"
            record.settle(Issue(severity, str(finding), str(finding.location), requirement="rule.squawk", rule=rule,
                                at=finding.location), finding.settled)  # fmt: skip
        elif finding.decision == squawk.RECOMMENDATION:
            message = f"squawk {finding.rule}: {finding.message} ({finding.why})"
            record.recommend(Issue("MEDIUM", message, str(finding.location), rule=rule, at=finding.location))
        elif finding.decision == squawk.BLOCKING:
            blocking.append(str(finding))
            record.block(Issue("HIGH", str(finding), str(finding.location), rule=rule, at=finding.location),
                         cause=migration_state.cause)
    not_applicable = [f"{f.location} {f.rule}: {f.why}" for f in findings if f.decision == squawk.NOT_APPLICABLE]
    if not_applicable:
        record.measure(f"squawk on the {kind}, not applicable", "; ".join(not_applicable))
    assert blocking == [], f"squawk on the {kind} ({path.name}):\n" + "\n".join(blocking)


@pytest.mark.enforces("rule.locks")
@pytest.mark.check(DEPLOYMENT_SAFE)
def test_no_access_exclusive_lock_on_existing_relation(footprint: locks.Footprint) -> None:
    """0024 takes no ACCESS EXCLUSIVE lock on a relation that existed before it (every read would wait)."""
    blocked = footprint.access_exclusive()
    assert blocked == [], (
        f"0024 locks {', '.join(blocked)} ACCESS EXCLUSIVE until COMMIT: every query of it waits. "
        f"Footprint: {footprint}"
    )


@pytest.mark.enforces("rule.locks")
@pytest.mark.check(DEPLOYMENT_SAFE)
def test_no_rewrite_of_existing_table(footprint: locks.Footprint) -> None:
    """0024 rewrites no table that existed before it (its relfilenode is unchanged)."""
    assert footprint.rewritten == (), (
        f"0024 rewrites {', '.join(footprint.rewritten)} (new relfilenode): the table is copied whole under "
        "ACCESS EXCLUSIVE. Use a change that does not rewrite (e.g. no volatile DEFAULT on ADD COLUMN)."
    )
