"""Task 8, Rollback Procedure: the rollback leaves no trace in every state, and keeps the data it must keep."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from readiness.acting import factories, rows
from readiness.acting.auth import attempt
from readiness.databases import volume_cluster
from readiness.databases.build import MigrationState, as_deploying_role
from readiness.report.record import Record
from readiness.rules.causes import cause_of
from readiness.schema import catalog, deployment, drift, snapshot
from readiness.schema.apply import TRANSACTION_CONTROL as _TXN
from readiness.schema.apply import ApplyError, apply_file, split
from readiness.schema.prerequisites import migration_0023_evidence
from readiness.verdicts import Issue, blocked, not_applicable

pytestmark = [pytest.mark.readiness, pytest.mark.task(8)]

# Tables the rollback must leave untouched, row for row: the prerequisites', and 0023's (found as task 1 does).
KEPT_TABLES = ("public.organization", "auth.users_extended")
ROLLBACK_VOLUME = 10_000  # activity-log rows present when the rollback is timed


@pytest.fixture(scope="session")
def applied(migration_state: MigrationState) -> None:
    """0024 applies to the database under test; if not, there is nothing to roll back: N/A, as in the report."""
    if migration_state.partial:  # the way out is tried and named by the one cause, task 1's
        blocked(migration_state.partial)
    if migration_state.blocked_reason:
        not_applicable(f"0024 was never applied ({migration_state.blocked_reason}), nothing to roll back")


def deployed(migration_state: MigrationState) -> bool:
    """Whether the database under test is a target that held 0024 before the run."""
    return migration_state.held is not None and migration_state.held.state == deployment.PRESENT


def run_rollback(
    conn: psycopg.Connection, rollback: Path, state: str, migration_state: MigrationState | None = None
) -> None:
    """The rollback, run as the role that deploys 0024 (the volume's cluster, ours alone, knows only its own)."""
    try:
        with as_deploying_role(conn, migration_state) if migration_state else nullcontext():
            apply_file(conn, rollback)
    except ApplyError as error:
        pytest.fail(f"rollback fails when 0024 is {state}: {error}")


def leftovers(before: snapshot.Snapshot, after: snapshot.Snapshot) -> str:
    return "\n".join(snapshot.diff(before, after)[:20])


@pytest.mark.enforces("report.rollback")
def test_round_trip_leaves_no_trace(
    applied: None, migrated: psycopg.Connection, migration_state: MigrationState, migration: Path, rollback: Path
) -> None:
    """After apply then rollback the catalog equals the one before 0024; applying again recreates it exactly.
    With 0024 deployed: the rollback removes every object of the file, and nothing that is not 0024's."""
    applied = snapshot.take(migrated)
    run_rollback(migrated, rollback, "deployed" if deployed(migration_state) else "fully applied", migration_state)
    if deployed(migration_state):
        held = migration_state.held  # what the session read of the file's objects, before anything ran
        objects = [*held.existing, *held.missing]
        left = deployment.read(migrated, objects).existing
        assert not left, f"the rollback leaves 0024's {', '.join(map(str, left))} on the deployed database"
        after = snapshot.take(migrated)
        others = [line for line in snapshot.diff(applied, after) if not deployment.owned(line, objects)]
        assert not others, "the rollback changes objects that are not 0024's:\n" + "\n".join(others[:20])
        return
    after = snapshot.take(migrated)
    assert after == migration_state.baseline, "rollback leaves objects behind:\n" + leftovers(
        migration_state.baseline, after
    )
    try:
        with as_deploying_role(migrated, migration_state):
            apply_file(migrated, migration)
    except ApplyError as error:
        pytest.fail(f"0024 does not apply again after its rollback (something it made is left behind): {error}")
    again = snapshot.take(migrated)
    assert again == applied, "0024 applied after its rollback differs from the first apply:\n" + leftovers(
        applied, again
    )


@pytest.mark.enforces("report.deployed-contract")
def test_deployed_objects_match_the_file(
    applied: None,
    migration_state: MigrationState,
    missing_objects: dict[str, list[str]],
    record: Record,
) -> None:
    """With 0024 deployed, its objects are what the file creates: drift from the report's contract blocks,
    drift in what the report leaves open is a recommendation (the repository's file is not what was deployed).
    A report object missing from the deployed 0024 is one cause: its existence check's (readiness.rules.causes)."""
    if not deployed(migration_state):
        not_applicable("0024 is not deployed on the database under test: the file is what the checks ran on")
    if migration_state.rollback_error or migration_state.file_error:
        failed = migration_state.rollback_error or migration_state.file_error
        blocked(f"the rollback and the file could not rebuild 0024 to compare: {failed}")
    assert migration_state.file_built is not None, "the catalog the file builds was not read before the tests"
    found = drift.compare(migration_state.deployed, migration_state.file_built)
    for difference in found:
        if not difference.contract:
            record.recommend(Issue("MEDIUM", f"drift from the file: {difference}", "the target",
                                   about=(difference.subject,)))  # fmt: skip
    # A report object the deployed 0024 lacks is already its existence check's cause: not a second issue.
    missing = {name for names in missing_objects.values() for name in names}
    gone = [d.subject for d in found if d.contract and d.deployed is None and d.subject in missing]
    drifted = [d for d in found if d.contract and d.subject not in gone]
    contract = [str(d) for d in drifted]
    if gone and not contract:  # BLOCKED by the existence check's cause, counted under it
        kind = next(kind for kind, names in missing_objects.items() if set(gone) & set(names))
        blocked(cause_of(kind, missing_objects).text)
    if contract:
        record.block(Issue("HIGH", "the deployed 0024 drifted from the report's contract: " + "; ".join(contract),
                           "the target", about=tuple(d.subject for d in drifted)), cause=migration_state.cause)
    differs = contract or [f"{name}: deployed: (absent)" for name in gone]
    assert not differs, "the deployed 0024 differs from its file in what the report requires:\n" + "\n".join(differs)


@pytest.mark.enforces("rule.rollback-any-state")
def test_rollback_when_never_applied(
    applied: None, premigration: psycopg.Connection, rollback: Path, migration_state: MigrationState
) -> None:
    """The rollback runs on a database where 0024 was never applied, and changes nothing there."""
    before = snapshot.take(premigration)
    run_rollback(premigration, rollback, "never applied", migration_state)
    after = snapshot.take(premigration)
    assert after == before, "rollback changed a database 0024 never touched:\n" + leftovers(before, after)


def cut_points(migration: Path) -> dict[str, int]:
    """Statement counts after which a partial apply stops: the end of each run of one kind of statement."""
    kinds = [s.kind for s in split(migration) if s.kind != _TXN]
    return {f"after statement {i + 1} ({kind})": i + 1 for i, kind in enumerate(kinds[:-1]) if kinds[i + 1] != kind}


@pytest.mark.enforces("rule.rollback-any-state")
def test_rollback_after_partial_apply(
    applied: None, premigration: psycopg.Connection, migration: Path, rollback: Path
) -> None:
    """Stopped after any run of statements (enums, tables, indexes...), the rollback restores the database."""
    before = snapshot.take(premigration)
    failures = []
    reached = 0
    # One apply, a cut at a time: each rollback runs in a savepoint undone before the apply goes on.
    for cut, count in cut_points(migration).items():
        reached = apply_file(premigration, migration, limit=count, start=reached)
        with premigration.transaction(force_rollback=True):
            try:
                with premigration.transaction():
                    apply_file(premigration, rollback)
            except ApplyError as error:
                failures.append(f"{cut}: rollback fails: {error}")
                continue
            after = snapshot.diff(before, snapshot.take(premigration))
            if after:
                failures.append(f"{cut}: leftovers {after[:5]}")
    assert not failures, "rollback after a partial apply of 0024:\n" + "\n".join(failures)


@pytest.mark.enforces("report.rollback")
def test_rollback_keeps_prerequisite_data(
    applied: None, migrated: psycopg.Connection, migration_state: MigrationState, rollback: Path, record
) -> None:
    """Rolling back with data removes the sync tables and leaves organisations, users and 0023's rows untouched."""
    tenants = factories.tenants(migrated, 2, "rollback")
    infrastructure = [f"public.{name}" for name in migration_0023_evidence(migrated, migration_state.migration)]
    kept_tables = [table for table in (*KEPT_TABLES, *infrastructure) if catalog.relation_exists(migrated, table)]
    for table in infrastructure:  # a row of 0023's tables where one can be made from their types alone
        if "org_id" in catalog.columns(migrated, table):
            values = rows.complete(migrated, table, {"org_id": tenants[0].org_id})
            attempt(migrated, lambda: rows.insert(migrated, table, values))  # noqa: B023
    row = factories.new_row(migrated, "sync_activity_log", tenants[1].org_id)
    columns = [name for name in row if name != "created_at"]
    migrated.execute(
        sql.SQL("INSERT INTO sync_activity_log ({}, created_at) SELECT {}, now() - make_interval(mins => g) "
                "FROM generate_series(1, %s) g").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(sql.Placeholder() * len(columns))
        ),
        [*(row[name] for name in columns), ROLLBACK_VOLUME],
    )  # fmt: skip
    kept = {table: snapshot.fingerprint(migrated, table) for table in kept_tables}
    started = time.perf_counter()
    run_rollback(migrated, rollback, "applied, with data", migration_state)
    record.measure(f"rollback with {ROLLBACK_VOLUME:,} log rows", f"{(time.perf_counter() - started) * 1000:.0f} ms")
    after = {table: snapshot.fingerprint(migrated, table) for table in kept_tables}
    assert after == kept, f"rollback changed kept tables: before {kept}, after {after}"
    remaining = [t for t in factories.SYNC_TABLES if migrated.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0]]
    assert remaining == [], f"rollback leaves tables {remaining}"


@pytest.mark.enforces("report.rollback")
def test_rollback_time_on_volume(
    applied: None, volume_db: psycopg.Connection, rollback: Path, migration: Path, record
) -> None:
    """On the loaded volume the rollback runs (time reported: the report estimates under 1 s), and 0024 re-applies."""
    volume_cluster.enter(volume_db, exclusive=True)  # no other worker reads the volume while it is dropped
    held = volume_db.execute("SELECT count(*) FROM sync_activity_log").fetchone()[0]
    started = time.perf_counter()
    run_rollback(volume_db, rollback, f"applied, with {held:,} log rows")
    record.measure(f"rollback with {held:,} log rows (report: <1 s)", f"{time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    apply_file(volume_db, migration)
    record.measure(
        "0024 apply on the volume database's organisations and users", f"{time.perf_counter() - started:.2f} s"
    )
    left = volume_db.execute("SELECT count(*) FROM sync_activity_log").fetchone()[0]
    assert left == 0, f"0024 applied again after its rollback holds {left:,} activity-log rows: the rollback kept them"
