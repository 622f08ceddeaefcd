"""squawk, the migration linter many teams run in CI, on the migration under test and its rollback.

What each squawk rule means for this gate is the table in readiness/rules/squawk_rules.toml: blocking,
a recommendation, or not applicable, for the migration and for the rollback, each with why. A
rule the table does not know (a newer squawk's) is a recommendation, listed, never dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

RULES_FILE = Path(__file__).with_name("squawk_rules.toml")
BLOCKING, RECOMMENDATION, NOT_APPLICABLE = "blocking", "recommendation", "not applicable"
# The rules whose blocking depends on whether the file locks a relation that existed before it.
WHEN_LOCKING = "blocking when it locks an existing table"
HOW_TO_INSTALL = "Run `make setup` (it installs squawk-cli from PyPI into .venv), or `pip install squawk-cli`."
BINARY_ENV = "READINESS_SQUAWK"  # the squawk to run, when not the one beside this Python


class SquawkUnavailable(Exception):
    """squawk is not installed or did not run; the message says how to get it."""


@dataclass(frozen=True)
class Finding:
    """One squawk finding, with the rule table's decision for it."""

    rule: str
    location: str  # file:line:column, 1-based line and column
    message: str
    decision: str
    why: str

    def __str__(self) -> str:
        return f"{self.location}: squawk {self.rule}: {self.message} ({self.decision}: {self.why})"


def rules() -> dict[str, dict[str, dict[str, str]]]:
    """The rule table: {"migration" | "rollback": {rule: {"decision": ..., "why": ...}}}."""
    return tomllib.loads(RULES_FILE.read_text())


def binary() -> Path:
    """READINESS_SQUAWK, else the squawk beside this Python, else on PATH; SquawkUnavailable when none."""
    beside = Path(sys.executable).with_name("squawk")
    found = os.environ.get(BINARY_ENV) or (str(beside) if beside.is_file() else shutil.which("squawk"))
    if found is None or not os.access(found, os.X_OK):
        raise SquawkUnavailable(f"squawk is not installed, so its rules were not checked. {HOW_TO_INSTALL}")
    return Path(found)


def lint(path: Path, server_version: str, kind: str, locks_existing: bool) -> list[Finding]:
    """squawk's findings on `path` (kind "migration" or "rollback"), each with its decision."""
    try:
        done = subprocess.run(
            [str(binary()), "--reporter", "json", "--pg-version", server_version, str(path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SquawkUnavailable(f"squawk did not run: {error}. {HOW_TO_INSTALL}") from None
    try:
        raw = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise SquawkUnavailable(f"squawk answered {done.returncode}: {(done.stderr or done.stdout)[:500]}") from None
    table = rules()[kind]
    findings = []
    for item in raw:
        rule = item["rule_name"]
        entry = table.get(rule, {"decision": RECOMMENDATION, "why": "a rule this gate's table does not know yet"})
        decision = entry["decision"]
        if decision == WHEN_LOCKING:
            decision = BLOCKING if locks_existing else RECOMMENDATION
        location = f"{path}:{item['line'] + 1}:{item['column'] + 1}"  # squawk counts lines from 0
        findings.append(Finding(rule, location, item["message"], decision, entry["why"]))
    return findings
