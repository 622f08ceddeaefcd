"""The lock budget on a target: the run holds no lock that stalls the application's row writes, but for short,
bounded, counted moments.

A moment is one transaction on the target that takes a lock conflicting with ROW EXCLUSIVE on a table that
existed before 0024 (applying the file takes SHARE ROW EXCLUSIVE on organization and auth.users_extended
with its keys; its rollback, ACCESS EXCLUSIVE on the sync tables). Each waits for its lock at most a quarter
of the budget (lock_timeout), so the application's writes queue behind it no longer than that; the whole
transaction is cancelled if it outlives the budget; a lock not had is tried again after a back-off, a few
times; a moment never had is "could not be checked on the target without stalling it", never a stall. The
file's own SET lock_timeout and statement_timeout give way to the budget there. Every moment is announced
(readiness.postgres.interrupt.LOCK_MOMENT) while its locks are held, and counted in the sign-off per table.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from readiness.postgres import interrupt
from readiness.rules.locks import LOCK_MODES
from readiness.schema.apply import ApplyError, apply_file

LOCK_NOT_AVAILABLE, QUERY_CANCELED = "55P03", "57014"
BACK_OFF_S = (0.2, 0.5, 1.0)  # waits before the second, third and fourth attempts
DEFAULT_BUDGET_MS = 1000
# Relations this backend holds locks on, in modes that conflict with ROW EXCLUSIVE (an application's writes).
HELD = """
SELECT l.relation::int8, l.mode FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted AND l.mode = ANY (%s)
"""
STALLING_MODES = list(LOCK_MODES[LOCK_MODES.index("ShareLock") :])
EXISTING_TABLES = "SELECT oid::int8, oid::regclass::text FROM pg_class WHERE relkind IN ('r', 'p')"


@dataclass
class Moment:
    """One transaction on the target that held locks stalling writes: what, on which tables, for how long."""

    what: str
    tables: dict[str, str]  # table -> the strongest stalling mode held
    held_ms: float
    attempt: int

    def __str__(self) -> str:
        tables = ", ".join(f"{table} {mode}" for table, mode in sorted(self.tables.items())) or "no table"
        return f"{self.what}: {tables}, {self.held_ms:.0f} ms (attempt {self.attempt})"


@dataclass
class Outcome:
    """What a budgeted dry run on the target found: it ran (error None), it failed (error), or it never had its
    locks within the budget (stalled names why)."""

    error: ApplyError | None = None
    stalled: str | None = None
    moment: Moment | None = None


@dataclass
class LockBudget:
    """The longest a moment may hold stalling locks, and the moments the run took."""

    budget_ms: int = DEFAULT_BUDGET_MS
    moments: list[Moment] = field(default_factory=list)

    def per_table(self) -> dict[str, tuple[int, float]]:
        """table -> (moments, longest ms)."""
        found: dict[str, tuple[int, float]] = {}
        for moment in self.moments:
            for table in moment.tables:
                count, longest = found.get(table, (0, 0.0))
                found[table] = (count + 1, max(longest, moment.held_ms))
        return found

    def summary(self) -> str:
        per_table = self.per_table()
        if not per_table:
            return f"none (budget {self.budget_ms} ms a moment)"
        return "; ".join(f"{table}: {count} moment(s), longest {longest:.0f} ms" for table, (count, longest) in
                         sorted(per_table.items())) + f" (budget {self.budget_ms} ms a moment)"  # fmt: skip

    def as_json(self) -> dict[str, object]:
        return {
            "budget_ms": self.budget_ms,
            "moments": [{"what": m.what, "tables": m.tables, "held_ms": round(m.held_ms, 1), "attempt": m.attempt}
                        for m in self.moments],  # fmt: skip
            "per_table": {table: {"moments": count, "longest_ms": round(longest, 1)}
                          for table, (count, longest) in self.per_table().items()},  # fmt: skip
        }

    def dry_run(self, conn: psycopg.Connection, path: Path, what: str) -> Outcome:
        """Run the SQL file on the target in one transaction, rolled back at once, within the budget."""
        existing = dict(conn.execute(EXISTING_TABLES).fetchall())  # named now: a rollback drops some of them
        conn.rollback()
        last = ""
        for attempt, wait in enumerate((0.0, *BACK_OFF_S), 1):
            time.sleep(wait)
            watchdog = threading.Timer(self.budget_ms / 1000, conn.cancel_safe)
            started = time.monotonic()
            try:
                conn.execute("SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                             (f"{max(self.budget_ms // 4, 1)}ms", f"{self.budget_ms}ms"))  # fmt: skip
                watchdog.start()
                apply_file(conn, path, keep_timeouts=True)
                held = conn.execute(HELD, (STALLING_MODES,)).fetchall()
                tables = strongest([(existing[oid], mode) for oid, mode in held if oid in existing])
                interrupt.announce(interrupt.LOCK_MOMENT)
            except ApplyError as error:
                watchdog.cancel()
                conn.rollback()
                if error.sqlstate not in (LOCK_NOT_AVAILABLE, QUERY_CANCELED):
                    self.moments.append(Moment(what, {}, (time.monotonic() - started) * 1000, attempt))
                    return Outcome(error=error)
                last = (
                    f"its locks were not had within {self.budget_ms // 4} ms" if error.sqlstate == LOCK_NOT_AVAILABLE
                    else f"it did not end within the budget of {self.budget_ms} ms"
                )
                continue
            finally:
                watchdog.cancel()
            conn.rollback()
            moment = Moment(what, tables, (time.monotonic() - started) * 1000, attempt)
            self.moments.append(moment)
            return Outcome(moment=moment)
        return Outcome(stalled=f"{what}: tried {1 + len(BACK_OFF_S)} times, {last} (other sessions hold or queue for "
                       "what it needs)")  # fmt: skip


def strongest(rows: list[tuple[str, str]]) -> dict[str, str]:
    """table -> its strongest lock mode among `rows`."""
    found: dict[str, str] = {}
    for table, mode in rows:
        if table not in found or LOCK_MODES.index(mode) > LOCK_MODES.index(found[table]):
            found[table] = mode
    return found
