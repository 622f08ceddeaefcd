"""Task 4, Trigger Function Validation: the 5 functions and the events they fire on, then what each one does.

What each function must do is the report's table (section 4), read at its minimum: elapsed time and
speed follow the job's start, its completion and its progress in whatever unit the migration stores
them (found by proportion); negative counts and more processed than total are refused; updated_at is
the time of the update; finishing a job writes an audit row for it that its organisation alone reads;
the cleanup deletes the expired previews of every organisation and nothing else. The rest (which
statuses log, with which label, who stamps completed_at, the counter model, the trigger order, the
SQLSTATE of a refusal) is the migration's choice: our own choices are design checks, listed when they
differ. The checks act on sync_progress rows inside the test's transaction (now() is its start).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import dict_row

from readiness.acting import factories, keys
from readiness.acting.auth import acting_as, as_user, attempt
from readiness.report.messages import differences
from readiness.schema import catalog, column_roles, design, expected
from readiness.schema.expected import ANON, AUTHENTICATED, SERVICE_ROLE
from readiness.verdicts import blocked

pytestmark = [pytest.mark.readiness, pytest.mark.task(4)]

CHECK_VIOLATION = "23514"
STATUSES = expected.ENUMS["sync_status_type"]
FINISHED = expected.FINISHED_STATUSES
UNFINISHED = tuple(status for status in STATUSES if status not in FINISHED)
# The tests' names for the sync_progress columns the report's functions work on, and the role each plays:
# the migration under test names them as it likes (readiness.schema.column_roles resolves them from its catalog).
ROLE_OF = {"status": "status", "total": "total", "processed": "processed", "failed": "failed",
           "elapsed": "elapsed", "speed": "speed"}  # fmt: skip
COUNTS = ("total", "processed", "failed")


def now(conn: psycopg.Connection) -> datetime:
    """The transaction's now(): what the trigger functions read."""
    return conn.execute("SELECT now()").fetchone()[0]


def clock(conn: psycopg.Connection) -> datetime:
    """The server's clock now: no trigger can have read a later time."""
    return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def seconds(value: Any) -> float | None:
    """A number, or an interval in seconds; NULL as None."""
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def tolerance(type_name: str, value: float) -> float:
    """How far a stored value may be from the exact one: the rounding of its column's type."""
    scale = 0 if type_name in ("integer", "bigint", "smallint") else None
    if type_name.startswith("numeric(") and "," in type_name:
        scale = int(type_name.split(",")[1].rstrip(")"))
    return (0.5 * 10**-scale if scale is not None else 0.0) + 1e-9 * abs(value)


@dataclass
class Jobs:
    """sync_progress rows of the migration under test, named by role (its column names are its own)."""

    conn: psycopg.Connection
    columns: column_roles.Columns

    def column(self, name: str) -> str:
        """The migration's column for the tests' `name` (a role), or `name` itself (a column the report names)."""
        return self.columns[("sync_progress", ROLE_OF[name])] if name in ROLE_OF else name

    def has(self, name: str) -> bool:
        return self.columns.get("sync_progress", ROLE_OF[name]) is not None

    def type_of(self, name: str) -> str:
        return catalog.columns(self.conn, "sync_progress")[self.column(name)].type

    def named(self, row: dict[str, Any]) -> dict[str, Any]:
        """A stored row with the tests' names for the role columns."""
        names = {self.column(name): name for name in ROLE_OF if self.has(name)}
        return {names.get(key, key): value for key, value in row.items()}

    def as_columns(self, values: dict[str, Any]) -> dict[str, Any]:
        """`values` by the migration's column names; a count it does not keep (failed) left out, a role the
        report requires that cannot be found BLOCKS the check (readiness.schema.column_roles)."""
        optional = {"failed"}
        return {self.column(name): value for name, value in values.items() if name not in optional or self.has(name)}

    def new(self, org_id: Any | None = None, as_given: bool = False, **values: Any) -> dict[str, Any]:
        """A job (total 100, and a sync_id of its type, unless given) of a new organisation, by one of its users;
        `as_given`: PostgreSQL's refusal of it raised as it is."""
        org_id = org_id or factories.organization(self.conn, "triggers")
        values = {"total": 100, "sync_id": factories.fresh_value_of(self.conn, "sync_progress", "sync_id"), **values}
        row = factories.sync_row(self.conn, "sync_progress", org_id, factories.user(self.conn, org_id),
                                 as_given=as_given, **self.as_columns(values))  # fmt: skip
        return self.named(row)

    def key(self, row: dict[str, Any]) -> keys.Key:
        return tuple(row[column] for column in keys.columns(self.conn, "sync_progress"))

    def require(self, values: dict[str, Any]) -> None:
        """N/A when `values` name a count this migration does not have (only `failed` may be missing)."""
        for name in values:
            if name in ROLE_OF:
                self.column(name)

    def update(self, row: dict[str, Any], **values: Any) -> dict[str, Any]:
        """UPDATE sync_progress SET `values` on the job; the row as stored afterwards."""
        values = self.as_columns(values)
        key = self.key(row)
        query = sql.SQL("UPDATE sync_progress SET {} WHERE {} RETURNING *").format(
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in values),
            keys.where(self.conn, "sync_progress", key),
        )
        with self.conn.cursor(row_factory=dict_row) as cur:
            stored = cur.execute(query, [*values.values(), *key]).fetchone()
        assert stored is not None, f"UPDATE of the sync_progress row {key} found no row to update"
        return self.named(stored)

    def stored(self, row: dict[str, Any]) -> dict[str, Any]:
        key = self.key(row)
        query = sql.SQL("SELECT * FROM sync_progress WHERE {}").format(keys.where(self.conn, "sync_progress", key))
        with self.conn.cursor(row_factory=dict_row) as cur:
            found = cur.execute(query, key).fetchone()
        assert found is not None, f"the sync_progress row {key} has disappeared"
        return self.named(found)

    def counts(self, row: dict[str, Any]) -> str:
        """The row's counts in the migration's own column names."""
        return ", ".join(f"{self.column(name)} {row[name]}" for name in COUNTS if self.has(name))

    def log(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The audit rows of the job (its sync_id), read as the owner."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                "SELECT * FROM sync_activity_log WHERE sync_id = %s AND org_id = %s", (row["sync_id"], row["org_id"])
            ).fetchall()


