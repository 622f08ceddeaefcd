"""Each check's outcome, decided in one place from typed values: what it raised, its markers, its cause.

readiness.plugin.hooks calls decide() for every phase report of a check and puts the Outcome on the report, as its
fields by name (it crosses from an xdist worker to the controller with it); the sign-off reads nothing else. The
task is the module's `task` marker. In order:
  - a check that passed is PASSED, one that raised Blocked or NotApplicable (readiness.verdicts) is
    BLOCKED by its cause or N/A, any other skip is SKIPPED;
  - a failed check whose subject 0024 did not create is BLOCKED by that missing object (readiness.rules.causes);
    one PostgreSQL refused for a lack of a privilege 0024 needs an API role to hold is BLOCKED by that missing
    privilege (readiness.rules.privileges);
    a failed existence check, or a failed check of a table whose RLS breaks the report's rule, has that cause;
  - a failed check of a "design" requirement (readiness.schema.ledger) DIFFERS: listed, never blocking; one that
    cannot run is N/A (what stops it is the contract's own finding).
"""

from __future__ import annotations

import re
import weakref
from dataclasses import replace
from datetime import date

import psycopg
import pytest
from _pytest.outcomes import Failed, Skipped

from readiness.report.record import Outcome, Record
from readiness.rules.causes import CAUSES_KEY, Causes, blocked_by, cause_of, privilege_cause, rls_cause
from readiness.rules.decisions import Decision
from readiness.schema import expected, ledger
from readiness.schema.apply import ApplyError
from readiness.verdicts import (
    BLOCKED,
    DIFFERS,
    FAILED,
    NOT_APPLICABLE,
    PASSED,
    SKIPPED,
    Blocked,
    NotApplicable,
)

RECORD = pytest.StashKey[Record]()
RUN_RECORD = pytest.StashKey[Record]()


def record_of(item: pytest.Item) -> Record:
    """What the check `item` recorded so far (readiness.report.record)."""
    return item.stash.setdefault(RECORD, Record())


def run_record(config: pytest.Config) -> Record:
    """What the run itself recorded: its server, its target, the facts its fixtures found."""
    return config.stash.setdefault(RUN_RECORD, Record())


def description(item: pytest.Item) -> str:
    """The first line of the check's docstring: its row text in the reports."""
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    return (doc or item.name).strip().splitlines()[0]


def requirement_of(item: pytest.Item) -> str | None:
    """The ledger id the check enforces (its closest `enforces` marker)."""
    marker = item.get_closest_marker("enforces")
    return marker.args[0] if marker is not None else None


def uses_of(item: pytest.Item) -> tuple[str, ...]:
    """The report's objects the check needs (its `uses` markers)."""
    return tuple(name for marker in item.iter_markers("uses") for name in marker.args)


def subjects_of(item: pytest.Item) -> tuple[str, ...]:
    """The objects the check is about: those it uses, and the report's objects it is parametrized with (a table,
    a policy, an index)."""
    callspec = getattr(item, "callspec", None)
    values = callspec.params.values() if callspec is not None else ()
    named = (value for value in values if isinstance(value, str) and value in expected.OBJECT_NAMES)
    return tuple(dict.fromkeys((*uses_of(item), *named)))


def examples_of(item: pytest.Item) -> int:
    """How many examples hypothesis tried in the check (0 for a check that is not a property test)."""
    statistics = getattr(item, "hypothesis_statistics", None) or ""
    # hypothesis describes each phase as "N passing, M failing, and K invalid test cases"
    return sum(int(n) + int(m) for n, m in re.findall(r"(\d+) passing, (\d+) failing", statistics))


