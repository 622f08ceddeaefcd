"""Task 4, Trigger Function Validation: the 5 functions and 4 triggers exactly, then what each one does.

The catalog checks compare with `readiness.expected`; the behaviour checks act on sync_progress
rows inside the test's transaction (now() is the transaction's start, so times are exact).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import dict_row

from readiness import catalog, design, expected, factories, roles
from readiness.auth import ANON, AUTHENTICATED, SERVICE_ROLE, accepted, acting_as, as_user, refused
from readiness.explain import differences

pytestmark = pytest.mark.readiness

CHECK_VIOLATION = "23514"
INSUFFICIENT_PRIVILEGE = "42501"
STATUSES = expected.ENUMS["sync_status_type"]
FINISHED = expected.FINISHED_STATUSES
UNFINISHED = tuple(status for status in STATUSES if status not in FINISHED)
COUNTS = ("total_items", "processed_items", "failed_items")


def now(conn: psycopg.Connection) -> datetime:
    """The transaction's now(): what the trigger functions read."""
    return conn.execute("SELECT now()").fetchone()[0]


# The tests' names for the sync_progress columns the report's functions work on, and the role each plays:
# the migration under test may name them otherwise (readiness.roles resolves them from its catalog).
ROLE_OF = {
    "status": "status",
    "total_items": "total",
    "processed_items": "processed",
    "failed_items": "failed",
    "elapsed_seconds": "elapsed",
    "items_per_second": "speed",
}
_resolved: list[roles.Columns] = []


@pytest.fixture(autouse=True)
def progress_columns(request: pytest.FixtureRequest, migration_state) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The column roles of the migration under test, for the helpers below (resolved only when 0024 applied)."""
    if migration_state.blocked_reason:
        yield
        return
    _resolved.append(request.getfixturevalue("columns"))
    yield
    _resolved.clear()


def column(name: str) -> str:
    """The column of the migration under test that plays the part the tests call `name`."""
    return _resolved[0][("sync_progress", ROLE_OF[name])] if name in ROLE_OF else name


def as_columns(values: dict[str, Any]) -> dict[str, Any]:
    return {column(name): value for name, value in values.items()}


def as_named(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row with the tests' names for the role columns."""
    names = {column(name): name for name in ROLE_OF}
    return {names.get(key, key): value for key, value in row.items()}


def seconds(value: Any) -> float | None:
    """An elapsed time or a speed as a number rounded to the millisecond (an interval in seconds); NULL as None."""
    if value is None:
        return None
    return round(value.total_seconds() if isinstance(value, timedelta) else float(value), 3)


def measured(row: dict[str, Any]) -> tuple[float | None, float | None]:
    """(elapsed seconds, items per second) of a stored job."""
    return seconds(row["elapsed_seconds"]), seconds(row["items_per_second"])


def job(conn: psycopg.Connection, **values: Any) -> dict[str, Any]:
    """A sync_progress row (total_items 100 unless given) of a new organisation, initiated by one of its users."""
    org_id = factories.organization(conn, "triggers")
    values = {"total_items": 100, **values}
    return as_named(
        factories.sync_row(conn, "sync_progress", org_id, factories.user(conn, org_id), **as_columns(values))
    )


def update(conn: psycopg.Connection, row_id: uuid.UUID, **values: Any) -> dict[str, Any]:
    """UPDATE sync_progress SET `values` on one row; the row as stored afterwards."""
    values = as_columns(values)
    query = sql.SQL("UPDATE sync_progress SET {} WHERE id = %s RETURNING *").format(
        sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in values)
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, [*values.values(), row_id]).fetchone()
    assert row is not None, f"UPDATE of sync_progress {row_id} found no row to update"
    return as_named(row)


def stored(conn: psycopg.Connection, row_id: uuid.UUID) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM sync_progress WHERE id = %s", (row_id,)).fetchone()
    assert row is not None, f"sync_progress {row_id} has disappeared"
    return as_named(row)


def log_rows(conn: psycopg.Connection, sync_id: uuid.UUID) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM sync_activity_log WHERE sync_id = %s", (sync_id,)).fetchall()


def summary(entries: list[dict[str, Any]]) -> list[str]:
    """Audit rows in short: action and status."""
    return [f"{entry['action']} {entry['status']}" for entry in entries]


def counts(row: dict[str, Any]) -> str:
    return ", ".join(f"{column.removesuffix('_items')} {row[column]}" for column in COUNTS)


