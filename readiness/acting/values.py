"""Values of a column's type, from the type alone: one valid value, a new one each call, the type's whole domain."""

from __future__ import annotations

import datetime
import decimal
import random
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from readiness.schema import catalog

TEXTS = ("text", "character varying", "character", "citext", "name")
NUMBERS = ("smallint", "integer", "bigint", "numeric", "real", "double precision")
TIME = object()  # a time column's domain: readiness.acting.rows puts times before and after now in its place


class Unfillable(Exception):
    """A NOT NULL column without a default whose type the factories cannot make a value of."""


def base_type(type_name: str) -> str:
    """format_type() without its modifier: 'character varying(64)' -> 'character varying'."""
    return type_name.split("(")[0].removesuffix("[]").strip()


def value_of(column: catalog.Required) -> Any:
    """A valid value for a required column, from its type alone."""
    if column.labels:
        return column.labels[0]
    return fresh(column.name, column.type, zero=True)


def fresh(name: str, type_name: str, zero: bool = False) -> Any:
    """A value of the type `type_name` for the column `name`, new each call (a number is 0 when `zero`)."""
    base = base_type(type_name)
    if type_name.endswith("[]"):
        return []
    if base in TEXTS:
        text = f"{name}-{uuid.uuid4().hex[:8]}"
        limit = catalog.type_length(type_name)
        return text[-limit:] if limit else text
    if base in NUMBERS:
        if zero:
            return 0
        number = random.randint(1, 30_000)  # fits a smallint
        return decimal.Decimal(number) if base == "numeric" else number
    if base == "uuid":
        return uuid.uuid4()
    if base in ("jsonb", "json"):
        return Jsonb({} if zero else {name: uuid.uuid4().hex})
    if base.startswith("timestamp"):
        return datetime.datetime.now(datetime.UTC)
    if base == "date":
        return datetime.date.today()
    if base == "boolean":
        return False
    if base == "interval":
        return datetime.timedelta(0)
    if base == "bytea":
        return uuid.uuid4().bytes
    raise Unfillable(f"cannot make a value of type {type_name} for the NOT NULL column {name} without a default")


def domain(type_name: str, labels: tuple[str, ...], long_text: int) -> tuple[Any, ...]:
    """The values a row's column ranges over, by its type: every label of an enum, both booleans, times (TIME),
    empty and long text within the type's length, zero, one and many, two json objects, two intervals. NULL is
    the caller's to add where the column takes it."""
    base = base_type(type_name)
    if labels:
        return labels
    if type_name.endswith("[]"):
        return ([],)
    if base in TEXTS:
        limit = catalog.type_length(type_name) or long_text
        return ("", ("domain " * long_text)[: min(limit, long_text)])
    if base in NUMBERS:
        return (0, 1, 1000)
    if base == "boolean":
        return (True, False)
    if base.startswith("timestamp") or base == "date":
        return (TIME,)
    if base in ("jsonb", "json"):
        return ({}, {"domain": "value"})
    if base == "interval":
        return (datetime.timedelta(0), datetime.timedelta(hours=1))
    if base == "uuid":
        return (uuid.uuid4(),)
    if base == "bytea":
        return (b"", b"domain")
    return ()
