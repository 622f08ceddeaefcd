"""Rows the migration's own constraints accept, over each column's whole domain.

A check that acts on rows proves only the rows it makes, so a tenant's rows range over every column's domain,
read from the catalog of the migration under test (not from our design): every enum label, NULL where the column
takes it, both booleans, times in the past and the future, empty and long text, a user of the row's organisation,
of another, of a third or none, and a time in every partition of the log. Each value appears in at least one row
(`covering`): row i takes the (i + j)-th value of the j-th column, and a value no such row could keep is tried
again on its own.

Every row is admitted by the migration's own rules: CHECK constraints, NOT NULL, UNIQUE, partition bounds and
its triggers (`admitted`). A refused row is mended, not reported: the columns the refusal names (its constraint's,
or the partition key) take other values of their domain until one is accepted; a value the migration's rules make
impossible is no row the migration can hold, and is left out. The suite's own rows never become an issue against
the migration.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from readiness.acting import values as typed
from readiness.schema import catalog
from readiness.verdicts import NotApplicable

MAPPING = "auth.users_extended"
SEARCH_LIMIT = 40  # inserts tried for one row before it is given up
LONG_TEXT = 300  # characters: long for a name or a message, short of any btree index's limit

# The columns of a table as the catalog describes them, with what their domain depends on.
DOMAIN_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, a.atthasdef,
       a.attidentity <> '' OR a.attgenerated <> '',
       ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = a.atttypid ORDER BY e.enumsortorder),
       (SELECT n.nspname || '.' || r.relname FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
        JOIN pg_namespace n ON n.oid = r.relnamespace
        WHERE c.conrelid = a.attrelid AND c.contype = 'f' AND a.attnum = ANY (c.conkey) LIMIT 1),
       a.attnum = ANY (coalesce((SELECT c.conkey FROM pg_constraint c WHERE c.conrelid = a.attrelid
                                 AND c.contype = 'p'), '{}'))
FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
# The columns a constraint of the table (or of one of its partitions) covers; a unique index's too.
CONSTRAINT_COLUMNS = """
SELECT a.attname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
WHERE c.conname = %(name)s AND (c.conrelid = %(table)s::regclass
      OR c.conrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %(table)s::regclass))
UNION
SELECT a.attname FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid
JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)
WHERE i.relname = %(name)s
"""
PARTITION_TIMES = """
SELECT c.relname, CASE WHEN pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' THEN NULL
            ELSE substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \\(''([^'']+)''\\)')::timestamptz END
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY 2 NULLS LAST
"""
DEFAULT_PARTITION_TIME = datetime.datetime(1901, 1, 1, tzinfo=datetime.UTC)  # outside any range a log would have


@dataclass(frozen=True)
class Relative:
    """A time this far from the transaction's now()."""

    days: float


@dataclass(frozen=True)
class UserOf:
    """A user of the row's organisation (0), of another (1), of a third (2)."""

    index: int


class Fresh:
    """A new value of the column's type each time (a key, a uuid, a text no other row has)."""

    def __repr__(self) -> str:
        return "Fresh"


FRESH = Fresh()
DEFAULT = object()  # the column left to its default (or NULL)
TIMES = (Relative(-30), Relative(-3), Relative(3), Relative(30))  # expired and not, before and after each other


@dataclass(frozen=True)
class Axis:
    """A column and the values of its domain the rows range over."""

    column: str
    values: tuple[Any, ...]


class Refused(NotApplicable):
    """No row with the values asked for satisfies the migration's rules: which rule refused it, in words. A check
    needing such a row is N/A: the migration cannot hold the state it would check."""


class Context:
    """What symbolic values resolve against when a row is written: the transaction's now() (read when first
    needed) and the users a user column names (of the row's organisation, of another, of a third)."""

    def __init__(self, conn: psycopg.Connection, users: tuple[Any, ...]) -> None:
        self.conn, self.users, self._now = conn, users, None

    @property
    def now(self) -> datetime.datetime:
        if self._now is None:
            self._now = self.conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        return self._now  # type: ignore[return-value]


def axes(conn: psycopg.Connection, table: str) -> list[Axis]:
    """The domain of every column of `table` the rows range over (not org_id, the organisation's, nor generated or
    key columns with a default, nor references to tables other than auth.users_extended); read once a session."""
    return list(catalog.read_once(conn, "axes", table, lambda: _axes(conn, table, ("org_id",))))


def _axes(conn: psycopg.Connection, table: str, fixed: Iterable[str]) -> list[Axis]:
    found = []
    partitioned = catalog.partition_key(conn, table)
    for name, type_name, nullable, has_default, generated, labels, references, in_key in conn.execute(
        DOMAIN_COLUMNS, (catalog.qualified(table),)
    ).fetchall():
        by_range = partitioned is not None and partitioned[0] == "range" and partitioned[1] == name
        if not by_range and (name in fixed or generated or in_key and has_default or references not in (None, MAPPING)):
            continue
        if by_range:
            values: tuple[Any, ...] = partition_times(conn, table)
        elif references == MAPPING:
            values = (UserOf(0), UserOf(1), UserOf(2))
        elif in_key:
            values = (FRESH,)
        else:
            values = typed.domain(type_name, tuple(labels), LONG_TEXT)
            values = tuple(time for v in values for time in (TIMES if v is typed.TIME else (v,)))
        found.append(Axis(name, values + ((None,) if nullable else ())))
    return found


