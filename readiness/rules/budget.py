"""The lock budget on a target: the run holds no lock that stalls the application's row writes, but for short,
bounded, counted moments.

A moment is one transaction on the target that takes a lock conflicting with ROW EXCLUSIVE on a table that
existed before 0024 (applying the file takes SHARE ROW EXCLUSIVE on organization and auth.users_extended
with its keys; its rollback, ACCESS EXCLUSIVE on the sync tables). Each waits for its lock at most a quarter
of the budget (lock_timeout), so the application's writes queue behind it no longer than that; the whole
transaction is cancelled if it outlives the budget; a lock not had is tried again after a back-off, while the
moments so far add up to less than the budget (the retries together stall no more than one moment may); a
moment never had is "could not be checked on the target without stalling it", never a stall. A moment is timed
from the first statement naming an existing table, not from the file's first byte. The file's own SET
lock_timeout and statement_timeout give way to the budget there; a statement of the file that outruns it is
named as the file's, not blamed on other sessions. Every moment is announced
(readiness.postgres.interrupt.LOCK_MOMENT) while its locks are held, and counted in the sign-off per table.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pglast
import psycopg
from pglast import ast

from readiness.postgres import interrupt
from readiness.rules.locks import LOCK_MODES
from readiness.schema import statements
from readiness.schema.apply import ApplyError, Statement, apply_file

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
class DryRun:
    """What a budgeted dry run on the target found: it ran (error None), it failed (error), or it never had its
    locks within the budget (stalled names why)."""

    error: ApplyError | None = None
    stalled: str | None = None
    moment: Moment | None = None
    slow: ApplyError | None = None  # the file's own statement outran the budget while holding locks


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

    def dry_run(self, conn: psycopg.Connection, path: Path, what: str) -> DryRun:
        """Run the SQL file on the target in one transaction, rolled back at once, within the budget.

        The moment is timed from the first statement naming a table that existed before it (the statements
        before it make new objects: they stall no one, however long the file takes to send) to the rollback.
        Attempts stop once the moments so far add up to the budget: the retries stall no more than one would."""
        existing = dict(conn.execute(EXISTING_TABLES).fetchall())  # named now: a rollback drops some of them
        names = {name for table in existing.values() for name in (table, table.rsplit(".", 1)[-1])}
        conn.rollback()
        last, spent = "", 0.0
        for attempt, wait in enumerate((0.0, *BACK_OFF_S), 1):
            remaining = self.budget_ms - spent
            if remaining < self.budget_ms / 10:
                break
            time.sleep(wait)
            clock = Clock(conn, remaining, names)
            waiting = max(int(min(self.budget_ms // 4, remaining / 2)), 1)  # a lock wait ends before the statement
            try:
                conn.execute("SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                             (f"{waiting}ms", f"{int(remaining)}ms"))  # fmt: skip
                apply_file(conn, path, before=clock.before, once=False)
                held = conn.execute(HELD, (STALLING_MODES,)).fetchall()
                tables = strongest([(existing[oid], mode) for oid, mode in held if oid in existing])
                interrupt.announce(interrupt.LOCK_MOMENT)
            except ApplyError as error:
                clock.stop()
                conn.rollback()
                spent += clock.held_ms
                if error.sqlstate == QUERY_CANCELED and clock.started is not None:  # the file itself is slow
                    self.moments.append(Moment(what, {}, clock.held_ms, attempt))
                    return DryRun(slow=error)
                if error.sqlstate not in (LOCK_NOT_AVAILABLE, QUERY_CANCELED):
                    self.moments.append(Moment(what, {}, clock.held_ms, attempt))
                    return DryRun(error=error)
                last = f"its locks were not had within {max(self.budget_ms // 4, 1)} ms (a try, at the most)"
                continue
            finally:
                clock.stop()
            conn.rollback()
            moment = Moment(what, tables, clock.held_ms, attempt)
            self.moments.append(moment)
            return DryRun(moment=moment)
        return DryRun(stalled=f"{what}: tried {attempt} time(s) within a budget of {self.budget_ms} ms in all, {last} "
                       "(other sessions hold or queue for what it needs)")  # fmt: skip


class Clock:
    """A moment's time: from the first statement naming an existing table to the rollback; a watchdog cancels the
    transaction once it has held them for what is left of the budget."""

    def __init__(self, conn: psycopg.Connection, limit_ms: float, names: set[str]) -> None:
        self.conn, self.limit_ms, self.names = conn, limit_ms, names
        self.started: float | None = None
        self.stopped: float | None = None
        self.watchdog = threading.Timer(limit_ms / 1000, conn.cancel_safe)

    def before(self, statement: Statement) -> None:
        if self.started is None and names_existing(statement, self.names):
            self.started = time.monotonic()
            self.watchdog.start()

    def stop(self) -> None:
        self.watchdog.cancel()
        if self.started is not None and self.stopped is None:
            self.stopped = time.monotonic()

    @property
    def held_ms(self) -> float:
        if self.started is None:
            return 0.0
        return ((self.stopped or time.monotonic()) - self.started) * 1000


def names_existing(statement: Statement, names: set[str]) -> bool:
    """Whether the statement names a table that existed before the file (its own DO blocks and functions aside)."""
    try:
        trees = [raw.stmt for raw in pglast.parse_sql(statement.text)]
    except pglast.parser.ParseError:
        return True
    for node in statements.nodes(trees):
        if isinstance(node, ast.RangeVar):
            named = f"{node.schemaname}.{node.relname}" if node.schemaname else node.relname
            if named in names or (not node.schemaname and f"public.{node.relname}" in names):
                return True
    return isinstance(trees[0], ast.DoStmt) if trees else False  # a DO block may touch anything


def strongest(rows: list[tuple[str, str]]) -> dict[str, str]:
    """table -> its strongest lock mode among `rows`."""
    found: dict[str, str] = {}
    for table, mode in rows:
        if table not in found or LOCK_MODES.index(mode) > LOCK_MODES.index(found[table]):
            found[table] = mode
    return found
