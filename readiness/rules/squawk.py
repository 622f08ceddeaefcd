"""squawk, the migration linter many teams run in CI, on the migration under test and its rollback.

What each squawk rule means for this gate is the table in readiness/rules/squawk_rules.toml: blocking,
a recommendation, or not applicable, for the migration and for the rollback, each with why. A
rule the table does not know (a newer squawk's) is a recommendation, listed, never dropped.

The team's own squawk decisions are honoured and shown as such: the rules its .squawk.toml excludes (the
first found beside the file or above it) and its `-- squawk-ignore` comments. squawk runs with an empty
config on the file, and once more with the comments made inert, so every finding is seen with what decided it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from readiness.rules.decisions import SATISFIED, SQUAWK, Decision
from readiness.schema.statements import text_of
from readiness.verdicts import Location

RULES_FILE = Path(__file__).with_name("squawk_rules.toml")
BLOCKING, RECOMMENDATION, NOT_APPLICABLE = "blocking", "recommendation", "not applicable"
# The rules whose blocking depends on whether the file locks a relation that existed before it.
WHEN_LOCKING = "blocking when it locks an existing table"
HOW_TO_INSTALL = "Run `make setup` (it installs squawk-cli from PyPI into .venv), or `pip install squawk-cli`."
BINARY_ENV = "READINESS_SQUAWK"  # the squawk to run, when not the one beside this Python
CONFIG_FILE = ".squawk.toml"
IGNORE = re.compile(r"--\s*squawk-ignore(-file)?\b([^\n]*)")
# The settings a deploy may make for itself (per role, per connection) in place of SET in the file.
TIMEOUT_RULES = {"require-lock-timeout": "lock_timeout", "require-statement-timeout": "statement_timeout"}
# A timeout SET to zero is no timeout (postgres-facts.md): squawk takes any SET for one, so the gate hides such a SET
# from it, and squawk asks for a timeout as if the file set none.
ZERO_TIMEOUT = re.compile(
    r"(?im)^[ \t]*SET[ \t]+(?:LOCAL[ \t]+|SESSION[ \t]+)?(lock_timeout|statement_timeout)[ \t]*(?:=|TO)[ \t]*"
    r"'?[ \t]*0+[ \t]*(?:ms|s|min)?[ \t]*'?[ \t]*;"
)


class SquawkUnavailable(Exception):
    """squawk is not installed or did not run; the message says how to get it."""


@dataclass(frozen=True)
class Finding:
    """One squawk finding, with the rule table's decision for it, and what of the team's settled it, if anything."""

    rule: str
    location: Location  # 1-based line and column
    message: str
    decision: str
    why: str
    settled: Decision | None = None  # what of the team's settled it: its .squawk.toml, a comment, a deploy setting

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


def config_of(path: Path) -> tuple[Path | None, list[str]]:
    """The team's .squawk.toml nearest the file (beside it or above) and the rules it excludes."""
    for folder in path.resolve().parents:
        config = folder / CONFIG_FILE
        if config.is_file():
            try:
                excluded = tomllib.loads(config.read_text(encoding="utf-8")).get("excluded_rules", [])
            except tomllib.TOMLDecodeError as error:
                message = f"{config} is not valid TOML ({error}): fix it, squawk cannot read it either"
                raise SquawkUnavailable(message) from None
            return config, [str(rule) for rule in excluded]
    return None, []