def partition_moments(conn: psycopg.Connection, table: str) -> dict[str, Any]:
    """Partition -> a time it takes, for a table partitioned by range on a time: each range's start, a far past for
    the default partition; in time order."""
    return {name: time if time is not None else DEFAULT_PARTITION_TIME
            for name, time in conn.execute(PARTITION_TIMES, (catalog.qualified(table),))}  # fmt: skip


def partition_times(conn: psycopg.Connection, table: str) -> tuple[Any, ...]:
    """A time in every partition of a table partitioned by range on a time."""
    return tuple(partition_moments(conn, table).values())


def covering(axes_of: list[Axis]) -> list[dict[str, Any]]:
    """Rows in which every value of every axis appears: row i takes the (i + j)-th value of axis j."""
    count = max((len(axis.values) for axis in axes_of), default=1)
    return [{axis.column: axis.values[(i + j) % len(axis.values)] for j, axis in enumerate(axes_of)}
            for i in range(count)]  # fmt: skip


def resolve(conn: psycopg.Connection, table: str, value: Any, column: str, context: Context) -> Any:
    """A symbolic value (a time from now, a user, a fresh value) as the value written."""
    if isinstance(value, Relative):
        return context.now + datetime.timedelta(days=value.days)
    if isinstance(value, UserOf):
        return context.users[value.index] if value.index < len(context.users) else None
    if value is FRESH:
        return typed.fresh(column, catalog.columns(conn, table)[column].type)
    if isinstance(value, dict):
        return Jsonb(value)
    return value


def context(conn: psycopg.Connection, users: tuple[Any, ...]) -> Context:
    """The context of rows written now in the caller's transaction, by `users`."""
    return Context(conn, users)