def refusal(total: int | None, processed: int, failed: int) -> str | None:
    """The message validate_sync_progress_totals() must refuse these counts with, or None if they are valid."""
    if processed < 0 or failed < 0 or (total is not None and total < 0):
        shown = "<NULL>" if total is None else total  # how RAISE prints a NULL
        return f"sync_progress counts must not be negative (total {shown}, processed {processed}, failed {failed})"
    if total is not None and processed > total:
        return f"sync_progress processed_items ({processed}) exceeds total_items ({total})"
    if failed > processed:
        return f"sync_progress failed_items ({failed}) exceeds processed_items ({processed})"
    return None


@contextmanager
def refused_saying(conn: psycopg.Connection, sqlstate: str, message: str | None, attempt: str) -> Iterator[None]:
    """`refused(conn, sqlstate, message)`; on failure, says what was attempted and what PostgreSQL did instead.

    The wording of a count refusal is the migration's own: only its SQLSTATE is the report's (a constraint).
    """
    raised: list[BaseException] = []
    try:
        with refused(conn, sqlstate, message):
            try:
                yield
            except BaseException as error:
                raised.append(error)
                raise
    except (AssertionError, pytest.fail.Exception):
        if raised and not isinstance(raised[0], psycopg.Error):
            raise  # the block failed on its own: report that, not a refusal
        error = raised[0] if raised else None
        found = f"refused with {error.sqlstate} {error.diag.message_primary!r}" if error else "ACCEPTED"
        pytest.fail(f"{attempt}: expected refusal {sqlstate} {message or ''}, but it was {found}", pytrace=False)


# --- catalog ---------------------------------------------------------------------------


@pytest.mark.existence("functions")
def test_functions_exist(migrated: psycopg.Connection, design_difference) -> None:
    """The report's 5 functions exist in public; the 4 with a trigger event return trigger."""
    found = catalog.functions(migrated)
    for name, ours in design.FUNCTIONS.items():
        if name in found and found[name] != ours:
            design_difference(f"function {name}", ours, found[name])
    missing = [name for name in expected.FUNCTION_NAMES if name not in found]
    assert missing == [], f"functions missing from public: {', '.join(missing)}"
    triggers = {trigger.function.removeprefix("public.") for trigger in expected.CONTRACT_TRIGGERS}
    wrong = {name: found[name].returns for name in triggers if found[name].returns != "trigger"}
    assert wrong == {}, f"trigger functions that do not return trigger: {wrong}"


def test_each_function_fires_on_its_event(migrated: psycopg.Connection, design_difference) -> None:
    """Each trigger function fires as the report says: BEFORE INSERT/UPDATE, BEFORE UPDATE or AFTER UPDATE, per row."""
    found = catalog.triggers(migrated, "sync_progress")
    if found != design.TRIGGERS:
        design_difference(
            "trigger names on sync_progress",
            ", ".join(f"{name} ({trigger.function})" for name, trigger in design.TRIGGERS.items()),
            ", ".join(f"{name} ({trigger.function})" for name, trigger in found.items()),
        )
    missing = sorted(map(str, expected.CONTRACT_TRIGGERS - set(found.values())))
    assert missing == [], f"no enabled row trigger on sync_progress: {'; '.join(missing)}. Found: {found}"


def test_before_update_triggers_fire_in_order(migrated: psycopg.Connection) -> None:
    """The BEFORE UPDATE triggers, fired by name, run elapsed, then timestamp, then validate_totals."""
    found = tuple(
        trigger.function
        for _, trigger in sorted(catalog.triggers(migrated, "sync_progress").items())
        if trigger.timing == "BEFORE" and "UPDATE" in trigger.events
    )
    assert found == expected.BEFORE_UPDATE_ORDER, (
        f"BEFORE UPDATE triggers on sync_progress fire their functions in the order {found}, expected "
        f"{expected.BEFORE_UPDATE_ORDER}: counts must be validated on the row the other triggers have finished"
    )


# --- update_sync_progress_elapsed() ----------------------------------------------------


def test_elapsed_and_speed_on_insert(migrated: psycopg.Connection) -> None:
    """A job started 10 s ago with 50 items processed is stored with elapsed 10.000 s and 5.000 items/s."""
    row = job(migrated, started_at=now(migrated) - timedelta(seconds=10), processed_items=50)
    found = measured(row)
    assert found == (10.0, 5.0), (
        f"job started 10 s ago, 50 processed: expected (elapsed, speed) (10.000, 5.000), found {found}"
    )