def failure_message(call: pytest.CallInfo[None], report: pytest.TestReport, about: str) -> str:
    """What a failed check found, in words: its assertion's or pytest.fail's message, or what PostgreSQL
    answered; never a driver's traceback or a bare `assert`."""
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, ApplyError):
        return f"{about.rstrip('.')}: a SQL file of the check did not run: {error}"
    if isinstance(error, psycopg.Error):
        primary = error.diag.message_primary or str(error).strip().splitlines()[0]
        return f"{about.rstrip('.')}: PostgreSQL refused a statement of the check, {error.sqlstate} {primary}"
    if isinstance(error, AssertionError):  # pytest's rewriting appends "\nassert <what was compared>"
        message = str(error) or "assert (no message)"
    elif isinstance(error, Failed):  # pytest.fail
        message = error.msg
    else:  # another exception: its type and text; none: a failure pytest made itself (a strict xfail that passed)
        message = call.excinfo.exconly() if call.excinfo is not None else str(report.longrepr)
    if message.startswith("assert "):  # an assertion without a message: say what the check is about
        return f"{about.rstrip('.')}: not so ({message.splitlines()[0]})"
    return message.split("\nassert ")[0].strip()


def displayed_as_skipped(item: pytest.Item, report: pytest.TestReport, text: str) -> None:
    """Show the check as skipped in pytest's own reports (terminal, junit, HTML), with `text`."""
    report.outcome = "skipped"
    report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {text}")


def task_of(item: pytest.Item) -> tuple[int, ...]:
    """The validation task the check belongs to (its closest `task` marker, its module's unless the check names its
    own), then the other tasks it is shown in; () for a test of the suite itself."""
    marker = item.get_closest_marker("task")
    return tuple(marker.args) if marker is not None else ()