@pytest.fixture
def jobs(migrated: psycopg.Connection, columns: column_roles.Columns) -> Jobs:
    """Jobs of the migration under test, acted on by role."""
    return Jobs(migrated, columns)


# --- the elapsed time's unit and the speed's, found by proportion ------------------------------------------


@dataclass(frozen=True)
class Units:
    """How the migration stores time and speed: elapsed units per second, and speed per (item per second)."""

    elapsed: float  # 1 for seconds, 1000 for milliseconds, 1/60 for minutes; an interval is read in seconds
    speed: float  # the stored speed of one item per second
    elapsed_type: str
    speed_type: str

    def describe(self) -> str:
        unit = {1.0: "seconds", 1000.0: "milliseconds", 1 / 60: "minutes", 1e6: "microseconds"}
        elapsed = "an interval" if self.elapsed_type == "interval" else unit.get(self.elapsed, f"{self.elapsed}/s")
        return f"elapsed in {elapsed}, speed in items per {unit.get(1 / self.speed, f'{1 / self.speed} s')}"


# A job finished 60 s after its start with 120 items, then one finished 30 s after with 30: clean values in
# seconds, milliseconds and minutes alike.
PROBES = ((60, 120), (30, 30))


def finished_job(jobs: Jobs, duration_s: int, processed: int) -> dict[str, Any]:
    """A job that ran `duration_s` seconds (ending before now) and processed `processed` items; as stored."""
    started = now(jobs.conn) - timedelta(seconds=duration_s + 100)
    row = jobs.new(status="in_progress", started_at=started, total=max(processed, 1) * 2)
    return jobs.update(row, status="completed", completed_at=started + timedelta(seconds=duration_s),
                       processed=processed)  # fmt: skip


def measure(jobs: Jobs, duration_s: int, processed: int) -> tuple[float, float | None, float]:
    """(stored elapsed, stored speed, the duration the row records) of a job finished as given."""
    row = finished_job(jobs, duration_s, processed)
    ran = (row["completed_at"] - row["started_at"]).total_seconds() if row["completed_at"] else float("nan")
    return seconds(row["elapsed"]) or 0.0, seconds(row["speed"]), ran