def test_no_speed_while_no_time_has_elapsed(migrated: psycopg.Connection) -> None:
    """A job started now has elapsed 0 and speed NULL (not a division by zero)."""
    row = job(migrated, processed_items=10)
    found = measured(row)
    assert found == (0.0, None), f"job started now: expected (elapsed, speed) (0.000, NULL), found {found}"


def test_no_negative_elapsed_when_started_ahead_of_now(migrated: psycopg.Connection) -> None:
    """A job whose started_at is ahead of the server's clock (a skewed worker) has elapsed 0, not negative."""
    row = job(migrated, started_at=now(migrated) + timedelta(seconds=5), processed_items=10)
    found = measured(row)
    assert found == (0.0, None), f"job started 5 s ahead of now: expected (elapsed, speed) (0.000, NULL), found {found}"


def test_finished_job_measured_to_completed_at(migrated: psycopg.Connection) -> None:
    """A job completed at a given time is measured from started_at to completed_at, not to now."""
    start = now(migrated) - timedelta(seconds=100)
    row = job(
        migrated,
        status="completed",
        started_at=start,
        completed_at=start + timedelta(seconds=60),
        processed_items=30,
    )
    found = (row["completed_at"] - start, *measured(row))
    wanted = (timedelta(seconds=60), 60.0, 0.5)
    assert found == wanted, f"job done 60 s after start: expected (duration, elapsed, speed) {wanted}, found {found}"


def test_elapsed_and_speed_recomputed_on_update(migrated: psycopg.Connection) -> None:
    """Updating the progress or the start time recomputes elapsed and speed."""
    row = job(migrated, status="in_progress", started_at=now(migrated) - timedelta(seconds=10))
    row = update(migrated, row["id"], processed_items=80)
    found = measured(row)
    assert found == (10.0, 8.0), f"after 80 items: expected (10.000, 8.000), found {found}"
    row = update(migrated, row["id"], started_at=now(migrated) - timedelta(seconds=20))
    found = measured(row)
    assert found == (20.0, 4.0), f"after restart: expected (20.000, 4.000), found {found}"


@pytest.mark.parametrize("status", STATUSES)
def test_completed_at_stamped_when_finished(migrated: psycopg.Connection, status: str) -> None:
    """Moving a running job to a finished status stamps completed_at with now(); other statuses leave it NULL."""
    row = job(migrated, status="in_progress", started_at=now(migrated) - timedelta(seconds=10))
    row = update(migrated, row["id"], status=status)
    wanted = now(migrated) if status in FINISHED else None
    assert row["completed_at"] == wanted, (
        f"in_progress -> {status}: expected completed_at {wanted}, found {row['completed_at']}"
    )
    wanted_elapsed = 10.0  # to completed_at, or to now() while running: both 10 s here
    assert seconds(row["elapsed_seconds"]) == wanted_elapsed, (
        f"in_progress -> {status}: expected elapsed {wanted_elapsed}, found {row['elapsed_seconds']}"
    )


@pytest.mark.parametrize("resumed", UNFINISHED)
def test_resumed_job_is_active_again_and_restamped_when_it_finishes(migrated: psycopg.Connection, resumed: str) -> None:
    """A finished job moved back to an unfinished status loses completed_at (active again) and is re-stamped later."""
    started = now(migrated) - timedelta(seconds=30)
    row = job(migrated, status="failed", started_at=started, completed_at=started + timedelta(seconds=5))
    row = update(migrated, row["id"], status=resumed)
    assert row["completed_at"] is None, f"failed -> {resumed}: completed_at stays {row['completed_at']}, job not active"
    assert seconds(row["elapsed_seconds"]) == 30.0, f"a resumed job's elapsed is frozen at {row['elapsed_seconds']}"
    row = update(migrated, row["id"], status="completed")
    assert row["completed_at"] == now(migrated), f"re-finished job: completed_at {row['completed_at']}, not now()"


def test_finishing_update_stamps_then_measures_in_one_statement(migrated: psycopg.Connection) -> None:
    """One UPDATE finishing a job stamps completed_at, derives elapsed from it, and the audit row sees both."""
    start = now(migrated) - timedelta(seconds=10)
    row = job(migrated, status="in_progress", started_at=start, processed_items=40)
    row = update(migrated, row["id"], status="completed")
    found = (row["completed_at"], *measured(row))
    wanted = (now(migrated), 10.0, 4.0)
    assert found == wanted, f"in_progress -> completed: expected (completed_at, elapsed, speed) {wanted}, found {found}"
    logged = summary(log_rows(migrated, row["sync_id"]))
    assert logged == ["sync_complete completed"], f"expected one audit row for the finish, found {logged}"


