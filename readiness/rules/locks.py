"""Task 7's lock rules: sessions in the migration's way, and the locks the migration takes (its footprint).

The session check is a pure catalog read: it takes no lock a production session could hold, so it
never waits. The lock footprint runs the migration in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta

from psycopg import Connection

# --- sessions in the way: locks held and transactions left open ------------------------

# Longer than this, an open transaction is a finding even if it holds no lock on the objects.
LONG_TRANSACTION = timedelta(minutes=5)

# Every other client session of this database holding or awaiting a lock on one of the
# relations (partitions included), or idle in a transaction, or in one open too long. Catalog
# reads only: to_regclass() and pg_inherits lock nothing (pg_partition_tree() would lock the
# partitions, and wait on the very session it should report).
# Autovacuum is left out (it cancels itself when DDL waits on it) unless it runs to prevent
# wraparound, which it does not cancel.
SESSIONS_IN_THE_WAY = """
WITH RECURSIVE touched(relid) AS (  -- the named relations and their partitions, read from pg_inherits
    SELECT to_regclass(n.name)::oid FROM unnest(%(relations)s::text[]) AS n(name)
    UNION SELECT i.inhrelid FROM pg_inherits i JOIN touched t ON i.inhparent = t.relid
)
SELECT a.pid, l.mode, l.relation::regclass::text, coalesce(l.granted, true), a.state,
       clock_timestamp() - a.xact_start
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'relation' AND l.relation IN (SELECT relid FROM touched)
WHERE a.pid <> pg_backend_pid() AND a.pid <> ALL(%(ours)s::int[]) AND a.datname = current_database()
  AND NOT (pg_blocking_pids(a.pid) && %(ours)s::int[])  -- waiting on the run itself: the run's lock moment
  AND (a.backend_type = 'client backend' OR a.query LIKE '%%to prevent wraparound%%')
  AND (l.pid IS NOT NULL OR a.state LIKE 'idle in transaction%%' OR clock_timestamp() - a.xact_start > %(long)s)
ORDER BY a.pid, l.relation::regclass::text, l.mode
"""
# pg_stat_activity is read once per transaction and kept: drop that copy to see the sessions now.
CLEAR_STATS_SNAPSHOT = "SELECT pg_stat_clear_snapshot()"


@dataclass(frozen=True)
class SessionFinding:
    """Another session holding (or awaiting) a lock on a relation the migration needs, or a transaction left open."""

    pid: int
    mode: str | None  # pg_locks.mode, None for an open transaction holding no lock on the relations
    relation: str | None
    granted: bool
    state: str | None  # pg_stat_activity.state
    age: timedelta | None  # how long its transaction has been open

    def __str__(self) -> str:
        what = (
            f"{'holds' if self.granted else 'waits for'} {self.mode} on {self.relation}"
            if self.relation
            else "has a transaction open"
        )
        return f"pid {self.pid} {what} ({self.state}, transaction open for {self.age})"


def sessions_in_the_way(
    conn: Connection, relations: list[str], ours: Collection[int] = (), long_transaction: timedelta = LONG_TRANSACTION
) -> list[SessionFinding]:
    """Other sessions (not this one, nor the suite's `ours`) that would make the migration wait on `relations`
    (missing ones are skipped), or hold a transaction open.

    Reads pg_locks and pg_stat_activity only; pg_terminate_backend() or waiting them out is the DBA's call.
    """
    conn.execute(CLEAR_STATS_SNAPSHOT)
    params = {"relations": relations, "ours": [*ours, conn.info.backend_pid], "long": long_transaction}
    rows = conn.execute(SESSIONS_IN_THE_WAY, params)
    return [SessionFinding(*row) for row in rows]


# --- lock footprint (as the tool "eugene" traces it) ------------------------------------

# The user relations (not the system catalogs) existing now, with their storage file.
USER_RELATIONS = """
SELECT c.oid::int8, c.oid::regclass::text, c.relkind::text, c.relfilenode::int8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%'
"""

# The relation locks this session holds in this database.
OWN_RELATION_LOCKS = """
SELECT l.relation::int8, l.mode FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""

# pg_locks modes, weakest first.
LOCK_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
STORAGE_KINDS = ("r", "m")  # tables with a file of their own: a rewrite gives them a new one


@dataclass(frozen=True)
class Footprint:
    """What running a migration did to the relations that existed before it, inside its transaction."""

    locks: dict[str, tuple[str, ...]]  # pre-existing relation -> the lock modes taken on it, weakest first
    kinds: dict[str, str]  # pre-existing relation -> pg_class.relkind
    rewritten: tuple[str, ...]  # pre-existing tables whose relfilenode changed
    masked: tuple[str, ...] = ()  # relations the transaction held locks on before: those modes are not seen

    def __str__(self) -> str:
        found = ", ".join(f"{name}: {'+'.join(m)}" for name, m in self.locks.items()) or "no pre-existing relation"
        masked = f" (modes held before it, by the rollback run first, are not seen on {', '.join(self.masked)})"
        return found + (masked if self.masked else "")

    def blocks_writes(self) -> list[str]:
        """The pre-existing relations locked in a mode that conflicts with ROW EXCLUSIVE: writes to them wait."""
        return [
            name for name, modes in self.locks.items() if set(modes) & set(LOCK_MODES[LOCK_MODES.index("ShareLock") :])
        ]

    def access_exclusive(self) -> list[str]:
        """The pre-existing relations locked ACCESS EXCLUSIVE: every read of them waits until COMMIT."""
        return [name for name, modes in self.locks.items() if "AccessExclusiveLock" in modes]


def lock_footprint(conn: Connection, run: Callable[[], object]) -> Footprint:
    """Call `run` (a migration applied in `conn`'s open transaction) and trace its locks on pre-existing relations.

    The locks are read back from pg_locks for this backend before the transaction ends. A mode the
    transaction held before (on a deployed 0024, its rollback runs first) cannot be told from the
    migration's own: such relations are listed as masked.
    """
    before = {oid: (name, kind, filenode) for oid, name, kind, filenode in conn.execute(USER_RELATIONS)}
    held_before = set(conn.execute(OWN_RELATION_LOCKS).fetchall())
    run()
    after = {oid: filenode for oid, _, _, filenode in conn.execute(USER_RELATIONS)}
    held: dict[str, set[str]] = {}
    for oid, mode in conn.execute(OWN_RELATION_LOCKS):
        if oid in before and (oid, mode) not in held_before:
            held.setdefault(before[oid][0], set()).add(mode)
    rewritten = tuple(
        sorted(
            name
            for oid, (name, kind, filenode) in before.items()
            if kind in STORAGE_KINDS and oid in after and after[oid] != filenode
        )
    )
    return Footprint(
        locks={name: tuple(sorted(modes, key=LOCK_MODES.index)) for name, modes in sorted(held.items())},
        kinds={name: kind for name, kind, _ in before.values()},
        rewritten=rewritten,
        masked=tuple(sorted({before[oid][0] for oid, _ in held_before if oid in before})),
    )