def find_units(jobs: Jobs) -> tuple[Units | None, str]:
    """The units, from a finished job, checked on another; (None, why) when elapsed or speed is not proportional."""
    (duration, processed), (duration_2, processed_2) = PROBES
    elapsed, speed, ran = measure(jobs, duration, processed)
    elapsed_col, speed_col = jobs.column("elapsed"), jobs.column("speed")
    if not ran > 0 or not elapsed > 0:
        return None, (f"a job finished after {duration} s with {processed} items stored {elapsed_col} = {elapsed}, "
                      f"for a completed_at - started_at of {ran} s")  # fmt: skip
    if speed is None or not speed > 0:
        return None, f"a job finished after {ran:g} s with {processed} items stored {speed_col} = {speed}"
    units = Units(elapsed / ran, speed * ran / processed, jobs.type_of("elapsed"), jobs.type_of("speed"))
    elapsed_2, speed_2, ran_2 = measure(jobs, duration_2, processed_2)
    wanted = (units.elapsed * ran_2, units.speed * processed_2 / ran_2)
    if (
        abs(elapsed_2 - wanted[0]) > tolerance(units.elapsed_type, wanted[0])
        or speed_2 is None
        or (abs(speed_2 - wanted[1]) > tolerance(units.speed_type, wanted[1]))
    ):
        return None, (
            f"{elapsed_col} and {speed_col} are not proportional to the job's duration and items: {ran:g} s and "
            f"{processed} items stored {elapsed:g} and {speed:g}, so {ran_2:g} s and {processed_2} items should store "
            f"{wanted[0]:g} and {wanted[1]:g}; found {elapsed_2:g} and {speed_2}"
        )
    return units, units.describe()


@pytest.fixture
def units(jobs: Jobs, record) -> Units:
    """The migration's units of elapsed time and speed; the checks needing them are BLOCKED when none fits."""
    with jobs.conn.transaction(force_rollback=True):
        found, how = find_units(jobs)
    if found is None:
        blocked(unit_fault(how))  # the same words as test_elapsed_and_speed_follow_the_job's: one cause
    return found


def unit_fault(how: str) -> str:
    """Why no unit of elapsed time and speed fits the migration."""
    return f"update_sync_progress_elapsed() (report, section 4: 'Calculate elapsed time and speed'): {how}"


# --- catalog ---------------------------------------------------------------------------


@pytest.mark.enforces("report.functions")
@pytest.mark.existence("functions")
def test_functions_exist(migrated: psycopg.Connection, record) -> None:
    """The report's 5 functions exist in public; the 4 with a trigger event return trigger."""
    found = catalog.functions(migrated)
    for name, ours in design.FUNCTIONS.items():
        if name in found and found[name] != ours:
            record.differ(f"function {name}", ours, found[name])
    missing = [name for name in expected.FUNCTION_NAMES if name not in found]
    assert missing == [], f"functions missing from public: {', '.join(missing)}"
    triggers = {trigger.function.removeprefix("public.") for trigger in expected.CONTRACT_TRIGGERS}
    wrong = {name: found[name].returns for name in triggers if found[name].returns != "trigger"}
    assert wrong == {}, f"trigger functions that do not return trigger: {wrong}"


@pytest.mark.enforces("report.trigger-events")
def test_each_function_fires_on_its_event(migrated: psycopg.Connection, record) -> None:
    """Each trigger function fires on sync_progress per row, at its timing and on (at least) its events:
    BEFORE INSERT/UPDATE, BEFORE UPDATE or AFTER UPDATE."""
    found = catalog.triggers(migrated, "sync_progress")
    if found != design.TRIGGERS:
        record.differ(
            "triggers on sync_progress",
            "; ".join(f"{name}: {trigger}" for name, trigger in design.TRIGGERS.items()),
            "; ".join(f"{name}: {trigger}" for name, trigger in found.items()),
        )
    missing = []
    for wanted in sorted(expected.CONTRACT_TRIGGERS, key=str):
        events = set().union(*(t.events for t in found.values() if (t.function, t.timing, t.level, t.enabled) ==
                               (wanted.function, wanted.timing, "ROW", "O")))  # fmt: skip
        if not wanted.events <= events:
            missing.append(str(wanted))
    assert missing == [], f"no enabled row trigger on sync_progress for: {'; '.join(missing)}. Found: " + (
        "; ".join(f"{name}: {trigger}" for name, trigger in found.items()) or "no trigger"
    )


@pytest.mark.enforces("design.trigger-order")
def test_before_update_triggers_fire_in_order(migrated: psycopg.Connection) -> None:
    """The BEFORE UPDATE triggers, fired by name, run elapsed, then timestamp, then validate_totals."""
    found = tuple(
        trigger.function
        for _, trigger in sorted(catalog.triggers(migrated, "sync_progress").items())
        if trigger.timing == "BEFORE" and "UPDATE" in trigger.events
    )
    assert found == design.BEFORE_UPDATE_ORDER, (
        f"the BEFORE UPDATE triggers on sync_progress fire {', '.join(found)}; ours fire "
        f"{', '.join(design.BEFORE_UPDATE_ORDER)}"
    )