def run(path: Path, text: str, server_version: str) -> list[dict[str, object]]:
    """squawk's raw findings on `text`, reported at `path`, with no config of its own."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as empty:
        try:
            done = subprocess.run(
                [str(binary()), "--config", empty.name, "--reporter", "json", "--pg-version", server_version,
                 "--stdin-filepath", str(path)],
                input=text, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SquawkUnavailable(f"squawk did not run: {error}. {HOW_TO_INSTALL}") from None
    try:
        return json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise SquawkUnavailable(f"squawk answered {done.returncode}: {(done.stderr or done.stdout)[:500]}") from None


@dataclass(frozen=True)
class Comment:
    """A `-- squawk-ignore[-file] [rules]` comment of the file."""

    line: int
    whole_file: bool
    rules: tuple[str, ...]  # none: every rule
    text: str

    def names(self, rule: str) -> bool:
        return not self.rules or rule in self.rules


def comments(text: str) -> list[Comment]:
    """The file's squawk-ignore comments, in its order."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        match = IGNORE.search(line)
        if match:
            named = tuple(re.findall(r"[a-z][a-z0-9-]+", match.group(2).split("--")[0]))
            found.append(Comment(number, bool(match.group(1)), named, match.group(0).strip()))
    return found


def comment_for(found: list[Comment], rule: str, line: int) -> Comment | None:
    """The comment that made squawk ignore `rule` at `line`: one for the whole file, else the nearest before it."""
    whole = [c for c in found if c.whole_file and c.names(rule)]
    before = [c for c in found if not c.whole_file and c.line <= line and c.names(rule)]
    return (whole or before[-1:] or [None])[0]


def lint(
    path: Path, server_version: str, kind: str, locks_existing: bool, deploy: dict[str, tuple[str, str]] | None = None
) -> list[Finding]:
    """squawk's findings on `path` (kind "migration" or "rollback"), each with its decision, and those the team
    settled, saying how: its .squawk.toml, a `-- squawk-ignore` comment, or a timeout the deploy sets itself
    (`deploy`: setting -> (value, where it is set))."""
    text = text_of(path)
    disabled = {match.group(1).lower(): text[: match.start()].count("\n") + 1 for match in ZERO_TIMEOUT.finditer(text)}
    text = ZERO_TIMEOUT.sub(lambda m: " " * len(m.group(0)), text)  # same lines and columns, no SET to zero
    found_comments = comments(text)
    inert = IGNORE.sub(lambda m: m.group(0).replace("squawk-ignore", "squawk-inert_"), text)
    every = run(path, inert, server_version)
    honoured = None  # what squawk reports when it honours the comments, if there are any
    if found_comments:
        honoured = {(f["rule_name"], f["line"], f["column"]) for f in run(path, text, server_version)}
    config, excluded = config_of(path)
    table = rules()[kind]
    findings = []
    for item in every:
        rule, line = str(item["rule_name"]), int(item["line"]) + 1  # squawk counts lines from 0
        entry = table.get(rule, {"decision": RECOMMENDATION, "why": "a rule this gate's table does not know yet"})
        decision = entry["decision"]
        if decision == WHEN_LOCKING:
            decision = BLOCKING if locks_existing else RECOMMENDATION
        location = Location(path, line, int(item["column"]) + 1)
        settled = None
        setting = TIMEOUT_RULES.get(rule)
        if setting and deploy and setting in deploy:
            value, where = deploy[setting]
            settled = Decision(f"squawk:{rule}@{path.name}", f"{setting} = {value} is set {where}, so the deploy's "
                               "statements wait no longer than that", where, "", where, SATISFIED)  # fmt: skip
        elif rule in excluded and config is not None:
            settled = Decision(f"squawk:{rule}", f"excluded_rules in {config}", "the team's squawk config", "",
                               str(config), SQUAWK)  # fmt: skip
        elif honoured is not None and (rule, item["line"], item["column"]) not in honoured:
            comment = comment_for(found_comments, rule, line)
            where = f"{path.name}:{comment.line}" if comment else path.name
            settled = Decision(f"squawk:{rule}@{location}", f"`{comment.text if comment else 'squawk-ignore'}` in the "
                               "file", "a squawk-ignore comment", "", where, SQUAWK)  # fmt: skip
        message = str(item["message"])
        if setting in disabled:
            message += f" (the file's SET {setting} to 0, at line {disabled[setting]}, means no timeout at all)"
        findings.append(Finding(rule, location, message, decision, entry["why"], settled))
    return findings