# --- validate_sync_progress_totals() ---------------------------------------------------

INVALID = [
    pytest.param({"processed_items": -1}, id="negative processed"),
    pytest.param({"failed_items": -1}, id="negative failed"),
    pytest.param({"total_items": -1}, id="negative total"),
    pytest.param({"total_items": None, "processed_items": -3}, id="negative processed, unknown total"),
    pytest.param({"processed_items": 101}, id="processed over total"),
    pytest.param({"processed_items": 5, "failed_items": 6}, id="failed over processed"),
]
VALID = [
    pytest.param({"processed_items": 100, "failed_items": 100}, id="all processed, all failed"),
    pytest.param({"processed_items": 60, "failed_items": 5}, id="part processed"),
    pytest.param({"total_items": 0}, id="nothing to do"),
    pytest.param({"total_items": None, "processed_items": 500, "failed_items": 7}, id="unknown total"),
]


def _with_defaults(values: dict[str, Any]) -> dict[str, Any]:
    return {"total_items": 100, "processed_items": 0, "failed_items": 0, **values}


@pytest.mark.parametrize("values", INVALID)
def test_invalid_counts_refused_on_update(migrated: psycopg.Connection, values: dict[str, Any]) -> None:
    """An update breaking 0 <= failed <= processed <= total is refused (23514, the function's message); no change."""
    row = job(migrated)
    message = refusal(**{column.removesuffix("_items"): v for column, v in _with_defaults(values).items()})
    assert message is not None, f"test data: {values} are valid counts"
    with refused_saying(migrated, CHECK_VIOLATION, None, f"UPDATE sync_progress SET {values} on ({counts(row)})"):
        update(migrated, row["id"], **values)
    after = stored(migrated, row["id"])
    assert after == row, differences(f"sync_progress after the refused update {values}", row, after)


@pytest.mark.parametrize("values", INVALID)
def test_invalid_counts_refused_on_insert(migrated: psycopg.Connection, values: dict[str, Any]) -> None:
    """An insert breaking 0 <= failed <= processed <= total is refused (23514, the function's message); no row."""
    org_id = factories.organization(migrated, "triggers")
    message = refusal(**{column.removesuffix("_items"): v for column, v in _with_defaults(values).items()})
    assert message is not None, f"test data: {values} are valid counts"
    with refused_saying(migrated, CHECK_VIOLATION, None, f"INSERT INTO sync_progress {values}"):
        factories.sync_row(migrated, "sync_progress", org_id, **as_columns(_with_defaults(values)))
    written = migrated.execute("SELECT count(*) FROM sync_progress WHERE org_id = %s", (org_id,)).fetchone()[0]
    assert written == 0, f"the refused insert {values} left {written} rows"


@pytest.mark.parametrize("values", VALID)
def test_valid_counts_accepted(migrated: psycopg.Connection, values: dict[str, Any]) -> None:
    """Counts with 0 <= failed <= processed <= total, or total NULL (unknown yet), are accepted as given."""
    row = job(migrated)
    with accepted(migrated, f"UPDATE sync_progress SET {values} on ({counts(row)})"):
        row = update(migrated, row["id"], **values)
    found = {column: row[column] for column in values}
    assert found == values, f"expected the counts {values} stored, found {found}"


# --- update_sync_progress_timestamp() --------------------------------------------------


def test_updated_at_advances_on_every_update(migrated: psycopg.Connection) -> None:
    """Each update moves updated_at strictly forward, even two updates in one transaction."""
    row = job(migrated)
    first = update(migrated, row["id"], processed_items=1)["updated_at"]
    second = update(migrated, row["id"], processed_items=2)["updated_at"]
    assert row["updated_at"] < first < second, (
        f"expected updated_at to increase: inserted {row['updated_at']}, then {first}, then {second}"
    )


def test_updated_at_cannot_be_set_backwards(migrated: psycopg.Connection) -> None:
    """An update setting updated_at into the past leaves it no earlier than it was."""
    row = job(migrated)
    previous = update(migrated, row["id"], processed_items=1)["updated_at"]
    found = update(migrated, row["id"], updated_at="2000-01-01")["updated_at"]
    assert found >= previous, f"SET updated_at = '2000-01-01' moved updated_at back from {previous} to {found}"