# --- update_sync_progress_elapsed() ----------------------------------------------------


@pytest.mark.enforces("report.elapsed")
def test_elapsed_and_speed_follow_the_job(jobs: Jobs, record) -> None:
    """A finished job's elapsed time is proportional to completed_at - started_at and its speed to the items
    processed per second, in whatever units the migration stores them (found from one job, checked on another)."""
    found, how = find_units(jobs)
    record.measure("sync_progress units (found by proportion)", how)
    assert found is not None, unit_fault(how)


@pytest.mark.enforces("report.elapsed")
def test_running_job_measured_to_now(jobs: Jobs, units: Units) -> None:
    """A running job started 10 s ago is measured to now: elapsed 10 s (in the migration's unit)."""
    row = jobs.new(status="in_progress", started_at=now(jobs.conn) - timedelta(seconds=10), processed=50)
    found = seconds(row["elapsed"])
    low, high = 10 * units.elapsed, (clock(jobs.conn) - row["started_at"]).total_seconds() * units.elapsed
    slack = tolerance(units.elapsed_type, high)
    assert found is not None and low - slack <= found <= high + slack, (
        f"a job started 10 s ago ({units.describe()}): expected {jobs.column('elapsed')} between {low:g} and "
        f"{high:g}, found {found}"
    )


@pytest.mark.enforces("report.elapsed")
def test_elapsed_and_speed_recomputed_on_update(jobs: Jobs, units: Units) -> None:
    """Updating a finished job's progress recomputes its speed; updating a running job's start, its elapsed time."""
    row = jobs.update(finished_job(jobs, 60, 120), processed=180)
    ran = (row["completed_at"] - row["started_at"]).total_seconds()  # a trigger may have stamped its own end
    wanted = units.speed * 180 / ran
    found = seconds(row["speed"])
    assert found is not None and abs(found - wanted) <= tolerance(units.speed_type, wanted), (
        f"a job finished in {ran:g} s, its items raised from 120 to 180: expected {jobs.column('speed')} "
        f"{wanted:g}, found {found}"
    )
    row = jobs.new(status="in_progress", started_at=now(jobs.conn) - timedelta(seconds=10))
    row = jobs.update(row, started_at=now(jobs.conn) - timedelta(seconds=40))
    found = seconds(row["elapsed"])
    low, high = 40 * units.elapsed, (clock(jobs.conn) - row["started_at"]).total_seconds() * units.elapsed
    assert found is not None and low - tolerance(units.elapsed_type, high) <= found, (
        f"a running job whose start moved back to 40 s ago: expected {jobs.column('elapsed')} of about {low:g}, "
        f"found {found}"
    )


@pytest.mark.enforces("design.speed")
def test_elapsed_and_speed_as_ours(jobs: Jobs, units: Units) -> None:
    """As ours: elapsed in seconds, speed in items per second, NULL speed and 0 elapsed for a job started now
    or ahead of the server's clock."""
    started_now = jobs.new(processed=10)
    ahead = jobs.new(started_at=now(jobs.conn) + timedelta(seconds=5), processed=10)
    found = (units.elapsed, units.speed, seconds(started_now["speed"]), seconds(ahead["elapsed"]))
    assert found == (1.0, 1.0, None, 0.0), (
        f"ours: seconds, items per second, a speed of NULL and an elapsed of 0 for a job started now or ahead; "
        f"this migration: {units.describe()}, {jobs.column('speed')} {found[2]} for a job started now, "
        f"{jobs.column('elapsed')} {found[3]} for one started 5 s ahead"
    )


@pytest.mark.enforces("design.completed-at")
@pytest.mark.parametrize("status", STATUSES)
def test_completed_at_stamped_when_finished(jobs: Jobs, status: str) -> None:
    """Moving a running job to a finished status stamps completed_at with now(); other statuses leave it NULL."""
    row = jobs.new(status="in_progress", started_at=now(jobs.conn) - timedelta(seconds=10))
    row = jobs.update(row, status=status)
    wanted = now(jobs.conn) if status in FINISHED else None
    assert row["completed_at"] == wanted, (
        f"in_progress -> {status}: ours stamps completed_at {wanted}, this migration has {row['completed_at']}"
    )


@pytest.mark.enforces("design.completed-at")
@pytest.mark.parametrize("resumed", UNFINISHED)
def test_resumed_job_is_active_again(jobs: Jobs, resumed: str) -> None:
    """A finished job moved back to an unfinished status loses completed_at (active again)."""
    started = now(jobs.conn) - timedelta(seconds=30)
    row = jobs.new(status="failed", started_at=started, completed_at=started + timedelta(seconds=5))
    row = jobs.update(row, status=resumed)
    assert row["completed_at"] is None, f"failed -> {resumed}: ours clears completed_at, this migration keeps it"


