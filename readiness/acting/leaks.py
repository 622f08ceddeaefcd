"""A leak in words: which of an organisation's rows an actor reached, told apart from those it did not.

When an actor reaches some of a tenant's rows (those over the domain of each column, readiness.acting.rows), the
check says which, by the one condition that holds on every row reached and on none kept ("status = 'failed'",
"user_id IS NULL", "expires_at before now()"), not by a dump of rows.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from readiness.acting import keys


def rows_by_key(conn: psycopg.Connection, table: str, wanted: tuple[keys.Key, ...] | list[keys.Key]) -> dict:  # type: ignore[type-arg]
    """key -> the row as the current role reads it, whole, for the rows of `wanted` it sees."""
    if not wanted:
        return {}
    names = keys.columns(conn, table)
    query = sql.SQL("SELECT * FROM {} WHERE ({}) IN ({})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(names)))
                           for _ in wanted),
    )  # fmt: skip
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(query, [value for key in wanted for value in key]).fetchall()
    return {tuple(row[name] for name in names): row for row in found}


def condition(
    reached: list[Mapping[str, Any]], kept: list[Mapping[str, Any]], names: Mapping[Any, str], now: datetime.datetime,
    skip: tuple[str, ...] = (),
) -> str:
    """The condition that holds on every row `reached` and on none `kept`, in words (every such condition on one
    column, when several describe the same rows); else the first reached row's values. `names` says who a key is
    ("a user of organisation B"); `skip` the columns that say nothing (keys, the organisation)."""
    if not reached:
        return "no row"
    columns = [c for c in reached[0] if c not in skip and all(c in row for row in (*reached, *kept))]
    told = []
    for column in columns:
        inside = [row[column] for row in reached]
        outside = [row[column] for row in kept]
        if not outside or _all_distinct(inside + outside):
            continue  # a fresh value tells every row apart and says nothing
        if {_key(v) for v in inside}.isdisjoint({_key(v) for v in outside}):
            told.append(_said(column, inside, names))
        else:
            told += _before_or_after(column, inside, outside, now)
    if told:
        return " (or, the same rows, ".join(told[:2]) + (")" if len(told) > 1 else "")
    first = reached[0]
    return ", ".join(_said(column, [first[column]], names) for column in columns if not _all_distinct(
        [row[column] for row in (*reached, *kept)]))  # fmt: skip


def _before_or_after(column: str, inside: list[Any], outside: list[Any], now: datetime.datetime) -> list[str]:
    """'<column> before now()' when every reached time is before now and every kept one not (or after)."""
    if not all(isinstance(v, datetime.datetime) for v in (*inside, *outside)):
        return []
    if max(inside) < now <= min(outside):
        return [f"{column} before now()"]
    if min(inside) >= now > max(outside):
        return [f"{column} after now()"]
    return []


def _all_distinct(values: list[Any]) -> bool:
    return len(values) > 1 and len({_key(v) for v in values}) == len(values)


def _key(value: Any) -> str:
    return repr(getattr(value, "obj", value))


def _said(column: str, values: list[Any], names: Mapping[Any, str]) -> str:
    distinct = list({_key(v): v for v in values}.values())
    if distinct == [None]:
        return f"{column} IS NULL"
    shown = [names.get(v, _literal(v)) if _hashable(v) else _literal(v) for v in distinct]
    return f"{column} = {shown[0]}" if len(shown) == 1 else f"{column} IN ({', '.join(shown)})"


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _literal(value: Any) -> str:
    value = getattr(value, "obj", value)
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "''" if value == "" else f"'{value[:40]}{'...' if len(value) > 40 else ''}'"
    return str(value)