def test_updated_at_cannot_be_set_ahead(migrated: psycopg.Connection) -> None:
    """An update setting updated_at into the future is overwritten with the time of the update."""
    row = job(migrated)
    found = update(migrated, row["id"], updated_at="2999-01-01")["updated_at"]
    clock = migrated.execute("SELECT clock_timestamp()").fetchone()[0]
    assert found <= clock, f"SET updated_at = '2999-01-01' was kept as {found} (clock {clock})"


# --- auto_log_sync_activity_on_progress_change() ---------------------------------------

FINISHING = [pytest.param("in_progress", status, id=f"in_progress->{status}") for status in FINISHED] + [
    pytest.param("completed", "failed", id="completed->failed"),
]
NOT_FINISHING = (
    [pytest.param("in_progress", {"processed_items": 10, "failed_items": 1}, id="progress counts")]
    + [pytest.param("pending", {"status": status}, id=f"pending->{status}") for status in UNFINISHED]
    + [pytest.param(status, {"status": status}, id=f"{status}->{status}") for status in FINISHED]
    + [pytest.param(status, {"processed_items": 3}, id=f"{status}, progress counts") for status in FINISHED]
)


@pytest.mark.parametrize(("before", "status"), FINISHING)
def test_finishing_writes_one_log_row(migrated: psycopg.Connection, before: str, status: str) -> None:
    """A status change into a finished status writes exactly one sync_complete row describing the job."""
    row = job(migrated, status=before)
    update(migrated, row["id"], status=status)
    found = log_rows(migrated, row["sync_id"])
    assert len(found) == 1, f"{before} -> {status}: expected one audit row, found {len(found)}: {summary(found)}"
    wanted = {
        "org_id": row["org_id"],
        "sync_id": row["sync_id"],
        "user_id": row["initiated_by"],
        "action": "sync_complete",
        "entity_type": row["entity_type"],
        "status": status,
    }
    entry = {field: found[0][field] for field in wanted}
    assert entry == wanted, differences(f"{before} -> {status}: the audit row", wanted, entry)


@pytest.mark.parametrize(("before", "values"), NOT_FINISHING)
def test_other_changes_write_no_log_row(migrated: psycopg.Connection, before: str, values: dict[str, Any]) -> None:
    """Inserting a job, updating its progress, an unfinished status, or the same finished status logs nothing."""
    row = job(migrated, status=before)
    update(migrated, row["id"], **values)
    found = log_rows(migrated, row["sync_id"])
    assert found == [], f"status {before}, SET {values}: expected no audit row, found {len(found)}: {summary(found)}"


def test_user_finishing_own_job_is_logged(migrated: psycopg.Connection) -> None:
    """A user (authenticated, under RLS) finishing their organisation's job gets the audit row written."""
    row = job(migrated, status="in_progress")
    with as_user(migrated, row["initiated_by"]):
        changed = migrated.execute(
            sql.SQL("UPDATE sync_progress SET {} = 'completed' WHERE id = %s").format(sql.Identifier(column("status"))),
            (row["id"],),
        ).rowcount
    assert changed == 1, f"the user updated {changed} rows of their own job, expected 1"
    found = [(entry["user_id"], entry["status"]) for entry in log_rows(migrated, row["sync_id"])]
    assert found == [(row["initiated_by"], "completed")], f"expected one audit row by the user, found {found}"


# --- auto_cleanup_preview_cache() ------------------------------------------------------


def previews(conn: psycopg.Connection) -> dict[uuid.UUID, datetime]:
    return dict(conn.execute("SELECT id, expires_at FROM sync_preview_cache").fetchall())


def test_cleanup_deletes_expired_previews_of_every_organisation(migrated: psycopg.Connection) -> None:
    """Run as service_role, auto_cleanup_preview_cache() deletes exactly the expired previews, of every org."""
    moment = now(migrated)
    for name in ("cleanup-a", "cleanup-b"):
        org_id = factories.organization(migrated, name)
        for expires_at in (moment - timedelta(days=1), moment - timedelta(seconds=1), moment + timedelta(hours=1)):
            factories.sync_row(migrated, "sync_preview_cache", org_id, expires_at=expires_at)
        factories.sync_row(migrated, "sync_preview_cache", org_id)  # default expiry: an hour from now
    before = previews(migrated)
    expired = {row_id for row_id, expires_at in before.items() if expires_at < moment}
    with acting_as(migrated, SERVICE_ROLE):
        removed = migrated.execute("SELECT auto_cleanup_preview_cache()").fetchone()[0]
    remaining = set(previews(migrated))
    assert remaining == set(before) - expired, (
        f"expected the {len(expired)} expired previews deleted and the {len(before) - len(expired)} others kept; "
        f"deleted {len(set(before) - remaining)}, of which {len(expired - remaining)} expired"
    )
    assert removed == len(expired), f"expected the function to return {len(expired)} (rows deleted), found {removed}"