# --- validate_sync_progress_totals() ---------------------------------------------------

# Refused by every reading of the report: a negative count, more processed than total.
INVALID = [
    pytest.param({"processed": -1}, id="negative processed"),
    pytest.param({"failed": -1}, id="negative failed"),
    pytest.param({"total": -1}, id="negative total"),
    pytest.param({"processed": 101}, id="processed over total"),
]
# Accepted by every reading: nothing failed, or few, well within the total.
VALID = [
    pytest.param({"processed": 60, "failed": 5}, id="part processed"),
    pytest.param({"processed": 100, "failed": 0}, id="all processed"),
    pytest.param({"processed": 0, "failed": 0}, id="nothing processed yet"),
    pytest.param({"total": 0, "processed": 0, "failed": 0}, id="nothing to do"),
]
# Our counter model: failed items are among the processed, and an unknown total is NULL.
OURS_REFUSED = [pytest.param({"processed": 5, "failed": 6}, id="failed over processed")]
OURS_ACCEPTED = [
    pytest.param({"processed": 100, "failed": 100}, id="all processed, all failed"),
    pytest.param({"total": None, "processed": 500, "failed": 7}, id="unknown total"),
]


def with_defaults(values: dict[str, Any]) -> dict[str, Any]:
    return {"total": 100, "processed": 0, "failed": 0, **values}


def refused_unchanged(jobs: Jobs, values: dict[str, Any]) -> str | None:
    """UPDATE a job to `values`: None when refused and the row kept as it was, else what happened."""
    jobs.require(values)
    row = jobs.new()
    error = attempt(jobs.conn, lambda: jobs.update(row, **values))
    after = jobs.stored(row)
    if error is None:
        return f"UPDATE sync_progress SET {jobs.as_columns(values)} on ({jobs.counts(row)}) was accepted"
    if after != row:
        return f"refused ({error.sqlstate}), but the row changed: " + differences("the row", row, after)
    return None


@pytest.mark.enforces("report.totals")
@pytest.mark.parametrize("values", INVALID)
def test_invalid_counts_refused_on_update(jobs: Jobs, values: dict[str, Any]) -> None:
    """An update to a negative count, or to more processed than total, is refused; the row stays as it was."""
    problem = refused_unchanged(jobs, values)
    assert problem is None, problem


@pytest.mark.enforces("report.totals")
@pytest.mark.parametrize("values", INVALID)
def test_invalid_counts_refused_on_insert(jobs: Jobs, values: dict[str, Any]) -> None:
    """An insert with a negative count, or more processed than total, is refused; no row is written."""
    jobs.require(values)
    org_id = factories.organization(jobs.conn, "triggers")
    error = attempt(jobs.conn, lambda: jobs.new(org_id, as_given=True, **with_defaults(values)))
    written = jobs.conn.execute("SELECT count(*) FROM sync_progress WHERE org_id = %s", (org_id,)).fetchone()[0]
    assert error is not None and written == 0, (
        f"INSERT INTO sync_progress with {jobs.as_columns(with_defaults(values))}: "
        + ("accepted" if error is None else f"refused ({error.sqlstate}), but {written} rows were written")
    )


@pytest.mark.enforces("report.totals")
@pytest.mark.parametrize("values", VALID)
def test_valid_counts_accepted(jobs: Jobs, values: dict[str, Any]) -> None:
    """Counts well within the total, with few or no failures, are accepted and stored as given."""
    row = jobs.new()
    error = attempt(jobs.conn, lambda: jobs.update(row, **values))
    assert error is None, (
        f"UPDATE sync_progress SET {jobs.as_columns(values)} on ({jobs.counts(row)}): refused, {error.sqlstate} "
        f"{error.diag.message_primary}"
    )
    stored = jobs.stored(row)
    found = {name: stored[name] for name in values if jobs.has(name)}
    assert found == {name: v for name, v in values.items() if jobs.has(name)}, (
        f"expected the counts {jobs.as_columns(values)} stored, found {jobs.as_columns(found)}"
    )


