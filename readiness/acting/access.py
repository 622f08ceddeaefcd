"""The tenants' access as a matrix: what PostgreSQL did when each actor tried each command on each table and
partition, as task 2's isolation checks observed it, beside what the report expects.

A check records an Observation for every attempt it makes (the `observe` fixture); the sign-off gathers them into
cells, one per table or partition, command and actor. A cell whose observation is not what the report expects
is red and names the checks that saw it: a leak (an actor reached rows it may not) or a lock-out (a member
refused their own rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
MEMBER, OTHER, ORPHAN, ANON, SERVICE = "member", "other organisation", "no organisation", "anon", "service_role"
ACTORS = {
    MEMBER: "a user of the row's organisation",
    OTHER: "a user of another organisation",
    ORPHAN: "a signed-in user of no organisation",
    ANON: "anon",
    SERVICE: "service_role",
}
# The report's isolation is an upper bound: a user of the row's organisation MAY reach it (a migration granting less,
# an append-only log, is sound: what it withholds is shown, never red); no one else may ("a user reads, writes, moves
# and deletes only their organisation's rows ... anon and a user of no organisation reach nothing",
# report.isolation). service_role bypasses RLS and MUST reach every organisation's rows (rule.service-role).
MAY = {MEMBER: True, OTHER: False, ORPHAN: False, ANON: False, SERVICE: True}
MUST = {SERVICE}


@dataclass(frozen=True)
class Observation:
    """One attempt: `actor` ran `command` on organisation A's row of `table` (a table or a partition)."""

    table: str
    command: str
    actor: str
    observed: str  # what PostgreSQL did, in words: "1 row", "0 rows", "refused with 42501", "accepted"
    reached: bool  # whether the actor read or changed the row
    check: str = ""  # the node id of the check that observed it

    @property
    def as_expected(self) -> bool:
        return MAY[self.actor] if self.reached else self.actor not in MUST


# How isolation is proven, said beside the matrix (HTML and Markdown alike).
PROOF = ("Isolation is proven twice: by the policies' structure (for every command, every disjunct of what they "
         "let through, combined as PostgreSQL combines them, keeps rows to the organisations auth.users_extended maps "
         "the caller to, or to none), and by behaviour: an organisation's rows range over every column's domain (every "
         "enum label, NULL, times past and future, users of either organisation, a row in every partition) and each "
         "cell is what PostgreSQL did when the actor tried the command on all of them. A user kept from their own "
         "rows is withheld, not red: the report's isolation is an upper bound.")  # fmt: skip


def expected(actor: str) -> str:
    """What the report expects of `actor`, in words."""
    if actor in MUST:
        return "reaches the row"
    return "may reach the row (granting less is sound)" if MAY[actor] else "reaches nothing"


@dataclass
class Cell:
    """What every check saw of one table (or partition), command and actor."""

    table: str
    command: str
    actor: str
    observations: list[Observation] = field(default_factory=list)

    @property
    def as_expected(self) -> bool:
        return all(observation.as_expected for observation in self.observations)

    @property
    def observed(self) -> str:
        return "; ".join(dict.fromkeys(o.observed for o in self.observations))

    @property
    def leak(self) -> bool:
        return any(o.reached and not MAY[o.actor] for o in self.observations)

    @property
    def withheld(self) -> bool:
        """A member kept from their own organisation's rows: less than ours, sound, shown."""
        return self.actor == MEMBER and any(not o.reached for o in self.observations)

    @property
    def verdict(self) -> str:
        """'ok', 'withheld' (a member kept from their own rows: sound, shown), 'LEAK' (an actor reached rows it may
        not) or 'refused' (service_role kept from a row)."""
        if self.as_expected:
            return "withheld" if self.withheld else "ok"
        return "LEAK" if self.leak else "refused"

    @property
    def checks(self) -> list[str]:
        """The checks proving what the cell shows: those that saw it otherwise than expected, else all."""
        wrong = [o.check for o in self.observations if not o.as_expected]
        return list(dict.fromkeys(wrong or [o.check for o in self.observations]))

    def as_json(self) -> dict[str, object]:
        return {"command": self.command, "actor": self.actor, "observed": self.observed,
                "expected": expected(self.actor), "as_expected": self.as_expected, "leak": self.leak,
                "withheld": self.withheld,
                "checks": self.checks}  # fmt: skip


def matrix(observations: list[Observation], tables: tuple[str, ...]) -> dict[str, dict[tuple[str, str], Cell]]:
    """table or partition -> (command, actor) -> its cell; the sync tables first, in their order, then partitions."""
    rows: dict[str, dict[tuple[str, str], Cell]] = {table: {} for table in tables}
    for observation in sorted(observations, key=lambda o: o.check):
        row = rows.setdefault(observation.table, {})
        key = (observation.command, observation.actor)
        row.setdefault(key, Cell(observation.table, observation.command, observation.actor)).observations.append(
            observation
        )
    return {table: cells for table, cells in rows.items() if cells}


def columns() -> list[tuple[str, str]]:
    """The matrix's columns in order: (actor, command), every command of an actor together."""
    return [(actor, command) for actor in ACTORS for command in COMMANDS]


def row_cells(cells: dict[tuple[str, str], Cell]) -> list[tuple[str, Cell | None]]:
    """A row's cells in the columns' order: (actor, its cell, or None where no check tried it)."""
    return [(actor, cells.get((command, actor))) for actor, command in columns()]


def matrix_json(rows: dict[str, dict[tuple[str, str], Cell]]) -> dict[str, object]:
    """signoff.json's access_matrix."""
    return {
        "actors": ACTORS,
        "commands": list(COMMANDS),
        "expected": {actor: expected(actor) for actor in ACTORS},
        "rows": [{"table": table, "cells": [cell.as_json() for cell in cells.values()]}
                 for table, cells in rows.items()],  # fmt: skip
    }
