"""The one way into the sign-off: a Record of what a check found, or of what the run itself learned, and the
check's Outcome that carries it.

A check records through its `record` fixture, the run's fixtures through the run's Record, with the same verbs:
block, recommend, settle, observe, differ, measure, note (a fact of the environment) and deployment (what
became of the file, what the target held). A Record crosses from an
xdist worker as its fields by name (as_json, of), in its check's Outcome (decided once, readiness.plugin.outcomes),
and the sign-off takes every Record whole.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from readiness.acting.access import Observation
from readiness.rules.decisions import Decision
from readiness.verdicts import Cause, DesignDifference, Issue


@dataclass
class Record:
    """What a check, or the run, recorded: findings, figures, facts of the environment."""

    issues: list[Issue] = field(default_factory=list)  # blocking issues, if the check fails
    cause: Cause | None = None  # the root cause it shares with other checks, if known
    recommendations: list[Issue] = field(default_factory=list)
    differences: list[DesignDifference] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)  # measurement -> value, reported, never asserted
    settled: list[tuple[Issue, Decision]] = field(default_factory=list)  # findings its rule settled (squawk's own
    # config or comments, a setting of the deploy), each with its decision
    observations: list[Observation] = field(default_factory=list)  # what actors reached (readiness.acting.access)
    environment: dict[str, str] = field(default_factory=dict)  # facts of the run: server, target, column roles
    refusals: list[str] = field(default_factory=list)  # PostgreSQL's "permission denied ..." met while it ran
    target_state: str | None = None  # what a target held of 0024 (schema.deployment), when the run read one
    ran: str | None = None  # what became of the file: "applied", "failed", "not run"
    lock_moments: dict[str, Any] = field(default_factory=dict)  # on a target: readiness.rules.budget's record

    def block(self, issue: Issue, cause: Cause | None = None) -> None:
        """A blocking issue (CRITICAL or HIGH) the sign-off lists if the check fails; `cause` when it is the root
        cause other checks are BLOCKED by (0024 did not apply)."""
        self.issues.append(issue)
        self.cause = cause or self.cause

    def counts_under(self, cause: Cause | None) -> None:
        """Count the check's failure under `cause`, when there is one (a policy the report names that is missing is
        its table's RLS cause, with every isolation failure it makes)."""
        self.cause = cause or self.cause

    def recommend(self, issue: Issue) -> None:
        """A recommendation (MEDIUM or LOW): listed, never blocking."""
        if issue.severity not in ("MEDIUM", "LOW"):
            raise ValueError(f"a recommendation is MEDIUM or LOW, not {issue.severity}: {issue.message}")
        self.recommendations.append(issue)

    def settle(self, issue: Issue, decision: Decision) -> None:
        """A finding the check's own rule settled: listed under the accepted risks with its decision."""
        self.settled.append((issue, decision))

    def observe(self, observation: Observation) -> None:
        """What PostgreSQL did when an actor tried a command: a cell of the access matrix."""
        self.observations.append(observation)

    def differ(self, subject: str, design: object, found: object) -> None:
        """Where the migration chose otherwise than our own 0024: listed, never blocking."""
        self.differences.append(DesignDifference(subject, str(design), str(found)))

    def measure(self, name: str, value: str) -> None:
        """A measured figure (a timing, a count) for the measurements table."""
        self.figures[name] = value

    def note(self, name: str, value: str) -> None:
        """A fact of the environment the run found (its server, its target, a column role)."""
        self.environment[name] = value

    def deployment(self, ran: str | None, target_state: str | None = None,
                   lock_moments: dict[str, Any] | None = None) -> None:  # fmt: skip
        """What became of the file (applied, failed, not run) and, on a target, what it held of 0024 and the lock
        moments the run took there."""
        self.ran = ran
        self.target_state = target_state or self.target_state
        self.lock_moments = lock_moments if lock_moments is not None else self.lock_moments

    def as_json(self) -> dict[str, Any]:
        return typing.cast(dict[str, Any], primitive(self))

    @classmethod
    def of(cls, data: dict[str, Any]) -> Record:
        return typing.cast(Record, from_json(cls, data))