@pytest.mark.enforces("design.counters")
@pytest.mark.parametrize("values", OURS_REFUSED)
def test_counts_our_model_refuses(jobs: Jobs, values: dict[str, Any]) -> None:
    """As ours: failed items beyond the processed are refused with check_violation (23514)."""
    jobs.require(values)
    row = jobs.new()
    error = attempt(jobs.conn, lambda: jobs.update(row, **values))
    found = f"refused with {error.sqlstate}" if error else "accepted"
    assert error is not None and error.sqlstate == CHECK_VIOLATION, (
        f"SET {jobs.as_columns(values)}: ours refuses with 23514, this migration: {found}"
    )


@pytest.mark.enforces("design.counters")
@pytest.mark.parametrize("values", OURS_ACCEPTED)
def test_counts_our_model_accepts(jobs: Jobs, values: dict[str, Any]) -> None:
    """As ours: every item failed is valid, and the total may be NULL while unknown."""
    jobs.require(values)
    row = jobs.new()
    error = attempt(jobs.conn, lambda: jobs.update(row, **values))
    assert error is None, (
        f"SET {jobs.as_columns(values)}: ours accepts, this migration refuses ({error.sqlstate} "
        f"{error.diag.message_primary})"
    )


# --- update_sync_progress_timestamp() --------------------------------------------------


def within_update(jobs: Jobs, stored: datetime) -> bool:
    """Whether a stored updated_at is a time of the update: not before the transaction began, not after now."""
    return now(jobs.conn) <= stored <= clock(jobs.conn)


@pytest.mark.enforces("report.updated-at")
@pytest.mark.parametrize("written", [None, "2000-01-01", "2999-01-01"], ids=["not set", "set back", "set ahead"])
def test_updated_at_is_the_time_of_the_update(jobs: Jobs, written: str | None) -> None:
    """Each update sets updated_at to the time of the update, whatever the UPDATE wrote into it."""
    row = jobs.new(updated_at=now(jobs.conn) - timedelta(hours=1))  # last updated before this transaction
    values = {"processed": 1} if written is None else {"updated_at": written}
    found = jobs.update(row, **values)["updated_at"]
    assert within_update(jobs, found), (
        f"UPDATE sync_progress SET {jobs.as_columns(values)}: updated_at is {found}, not a time of the update "
        f"(between the transaction's start {now(jobs.conn)} and the clock)"
    )


@pytest.mark.enforces("design.updated-at")
def test_updated_at_advances_on_every_update(jobs: Jobs) -> None:
    """As ours: each update moves updated_at strictly forward, even two updates in one transaction."""
    row = jobs.new()
    first = jobs.update(row, processed=1)["updated_at"]
    second = jobs.update(row, processed=2)["updated_at"]
    assert row["updated_at"] < first < second, (
        f"ours increases updated_at with every update; here: inserted {row['updated_at']}, then {first}, then {second}"
    )


# --- auto_log_sync_activity_on_progress_change() ---------------------------------------


def finish(jobs: Jobs, row: dict[str, Any], status: str) -> dict[str, Any]:
    """Move the job to `status`, with completed_at as an application finishing a job would set it."""
    return jobs.update(row, status=status, completed_at=now(jobs.conn))


@pytest.mark.enforces("report.audit")
@pytest.mark.uses("sync_activity_log")
@pytest.mark.parametrize("status", FINISHED)
def test_finishing_writes_an_audit_row_its_organisation_alone_reads(jobs: Jobs, status: str) -> None:
    """Finishing a job writes at least one audit row for it (its sync_id, its organisation), which a user of its
    organisation reads and a user of another organisation does not."""
    row = jobs.new(status="in_progress")
    before = {json.dumps(entry, default=str, sort_keys=True) for entry in jobs.log(row)}
    finish(jobs, row, status)
    new = [entry for entry in jobs.log(row) if json.dumps(entry, default=str, sort_keys=True) not in before]
    assert new, f"in_progress -> {status}: no audit row in sync_activity_log for the job's sync_id and organisation"
    member, other = row["initiated_by"], factories.user(jobs.conn, factories.organization(jobs.conn, "other"))
    seen = {}
    for who, user_id in (("its organisation", member), ("another organisation", other)):
        with as_user(jobs.conn, user_id):
            seen[who] = len(jobs.log(row))
    assert seen == {"its organisation": len(before) + len(new), "another organisation": 0}, (
        f"in_progress -> {status}: audit rows of the job seen by a user of {seen}; expected all "
        f"{len(before) + len(new)} by its organisation and none by another"
    )