def decide(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> Outcome:
    """The check's outcome for this phase, with what it recorded (a test of the suite itself: its row text)."""
    task, *shown_in = task_of(item) or (None,)
    outcome = Outcome(item.nodeid, report.outcome, description=description(item), task=task, phase=report.when,
                      shown_in=tuple(shown_in))  # fmt: skip
    if task is None:
        return outcome
    record = record_of(item)
    if report.when == "teardown":  # the record travels once, whole, with the check's last phase
        outcome.record = record
        # what the check observed, and recommended, is its own: its node id, its requirement
        record.observations[:] = [replace(seen, check=seen.check or item.nodeid) for seen in record.observations]
        record.recommendations[:] = [replace(issue, requirement=issue.requirement or requirement_of(item))
                                     for issue in record.recommendations]  # fmt: skip
    check, severity = item.get_closest_marker("check"), item.get_closest_marker("severity")
    outcome.status, outcome.check = PASSED, check.args[0] if check else None
    outcome.severity, outcome.requirement = severity.args[0] if severity else "HIGH", requirement_of(item)
    outcome.issues = list(record.issues)
    outcome.cause = record.cause.text if record.cause else None
    outcome.about = (record.cause.about if record.cause else ()) or subjects_of(item)
    outcome.one_cause = item.get_closest_marker("separate_causes") is None
    outcome.examples = examples_of(item) if report.when == "teardown" else 0
    error = call.excinfo.value if call.excinfo is not None else None
    if report.skipped:
        if isinstance(error, Blocked):
            # a missing object of the report is the cause first named (a column role of a missing table, say)
            missing = blocked_by(task, causes_of(item).missing, uses_of(item))
            outcome.status, outcome.message = BLOCKED, missing.text if missing else error.cause
            outcome.about = missing.about if missing else outcome.about
        elif isinstance(error, NotApplicable):
            outcome.status, outcome.message = NOT_APPLICABLE, error.reason
        else:
            outcome.status = SKIPPED
            outcome.message = str(error.msg) if isinstance(error, Skipped) else str(report.longrepr)
    elif report.failed:
        outcome.status, outcome.message = FAILED, failure_message(call, report, outcome.description)
        attribute_to_its_cause(item, outcome, task, error)
        requirement = ledger.get(outcome.requirement) if outcome.requirement else None
        accepted = accepted_by(item, outcome)
        if outcome.status == BLOCKED:
            displayed_as_skipped(item, report, f"BLOCKED: {outcome.message}")
        elif accepted is not None:  # pytest's own reports (JUnit, HTML rows) say so, as the sign-off does
            displayed_as_skipped(item, report, f"ACCEPTED by {accepted.by} until {accepted.until} "
                                               f"({accepted.reason}): {outcome.message}")  # fmt: skip
        elif requirement is not None and not requirement.blocks:
            outcome.status = DIFFERS
            record.differ(outcome.description, requirement.requires, outcome.message)
            displayed_as_skipped(item, report, f"differs from the project's design (never blocking): {outcome.message}")
    requirement = ledger.get(outcome.requirement) if outcome.requirement else None
    if outcome.status == BLOCKED and requirement is not None and not requirement.blocks:
        # a design check that cannot run blocks nothing: what stops it is a finding of the contract's own checks
        outcome.status, outcome.message = NOT_APPLICABLE, f"not compared with our design: {outcome.message}"
    return outcome


def counts(outcome: Outcome) -> bool:
    """Whether the phase's outcome is the check's (a setup or teardown that passed says nothing of it)."""
    return outcome.task is not None and (outcome.phase == "call" or outcome.status != PASSED)


def accepted_by(item: pytest.Item, outcome: Outcome) -> Decision | None:
    """The team's decision accepting every finding the failed check recorded, if one does (the sign-off accepts
    the same: a check's recorded findings are its issues there)."""
    decided = getattr(item.config.option, "decisions", None)
    if not outcome.issues or decided is None:
        return None
    today = date.today()
    found = [decided.accepting(replace(issue, requirement=issue.requirement or outcome.requirement), today)
             for issue in outcome.issues]  # fmt: skip
    return found[0] if all(found) else None


def causes_of(item: pytest.Item) -> Causes:
    """The causes this run found (readiness.rules.causes), none before they are read."""
    return item.config.stash.get(CAUSES_KEY, Causes())


def denied(error: BaseException | None, refusals: list[str]) -> list[str]:
    """PostgreSQL's refusals for a lack of privilege ("permission denied for table t") in what the check's failure
    was raised from, and those readiness.acting.auth.attempt met during it (`refusals`, the check's record's: a
    check's own message often wraps the driver's error)."""
    found, seen = [], 0
    while error is not None and seen < 10:
        if isinstance(error, psycopg.errors.InsufficientPrivilege):
            found.append(error.diag.message_primary)
        error, seen = error.__cause__ or error.__context__, seen + 1
    return found + refusals


def attribute_to_its_cause(item: pytest.Item, outcome: Outcome, task: int, error: BaseException | None) -> None:
    """A failed existence check names its missing objects as its cause; a failed check of a subject the
    migration did not create is BLOCKED by that missing object (one root cause, not one failure per check),
    and so is one an API role's missing privilege breaks; a failed check of a table whose RLS breaks the
    report's rule has that table's cause (readiness.rules.rls)."""
    causes = causes_of(item)
    missing = causes.missing
    uses = uses_of(item)
    existence = item.get_closest_marker("existence")
    kind = existence.args[0] if existence is not None and existence.args else None
    if kind in missing:
        found = cause_of(kind, missing)
        outcome.cause, outcome.about = found.text, found.about
        return
    cause = blocked_by(task, missing, uses)  # an existence check of columns is BLOCKED by their missing table
    if cause is None and not outcome.issues:  # the privilege check itself records each gap as its own issue
        cause = privilege_cause(denied(error, record_of(item).refusals), causes.privileges)
    if cause is not None:
        outcome.status, outcome.message, outcome.cause, outcome.about = BLOCKED, cause.text, None, cause.about
        return
    cause = rls_cause(uses, causes.rls)
    if cause is not None:
        outcome.cause, outcome.about = cause.text, cause.about


# Each report's Outcome, decoded once: the reporter and pytest-html's two row hooks read the same report.
_DECODED: weakref.WeakKeyDictionary[pytest.TestReport, Outcome | None] = weakref.WeakKeyDictionary()


def outcome_of(report: pytest.TestReport) -> Outcome | None:
    """The check's Outcome (readiness.plugin.outcomes.decide) a report carries, in this process or from a worker."""
    if report not in _DECODED:
        data = getattr(report, "readiness", None)
        _DECODED[report] = Outcome.of(data) if data else None
    return _DECODED[report]