@pytest.mark.parametrize("role", [ANON, AUTHENTICATED])
def test_api_roles_cannot_run_cleanup(migrated: psycopg.Connection, role: str) -> None:
    """anon and authenticated are refused EXECUTE on auto_cleanup_preview_cache() (42501); nothing is deleted."""
    org_id = factories.organization(migrated, "cleanup")
    user_id = factories.user(migrated, org_id) if role == AUTHENTICATED else None
    expired = factories.sync_row(migrated, "sync_preview_cache", org_id, expires_at=now(migrated) - timedelta(days=1))
    denied = "permission denied for function auto_cleanup_preview_cache"
    with acting_as(migrated, role, user_id):
        with refused_saying(migrated, INSUFFICIENT_PRIVILEGE, denied, f"{role} running auto_cleanup_preview_cache()"):
            migrated.execute("SELECT auto_cleanup_preview_cache()")
    assert expired["id"] in previews(migrated), f"{role}'s refused call deleted the expired preview"


# --- property: random progress keeps the invariants and logs each finish once ------------

STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(("processed_items", "failed_items")), st.integers(-20, 60)),  # by this much
        st.tuples(st.just("total_items"), st.none() | st.integers(-40, 60)),  # NULL, or by this much
        st.tuples(st.just("status"), st.sampled_from(STATUSES)),
    ),
    max_size=15,
)


def next_value(row: dict[str, Any], column: str, change: Any) -> Any:
    """A step's new value: a status as given, NULL total as given, a count moved by `change` (a NULL total from 0)."""
    if column == "status" or change is None:
        return change
    return (row[column] or 0) + change


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=st.none() | st.integers(0, 50), steps=STEPS)
def test_random_progress_keeps_invariants_and_logs_each_finish(
    migrated: psycopg.Connection,
    total: int | None,
    steps: list[tuple[str, Any]],
) -> None:
    """Random progress updates: invalid ones refused unchanged (23514), the row always valid, one log per finish."""
    with migrated.transaction(force_rollback=True):
        row = job(migrated, status="in_progress", total_items=total, started_at=now(migrated) - timedelta(seconds=30))
        finishes = 0
        for number, (column, change) in enumerate(steps, 1):
            before = stored(migrated, row["id"])
            value = next_value(before, column, change)
            attempt = f"step {number}: SET {column} = {value} on ({counts(before)}, status {before['status']})"
            new_counts = {c.removesuffix("_items"): before[c] for c in COUNTS}
            if column in COUNTS:
                new_counts[column.removesuffix("_items")] = value
            message = refusal(**new_counts)
            if message is not None:
                with refused_saying(migrated, CHECK_VIOLATION, None, attempt):
                    update(migrated, row["id"], **{column: value})
                after = stored(migrated, row["id"])
                assert after == before, differences(f"{attempt}: row after the refusal", before, after)
            else:
                with accepted(migrated, attempt):
                    after = update(migrated, row["id"], **{column: value})
                assert after[column] == value, f"{attempt}: expected {column} {value} stored, found {after[column]}"
                if column == "status" and value in FINISHED and value != before["status"]:
                    finishes += 1
            total_after, processed, failed = (after[c] for c in COUNTS)
            assert 0 <= failed <= processed and (total_after is None or processed <= total_after), (
                f"{attempt}: stored counts ({counts(after)}) break 0 <= failed <= processed <= total"
            )
            assert seconds(after["elapsed_seconds"]) is not None and seconds(after["elapsed_seconds"]) >= 0, (
                f"{attempt}: expected elapsed_seconds >= 0, found {after['elapsed_seconds']}"
            )
            assert after["status"] not in FINISHED or after["completed_at"] is not None, (
                f"{attempt}: status {after['status']} is finished but completed_at is NULL"
            )
            assert after["updated_at"] >= before["updated_at"], (
                f"{attempt}: updated_at went back from {before['updated_at']} to {after['updated_at']}"
            )
        logged = len(log_rows(migrated, row["sync_id"]))
        assert logged == finishes, (
            f"after {len(steps)} steps with {finishes} transitions into a finished status, found {logged} audit rows"
        )