@pytest.mark.enforces("report.audit")
@pytest.mark.uses("sync_activity_log")
def test_user_finishing_own_job_is_audited(jobs: Jobs) -> None:
    """A user (authenticated, under RLS) finishing their organisation's job gets its audit row written."""
    row = jobs.new(status="in_progress")
    status = sql.Identifier(jobs.column("status"))
    with as_user(jobs.conn, row["initiated_by"]):
        update = sql.SQL("UPDATE sync_progress SET {} = 'completed', completed_at = now() WHERE {}").format(
            status, keys.where(jobs.conn, "sync_progress", jobs.key(row))
        )
        error = attempt(jobs.conn, lambda: jobs.conn.execute(update, jobs.key(row)))
    assert error is None, (
        f"a user finishing their own job was refused: {error.sqlstate} {error.diag.message_primary} (the audit "
        "trigger must write its row whoever finishes the job)"
    )
    assert jobs.log(row), "a user finished their own job and no audit row was written for it"


DESIGN_FINISHING = [pytest.param("in_progress", status, id=f"in_progress->{status}") for status in FINISHED] + [
    pytest.param("completed", "failed", id="completed->failed"),
]
DESIGN_NOT_FINISHING = (
    [pytest.param("in_progress", {"processed": 10}, id="progress counts")]
    + [pytest.param("pending", {"status": status}, id=f"pending->{status}") for status in UNFINISHED]
    + [pytest.param(status, {"status": status}, id=f"{status}->{status}") for status in FINISHED]
)


@pytest.mark.enforces("design.audit")
@pytest.mark.parametrize(("before", "status"), DESIGN_FINISHING)
def test_finishing_writes_one_sync_complete_row(jobs: Jobs, before: str, status: str) -> None:
    """As ours: a change into a finished status writes exactly one sync_complete row describing the job."""
    row = jobs.new(status=before)
    jobs.update(row, status=status)
    found = jobs.log(row)
    wanted = {"user_id": row["initiated_by"], "action": "sync_complete", "entity_type": row["entity_type"],
              "status": status}  # fmt: skip
    entries = [{field: entry[field] for field in wanted} for entry in found]
    assert entries == [wanted], f"{before} -> {status}: ours writes [{wanted}]; this migration wrote {entries}"


@pytest.mark.enforces("design.audit")
@pytest.mark.parametrize(("before", "values"), DESIGN_NOT_FINISHING)
def test_other_changes_write_no_audit_row(jobs: Jobs, before: str, values: dict[str, Any]) -> None:
    """As ours: progress, an unfinished status, or the same finished status again logs nothing."""
    row = jobs.new(status=before)
    jobs.update(row, **values)
    found = [f"{entry['action']} {entry['status']}" for entry in jobs.log(row)]
    assert found == [], f"status {before}, SET {jobs.as_columns(values)}: ours logs nothing, this migration {found}"


# --- auto_cleanup_preview_cache() ------------------------------------------------------


def previews(conn: psycopg.Connection) -> dict[keys.Key, datetime]:
    """Every preview's key and expiry, read as the owner."""
    query = sql.SQL("SELECT {}, expires_at FROM sync_preview_cache").format(keys.selected(conn, "sync_preview_cache"))
    return {tuple(row[:-1]): row[-1] for row in conn.execute(query)}


def seed_previews(conn: psycopg.Connection) -> dict[keys.Key, datetime]:
    """Two organisations' previews, expired and not; all previews afterwards."""
    moment = now(conn)
    for name in ("cleanup-a", "cleanup-b"):
        org_id = factories.organization(conn, name)
        for expires_at in (moment - timedelta(days=1), moment - timedelta(seconds=1), moment + timedelta(hours=1)):
            factories.sync_row(conn, "sync_preview_cache", org_id, expires_at=expires_at)
    return previews(conn)


@pytest.mark.enforces("report.cleanup")
def test_cleanup_deletes_expired_previews_of_every_organisation(migrated: psycopg.Connection) -> None:
    """Run manually, auto_cleanup_preview_cache() deletes exactly the expired previews, of every organisation."""
    before = seed_previews(migrated)
    expired = {key for key, expires_at in before.items() if expires_at < now(migrated)}
    migrated.execute("SELECT auto_cleanup_preview_cache()")
    remaining = set(previews(migrated))
    assert remaining == set(before) - expired, (
        f"expected the {len(expired)} expired previews deleted and the {len(before) - len(expired)} others kept; "
        f"deleted {len(set(before) - remaining)}, of which {len(expired - remaining)} expired"
    )