@dataclass
class Outcome:
    """One check's outcome for one phase of it (setup, call, teardown), as the sign-off counts it."""

    nodeid: str
    status: str  # PASSED, FAILED, BLOCKED, NOT_APPLICABLE, DIFFERS, SKIPPED
    message: str = ""
    description: str = ""  # the first line of its docstring: its row in the reports
    check: str | None = None  # the report's "Production Readiness" row this check decides
    issues: list[Issue] = field(default_factory=list)
    cause: str | None = None  # the root cause it shares with other checks (a missing object), if known
    about: tuple[str, ...] = ()  # the objects it is about: its cause's, else those it checks (readiness.verdicts.Issue)
    severity: str = "HIGH"  # of its failure, when it records no issue of its own (CRITICAL: a tenant leak)
    requirement: str | None = None  # the ledger id it enforces
    one_cause: bool = True  # its cases (parameters) failing are one cause; False for checks of distinct rules
    task: int | None = None  # the validation task (its module's `task` marker); None for a test of the suite itself
    shown_in: tuple[int, ...] = ()  # other tasks whose rows it counts in (the report asks for it in each)
    phase: str = "call"  # setup, call or teardown
    record: Record = field(default_factory=Record)  # what it recorded, findings and figures
    examples: int = 0  # the examples hypothesis tried in it, told at its teardown

    def as_json(self) -> dict[str, Any]:
        return typing.cast(dict[str, Any], primitive(self))

    @classmethod
    def of(cls, data: dict[str, Any]) -> Outcome:
        return typing.cast(Outcome, from_json(cls, data))


def primitive(value: Any) -> Any:
    """`value` as the types execnet and JSON carry: dataclasses as dicts by field name, tuples as lists, paths as
    strings."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: primitive(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [primitive(item) for item in value]
    if isinstance(value, dict):
        return {key: primitive(item) for key, item in value.items()}
    return str(value) if isinstance(value, Path) else value


def from_json(kind: Any, data: Any) -> Any:
    """`data` (as asdict or JSON left it) back as a value of `kind`: dataclasses by field name, their lists,
    tuples and dicts by their type hints."""
    return decoder(kind)(data)


def _same(data: Any) -> Any:
    return data


@functools.cache
def decoder(kind: Any) -> Callable[[Any], Any]:
    """How a value of `kind` is rebuilt from JSON, worked out once per type: every phase of every check crosses as
    JSON, and a field JSON carries as it is (a string, a number) is taken as it is."""
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        names = [f.name for f in fields(kind)]
        converted = [(name, decode) for name in names if (decode := decoder(hints[name])) is not _same]

        def rebuilt(data: Any) -> Any:
            if data is None:
                return None
            values = {name: data[name] for name in names if name in data}
            for name, decode in converted:
                if name in values:
                    values[name] = decode(values[name])
            return kind(**values)

        return rebuilt
    if origin in (typing.Union, types.UnionType):
        inner = decoder(next(a for a in arguments if a is not type(None)))
        return inner if inner is _same else lambda data: None if data is None else inner(data)
    if origin is list:
        item = decoder(arguments[0])
        return lambda data: None if data is None else [item(value) for value in data]
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            each = decoder(arguments[0])
            return lambda data: None if data is None else tuple(each(value) for value in data)
        parts = [decoder(argument) for argument in arguments]
        return lambda data: None if data is None else tuple(
            decode(value) for decode, value in zip(parts, data, strict=True))  # fmt: skip
    if origin is dict:
        value_of = decoder(arguments[1])
        return lambda data: None if data is None else {key: value_of(value) for key, value in data.items()}
    return (lambda data: None if data is None else Path(data)) if kind is Path else _same
