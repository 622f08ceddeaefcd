"""The readiness markers and their arguments, checked when the checks are collected.

As pytest-django validates `django_db` through a function's signature, each marker here is a function:
its parameters are the marker's, and it raises ValueError for an argument it does not know. A readiness
check without `enforces`, or with an argument no function accepts, stops the run before anything runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from readiness.report.signoff import TASK_NAMES
from readiness.rules.causes import MISSING
from readiness.schema import design, expected, ledger
from readiness.verdicts import BLOCKING_SEVERITIES

# The report's "7. Production Readiness Checks" rows a check may decide (the others are its own findings).
READINESS_ROWS = (
    "Schema prerequisites exist", "Auth infrastructure exists", "User mapping table exists", "No active locks",
    "Migration can execute", "RLS can be enabled", "Application deployment safe",
)  # fmt: skip


def task(number: int, *shown_in: int) -> None:
    """The report's validation task the check belongs to (its module declares it), and the other tasks whose rows
    it is shown in too (a check the report asks for in two tasks is written once)."""
    for each in (number, *shown_in):
        if each not in TASK_NAMES:
            raise ValueError(f"task {each!r}: the report's validation tasks are 1 to {len(TASK_NAMES)}")


def enforces(requirement: str) -> None:
    """The ledger requirement the check enforces (readiness/schema/ledger.toml)."""
    if requirement not in ledger.requirements():
        raise ValueError(f"{requirement!r} is not a requirement of readiness/schema/ledger.toml")


def severity(level: str) -> None:
    """The severity of the check's failure when it records no issue of its own."""
    if level not in BLOCKING_SEVERITIES:
        raise ValueError(f"severity {level!r}: a blocking check is one of {', '.join(BLOCKING_SEVERITIES)}")


def check(row: str) -> None:
    """The report's production readiness row the check decides."""
    if row not in READINESS_ROWS:
        raise ValueError(f"check {row!r} is not a row of the report's Production Readiness Checks")


def existence(kind: str) -> None:
    """The kind of the report's objects whose existence the check proves."""
    if kind not in MISSING:
        raise ValueError(f"existence {kind!r}: one of {', '.join(MISSING)}")


def known_objects() -> set[str]:
    """The report's objects (and our design's indexes) a check may name in `uses`."""
    columns = {f"{table}.{name}" for table, named in expected.CONTRACT_COLUMNS.items() for name in named}
    return {*expected.CONTRACT_COLUMNS, *design.ALL_INDEXES, *expected.ENUMS, *expected.FUNCTION_NAMES, *columns}


def uses(*names: str) -> None:
    """The report's objects the check needs: it is BLOCKED, not failed, when 0024 did not create them."""
    unknown = sorted(set(names) - known_objects())
    if unknown:
        raise ValueError(f"uses {', '.join(unknown)}: not a table, index, enum, function or column of the report")


def separate_causes() -> None:
    """Each case of the parametrized check is a cause of its own (distinct rules), not one over its cases."""


VALIDATORS: dict[str, Callable[..., None]] = {
    function.__name__: function for function in (task, enforces, severity, check, existence, uses, separate_causes)
}


def problems(item: pytest.Item) -> list[str]:
    """What is wrong with a readiness check's markers; [] when nothing is."""
    found = []
    if item.get_closest_marker("enforces") is None:
        found.append('it names no requirement: add @pytest.mark.enforces("<id of readiness/schema/ledger.toml>")')
    if item.get_closest_marker("task") is None:
        found.append("it belongs to no task: its module declares it, pytestmark = [pytest.mark.readiness, "
                     "pytest.mark.task(N)]")  # fmt: skip
    for marker in item.iter_markers():
        validate = VALIDATORS.get(marker.name)
        if validate is None:
            continue
        try:
            inspect.signature(validate).bind(*marker.args, **marker.kwargs)
            validate(*marker.args, **marker.kwargs)
        except (TypeError, ValueError) as error:
            found.append(f"@pytest.mark.{marker.name}{marker.args!r}: {error}")
    return found


def validate(items: list[pytest.Item]) -> None:
    """Stop the run (a usage error) when a readiness check's markers are missing or wrong."""
    wrong = [f"{item.nodeid}: {problem}" for item in items if item.get_closest_marker("readiness")
             for problem in problems(item)]  # fmt: skip
    if wrong:
        raise pytest.UsageError("readiness checks with missing or wrong markers:\n" + "\n".join(dict.fromkeys(wrong)))