@pytest.mark.enforces("report.cleanup")
@pytest.mark.parametrize("role", [ANON, AUTHENTICATED])
def test_api_roles_delete_no_other_organisations_preview(migrated: psycopg.Connection, role: str) -> None:
    """anon, and a user of another organisation, calling auto_cleanup_preview_cache() delete no organisation's
    preview (refused, or deleting only what RLS lets them)."""
    org_id = factories.organization(migrated, "cleanup")
    expired = factories.sync_row(migrated, "sync_preview_cache", org_id, expires_at=now(migrated) - timedelta(days=1))
    key = keys.of(migrated, "sync_preview_cache", expired)
    caller = factories.user(migrated, factories.organization(migrated, "caller")) if role == AUTHENTICATED else None
    with acting_as(migrated, role, caller):
        error = attempt(migrated, lambda: migrated.execute("SELECT auto_cleanup_preview_cache()"))
    outcome = f"refused ({error.sqlstate})" if error else "accepted"
    assert key in previews(migrated), (
        f"{role} running auto_cleanup_preview_cache() was {outcome} and deleted another organisation's preview"
    )


@pytest.mark.enforces("design.cleanup")
def test_cleanup_as_ours(migrated: psycopg.Connection) -> None:
    """As ours: service_role may run the cleanup, and it returns how many previews it deleted."""
    migrated.execute("SELECT auto_cleanup_preview_cache()")  # what expired before the test is gone
    expired = sum(1 for expires_at in seed_previews(migrated).values() if expires_at < now(migrated))
    returned: list[Any] = []
    with acting_as(migrated, SERVICE_ROLE):
        error = attempt(migrated, lambda: returned.extend(migrated.execute("SELECT auto_cleanup_preview_cache()")))
    found = f"refused ({error.sqlstate} {error.diag.message_primary})" if error else f"returned {returned}"
    assert returned == [(expired,)], f"ours, run by service_role, returns {expired} (the previews deleted); {found}"


# --- property: random progress keeps the report's invariants and audits each finish ------------

STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(("processed", "failed")), st.integers(-20, 60)),  # by this much
        st.tuples(st.just("total"), st.integers(-40, 60)),  # by this much
        st.tuples(st.just("status"), st.sampled_from(STATUSES)),
    ),
    max_size=15,
)


def valid_everywhere(total: int, processed: int, failed: int) -> bool:
    """Counts every reading of the report accepts: none negative, failed among processed, within the total."""
    return 0 <= failed <= processed and processed + failed <= total


def invalid_everywhere(total: int, processed: int, failed: int) -> bool:
    """Counts every reading refuses: a negative one, or more processed than total."""
    return min(total, processed, failed) < 0 or processed > total


@pytest.mark.enforces("report.totals")
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=st.integers(0, 50), steps=STEPS)
def test_random_progress_keeps_the_invariants_and_audits_each_finish(
    jobs: Jobs, total: int, steps: list[tuple[str, Any]]
) -> None:
    """Random progress: counts every reading refuses are refused unchanged, those every reading accepts are
    stored, the row never holds a negative count or more processed than total, and every finish is audited."""
    with jobs.conn.transaction(force_rollback=True):
        row = jobs.new(status="in_progress", total=total, started_at=now(jobs.conn) - timedelta(seconds=30))
        finishes = 0
        for number, (name, change) in enumerate(steps, 1):
            if name == "failed" and not jobs.has("failed"):
                continue
            before = jobs.stored(row)
            value = change if name == "status" else (before.get(name) or 0) + change
            attempted = f"step {number}: SET {jobs.column(name)} = {value} on ({jobs.counts(before)})"
            counts = {c: (value if c == name else before.get(c) or 0) for c in COUNTS}
            error = attempt(jobs.conn, lambda: jobs.update(before, **{name: value}))  # noqa: B023
            after = jobs.stored(row)
            if name != "status" and invalid_everywhere(counts["total"], counts["processed"], counts["failed"]):
                assert error is not None and after == before, f"{attempted}: accepted, or the row changed"
            elif name != "status" and valid_everywhere(counts["total"], counts["processed"], counts["failed"]):
                assert error is None and after[name] == value, f"{attempted}: refused ({error and error.sqlstate})"
            elif name == "status" and before["status"] not in FINISHED:
                assert error is None, f"{attempted}: a job that has not finished may move to any status"
            if error is None and name == "status" and value in FINISHED and before["status"] not in FINISHED:
                finishes += 1
            stored = [after.get(c) for c in COUNTS if jobs.has(c)]
            assert min(stored) >= 0 and after["processed"] <= after["total"], (
                f"{attempted}: the row holds ({jobs.counts(after)}): a negative count or more processed than total"
            )
        logged = len(jobs.log(row))
        assert logged >= finishes, f"after {finishes} finishes of the job, {logged} audit rows for it"