def admitted(
    conn: psycopg.Connection, table: str, hard: dict[str, Any], soft: dict[str, Any] | None = None,
    where: Context | None = None, domains: list[Axis] | None = None, trusted: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Insert a row of `table` with the `hard` values as given and the `soft` ones where the migration's rules let
    them be, and return it as stored; Refused, naming the rule, when no row with the hard values is accepted.
    `trusted`: values of the same columns were accepted before (an organisation, a user): the row that was is
    written without a savepoint."""
    return admit(conn, table, hard, soft, where, domains, trusted=trusted).row


def admissible(
    conn: psycopg.Connection, table: str, hard: dict[str, Any], soft: dict[str, Any] | None = None,
    where: Context | None = None, domains: list[Axis] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The values of a row of `table` the migration's rules accept, as `admitted` finds them, written in a
    savepoint and rolled back: for a statement another role makes (whose refusal must then be RLS's)."""
    return admit(conn, table, hard, soft, where, domains, keep=False).values


@dataclass(frozen=True)
class Admitted:
    """A row the migration accepted: as stored, the values written, and the symbolic values it was written from."""

    row: dict[str, Any]
    values: dict[str, Any]
    state: dict[str, Any]


def admit(
    conn: psycopg.Connection, table: str, hard: dict[str, Any], soft: dict[str, Any] | None = None,
    where: Context | None = None, domains: list[Axis] | None = None, keep: bool = True, trusted: bool = False,
    probe: bool = False,
) -> Admitted:  # fmt: skip
    """The search `admitted` and `admissible` make: the soft values first, then each column a refusal implicates
    back to its default or to another value of its domain, breadth first, SEARCH_LIMIT rows at most. `probe`: a
    row the migration would not let change (readiness.acting.rows.updatable) counts as refused too."""
    where = where or context(conn, ())
    options = {axis.column: axis.values for axis in (domains if domains is not None else axes(conn, table))}
    tried: set[tuple[tuple[str, str], ...]] = set()
    queue = [dict(soft or {})]
    mended = _MENDED.get(_memo_key(conn, table, hard, soft))
    if mended is not None:
        mended = dict(mended)
        queue.insert(0, mended)
    refusal = "no row was tried"
    while queue and len(tried) < SEARCH_LIMIT:
        state = queue.pop(0)
        signature = tuple(sorted((column, repr(value)) for column, value in state.items()))
        if signature in tried:
            continue
        tried.add(signature)
        values = {column: resolve(conn, table, value, column, where) for column, value in {**state, **hard}.items()}
        try:
            values = complete(conn, table, values)
            probed = probe and keep and bool(domains)
            with conn.transaction() if probed else nullcontext():
                row = insert(conn, table, values, keep, savepoint=not (trusted and state is mended))
                if probed:
                    updatable(conn, table, row, domains[0].column)  # type: ignore[index]
            _MENDED[_memo_key(conn, table, hard, soft)] = state
            return Admitted(row, values, {**state, **hard})
        except REFUSALS as error:  # CHECK, NOT NULL, UNIQUE, a partition, a trigger's check, a type's range
            refusal = describe(error)
            implicated = [column for column in implicated_columns(conn, table, error, state) if column not in hard]
        # first each implicated column back to its default, then each to every other value of its domain
        queue += [{k: v for k, v in state.items() if k != column} for column in implicated if column in state]
        queue += [{**state, column: value} for column in implicated for value in options.get(column, ())]
    raise Refused(f"{table} refuses every row with {', '.join(f'{k} = {v!r}' for k, v in hard.items())}: {refusal}")


# The state a row was mended to, by the row asked for: later rows asking the same try it first.
_MENDED: dict[tuple[object, ...], dict[str, Any]] = {}
# What a migration's rules refuse a row with: a constraint (class 23), a trigger's RAISE, a value out of its type's
# range (class 22), a row no partition takes.
REFUSALS = (psycopg.errors.IntegrityError, psycopg.errors.RaiseException, psycopg.errors.DataError)


def _memo_key(conn: psycopg.Connection, table: str, hard: dict[str, Any], soft: dict[str, Any] | None) -> tuple:  # type: ignore[type-arg]
    return (catalog.session(conn), table, tuple(sorted(hard)), tuple(sorted((k, repr(v)) for k, v in
                                                                              (soft or {}).items())))


def implicated_columns(conn: psycopg.Connection, table: str, error: psycopg.Error, state: dict[str, Any]) -> list[str]:
    """The columns a refusal implicates: its constraint's, the NOT NULL column, the partition key, the columns its
    message names (a trigger's); all when it names none."""
    if error.diag.column_name:
        return [error.diag.column_name]
    if error.diag.constraint_name:
        rows = conn.execute(CONSTRAINT_COLUMNS, {"name": error.diag.constraint_name,
                                                 "table": catalog.qualified(table)}).fetchall()  # fmt: skip
        if rows:
            return [row[0] for row in rows]
    key = catalog.partition_key(conn, table)
    said = f"{error.diag.message_primary} {error.diag.message_detail or ''}"
    if key and "partition" in said:
        return [key[1]]
    words = set(re.findall(r"[a-z_]{3,}", said.lower()))  # a trigger's refusal names its columns, or their parts
    named = [column for column in state if column in words or words & set(column.split("_")) - {"id", "at"}]
    return named or list(state)


def describe(error: psycopg.Error) -> str:
    """A refusal in words: what PostgreSQL said and the constraint it names."""
    constraint = f" (constraint {error.diag.constraint_name})" if error.diag.constraint_name else ""
    return f"{error.diag.message_primary}{constraint}"


def complete(conn: psycopg.Connection, table: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` and a value for every other NOT NULL column of `table` that has no default."""
    missing = [column for column in catalog.required_columns(conn, table) if column.name not in values]
    return {**{column.name: typed.value_of(column) for column in missing}, **values}


def updatable(conn: psycopg.Connection, table: str, row: dict[str, Any], column_name: str) -> None:
    """Raise the migration's refusal when its rules let the row be written but never changed (an UPDATE that
    changes nothing, firing its triggers, is refused: a CHECK between a time a trigger sets and one in the
    future): such a row is no state the migration can hold for long, and no check can act on it."""
    names = catalog.primary_key(conn, table)
    if not names:
        return
    column = sql.Identifier(column_name)
    query = sql.SQL("UPDATE {} SET {} = {} WHERE ({}) = ({})").format(
        sql.Identifier(*table.split(".")), column, column, sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )  # fmt: skip
    with conn.transaction(force_rollback=True):
        conn.execute(query, [row[name] for name in names])


def insert_many(conn: psycopg.Connection, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert rows into `table` in one statement (a column a row does not name takes its DEFAULT), in a savepoint;
    the rows as stored, in order."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    values = sql.SQL(", ").join(
        sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() if c in row else sql.DEFAULT for c in columns))
        for row in rows
    )
    query = sql.SQL("INSERT INTO {} ({}) VALUES {} RETURNING *").format(
        sql.Identifier(*table.split(".")), sql.SQL(", ").join(map(sql.Identifier, columns)), values
    )
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, [row[c] for row in rows for c in columns if c in row]).fetchall()


def insert(
    conn: psycopg.Connection, table: str, values: dict[str, Any], keep: bool = True, savepoint: bool = True
) -> dict[str, Any]:
    """Insert one row into `table` in a savepoint (rolled back unless `keep`; none when not `savepoint`: a refusal
    then ends the caller's transaction), returning it as stored."""
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
        sql.Identifier(*table.split(".")),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
    )
    with conn.transaction(force_rollback=not keep) if savepoint or not keep else nullcontext(), \
            conn.cursor(row_factory=dict_row) as cur:  # fmt: skip
        row = cur.execute(query, list(values.values())).fetchone()
    if row is None:
        raise Refused(f"INSERT INTO {table} returned no row (a trigger skipped it)")
    return row

