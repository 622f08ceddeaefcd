"""What a target already holds of the migration under test, read before anything writes.

The objects a file creates are read from its statements (CREATE TYPE, TABLE, INDEX, FUNCTION,
TRIGGER, POLICY; what a DO block makes is not seen). A target holds none of them (absent),
all of them (present), or some. A deploy that stopped half-way without a transaction leaves
the objects of the file's first statements and none after: that is partial. Any other gap
(an index dropped after the deploy) is a deployed 0024 that drifted: present, its gaps listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pglast
import psycopg

from readiness.schema.apply import TRANSACTION_CONTROL, location_of, read_sql, split

ABSENT, PRESENT, PARTIAL = "absent", "present", "partial"

# How the sign-off names each state: what the run does with the target.
WORDING = {
    ABSENT: "0024 absent: the run gates its deploy (dry run, rolled back)",
    PRESENT: "0024 present: the run verifies the deployed objects in place (rolled back)",
    PARTIAL: "0024 partly present: a deploy stopped half-way",
}

EXISTS = {
    "type": "SELECT to_regtype(%(name)s) IS NOT NULL",
    "table": "SELECT to_regclass(%(name)s) IS NOT NULL",
    "index": "SELECT to_regclass(%(name)s) IS NOT NULL",
    "function": "SELECT EXISTS (SELECT FROM pg_proc WHERE proname = %(bare)s"
    " AND pronamespace::regnamespace::text = %(schema)s)",
    "trigger": "SELECT EXISTS (SELECT FROM pg_trigger WHERE tgname = %(name)s AND tgrelid = to_regclass(%(table)s))",
    "policy": "SELECT EXISTS (SELECT FROM pg_policy WHERE polname = %(name)s AND polrelid = to_regclass(%(table)s))",
}


@dataclass(frozen=True)
class Created:
    """An object a statement of the file creates."""

    position: int  # the statement's place among the file's statements, transaction control left out
    kind: str  # a key of EXISTS
    name: str
    table: str | None = None  # a trigger's or a policy's table
    where: str = ""  # file:line:column of the statement

    def __str__(self) -> str:
        return f"{self.kind} {self.name}" + (f" on {self.table}" if self.table else "")


def _qualified(node: object) -> str:
    """schema.name of a RangeVar, or its bare name."""
    return ".".join(part for part in (node.schemaname, node.relname) if part)  # type: ignore[attr-defined]


def _names(parts: tuple) -> str:  # type: ignore[type-arg]
    return ".".join(part.sval for part in parts)


def _created_by(position: int, node: object) -> Created | None:
    kind = type(node).__name__
    if kind == "CreateEnumStmt" or kind == "CompositeTypeStmt":
        return Created(position, "type", _names(node.typeName))  # type: ignore[attr-defined]
    if kind == "CreateStmt":
        return Created(position, "table", _qualified(node.relation))  # type: ignore[attr-defined]
    if kind == "IndexStmt" and node.idxname:  # type: ignore[attr-defined]
        schema = node.relation.schemaname  # type: ignore[attr-defined]
        return Created(position, "index", ".".join(filter(None, (schema, node.idxname))))  # type: ignore[attr-defined]
    if kind == "CreateFunctionStmt":
        return Created(position, "function", _names(node.funcname))  # type: ignore[attr-defined]
    if kind == "CreateTrigStmt":
        return Created(position, "trigger", node.trigname, _qualified(node.relation))  # type: ignore[attr-defined]
    if kind == "CreatePolicyStmt":
        return Created(position, "policy", node.policy_name, _qualified(node.table))  # type: ignore[attr-defined]
    return None


def created_objects(path: Path) -> list[Created]:
    """The objects `path` creates, in the order of its statements (ApplyError when it does not parse)."""
    objects = []
    source = read_sql(path)
    statements = [statement for statement in split(path) if statement.kind != TRANSACTION_CONTROL]
    for position, statement in enumerate(statements):
        found = _created_by(position, pglast.parse_sql(statement.text)[0].stmt)
        if found is not None:
            objects.append(replace(found, where=str(location_of(path, source, statement.offset))))
    return objects


def listed(objects: list[Created]) -> str:
    """'3 tables: a, b, c; 2 policies: ...': objects by kind, in the file's order."""
    kinds: dict[str, list[str]] = {}
    for obj in objects:
        kinds.setdefault(obj.kind, []).append(obj.name + (f" on {obj.table}" if obj.table else ""))
    return "; ".join(f"{len(names)} {kind}{'s' if len(names) > 1 else ''}: {', '.join(names)}"
                     for kind, names in kinds.items())  # fmt: skip


def exists(conn: psycopg.Connection, obj: Created) -> bool:
    """Whether the database holds `obj` (by name; its definition is drift's business)."""
    schema, _, bare = obj.name.rpartition(".")
    params = {"name": obj.name, "bare": bare, "schema": schema or "public", "table": obj.table}
    row = conn.execute(EXISTS[obj.kind], params).fetchone()  # type: ignore[arg-type]
    return bool(row and row[0])


@dataclass
class TargetState:
    """What the target holds of the file: its state, and which of the file's objects exist and which do not."""

    state: str
    existing: list[Created] = field(default_factory=list)
    missing: list[Created] = field(default_factory=list)

    @property
    def first_missing(self) -> Created:
        """Where applying the rest of the file starts: the first statement whose object is missing."""
        return min(self.missing, key=lambda obj: obj.position)

    def describe(self) -> str:
        """One line for the terminal and the sign-off's Environment."""
        line = WORDING[self.state]
        if self.state == PARTIAL or (self.state == PRESENT and self.missing):
            line += f"; {len(self.existing)} of the file's {len(self.existing) + len(self.missing)} objects exist"
        return line


def read(conn: psycopg.Connection, objects: list[Created]) -> TargetState:
    """Which of `objects` the target holds, and so its state."""
    existing = [obj for obj in objects if exists(conn, obj)]
    missing = [obj for obj in objects if obj not in existing]
    if not existing:
        return TargetState(ABSENT, existing, missing)
    if not missing:
        return TargetState(PRESENT, existing, missing)
    stopped_half_way = max(obj.position for obj in existing) < min(obj.position for obj in missing)
    return TargetState(PARTIAL if stopped_half_way else PRESENT, existing, missing)


def owned(line: str, objects: list[Created]) -> bool:
    """Whether a snapshot line describes one of `objects`, or something on or of their tables (a column, a
    key, a partition a DO block made: named after its table)."""
    names = {obj.name.split(".")[-1] for obj in objects}
    tables = tuple(f"{obj.name.split('.')[-1]}_" for obj in objects if obj.kind == "table")
    return any(word in names or word.startswith(tables) for word in re.findall(r"\w+", line))
