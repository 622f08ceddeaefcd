"""A team's decisions on the record: findings it accepts, each with a reason, who decided, and until when.

The decisions file (--decisions FILE, or readiness.toml beside the migration) holds one [[accept]] table a
finding: `finding` is a rule id (readiness.rules.decisions.rule_id: squawk:require-lock-timeout, report:indexes,
splinter:duplicate_index), optionally narrowed after an @ to an object the finding is about (Issue.about:
splinter:unindexed_foreign_keys@sync_progress) or to the file, or file and line, it is at (Issue.at:
squawk:prefer-robust-stmts@0024_down.sql, @0024.sql:13). An accepted finding stops blocking and is listed as such;
an expired decision accepts nothing (its findings block again, naming it); one that matches nothing is a
recommendation to remove it. A tenant-isolation leak is never accepted: such an entry is a usage error.
Its [deploy] table says what the deploy's own connection sets (lock_timeout, statement_timeout).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from readiness.errors import ReadinessUsageError
from readiness.schema import ledger
from readiness.verdicts import Issue, Location

FILE_NAME = "readiness.toml"  # found beside the migration when --decisions is not given
ACCEPTED, SQUAWK, SATISFIED = "accepted", "squawk", "satisfied"  # a team's decision, squawk's own, a setting's
# The findings no reason makes acceptable: a leak of one organisation's rows to another (or to anon).
NEVER_ACCEPTED = {
    "report:isolation": "it is a tenant-isolation leak (one organisation reads or writes another's rows, or anon "
    "reads any): no reason makes that acceptable. Fix the policy instead"
}
NEVER_ACCEPTED_SEVERITY = "CRITICAL"  # a finding that stops the migration or breaks isolation stays blocking
PREFIXES = ("report", "rule", "squawk", "splinter", "readiness")
DEPLOY_SETTINGS = ("lock_timeout", "statement_timeout")
EXAMPLE = """[[accept]]
finding = "squawk:require-lock-timeout"
reason = "our deploy tool sets lock_timeout = 5s on its connection"
by = "dba@example.com"
until = 2027-03-31"""
_RULE = re.compile(r"^([a-z]+):([A-Za-z0-9_.-]+)$")


@dataclass(frozen=True)
class Decision:
    """One accepted finding, as the team wrote it (or as squawk's own config or comments, or a setting, say)."""

    finding: str  # a rule id, optionally "@object"
    reason: str
    by: str
    until: str  # an ISO date, "" when it does not expire (squawk's own decisions, a setting)
    source: str  # where it is written: readiness.toml:12, .squawk.toml, 0024.sql:40, pg_db_role_setting
    kind: str = ACCEPTED
    at: Location | None = None  # where the decisions file writes it, when it does

    @property
    def rule(self) -> str:
        return self.finding.partition("@")[0]

    @property
    def object(self) -> str:
        return self.finding.partition("@")[2]

    def expired(self, today: date) -> bool:
        return bool(self.until) and date.fromisoformat(self.until) < today

    def matches(self, issue: Issue) -> bool:
        """Whether it accepts `issue`: the same rule id, and the object (if any) one the finding is about, or the
        file (file:line) it is at."""
        if rule_id(issue) != self.rule:
            return False
        named = self.object
        return not named or any(name == named or name.endswith(f".{named}") for name in issue.about) or (
            issue.at is not None and at_file(named, issue.at)
        )

    def as_json(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in ("finding", "reason", "by", "until", "source", "kind")}


@dataclass(frozen=True)
class Decisions:
    """What a decisions file holds: its accepted findings and what the deploy's connection sets."""

    path: Path | None = None
    accepted: tuple[Decision, ...] = ()
    deploy: dict[str, str] = field(default_factory=dict)  # setting -> value the deploy's connection sets

    def matching(self, issue: Issue) -> list[Decision]:
        """The decisions naming `issue`, expired or not, in the file's order."""
        return [decision for decision in self.accepted if decision.matches(issue)]

    def current(self, issue: Issue, today: date) -> Decision | None:
        """The first decision naming `issue` that has not expired."""
        return next((decision for decision in self.matching(issue) if not decision.expired(today)), None)

    def accepting(self, issue: Issue, today: date) -> Decision | None:
        """The decision that accepts `issue` today: the current one, never for a CRITICAL finding."""
        return None if issue.severity == NEVER_ACCEPTED_SEVERITY else self.current(issue, today)


def at_file(named: str, at: Location) -> bool:
    """Whether `named` (0024.sql, migrations/0024.sql:13, 0024.sql:13:1) is the file, or its line, `at` is at."""
    file, _, line = named.partition(":")
    parts = Path(file).parts
    return at.path.parts[-len(parts):] == parts and line in ("", str(at.line), f"{at.line}:{at.column}")


def rule_id(issue: Issue) -> str:
    """The stable id of a finding's rule: its own (squawk:..., splinter:...), else its requirement's
    (report.indexes -> report:indexes)."""
    if issue.rule:
        return issue.rule
    if issue.requirement:
        source, _, name = issue.requirement.partition(".")
        return f"{source}:{name}"
    return "readiness:unattributed"


def find(migration: Path, given: Path | None) -> Path | None:
    """The decisions file: --decisions, else readiness.toml beside the migration, else none."""
    if given is not None:
        return given.resolve()
    beside = migration.resolve().parent / FILE_NAME
    return beside if beside.is_file() else None


def load(path: Path | None) -> Decisions:
    """The decisions of `path`, every entry checked; ReadinessUsageError names the entry and what to write."""
    if path is None:
        return Decisions()
    if not path.is_file():
        raise ReadinessUsageError(f"--decisions file not found: {path}. Give a TOML file such as:\n{EXAMPLE}")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ReadinessUsageError(f"{path} is not valid TOML: {error}. Write it as:\n{EXAMPLE}") from None
    unknown = sorted(set(data) - {"accept", "deploy"})
    if unknown:
        raise ReadinessUsageError(f"{path}: unknown table(s) {', '.join(unknown)}: it holds [[accept]] and [deploy].")
    entries = data.get("accept", [])
    if not isinstance(entries, list):
        raise ReadinessUsageError(f"{path}: write each accepted finding as its own [[accept]] table:\n{EXAMPLE}")
    lines = [number for number, line in enumerate(text.splitlines(), 1) if line.strip().startswith("[[accept]]")]
    accepted = tuple(
        _decision(path, entry, lines[index] if index < len(lines) else 0) for index, entry in enumerate(entries)
    )
    return Decisions(path, accepted, _deploy(path, data.get("deploy", {})))


def _decision(path: Path, entry: dict[str, object], line: int) -> Decision:
    where = f"{path}:{line} ([[accept]] finding = {entry.get('finding', '?')!r})"
    missing = [key for key in ("finding", "reason", "by", "until") if not str(entry.get(key, "")).strip()]
    if missing:
        raise ReadinessUsageError(
            f"{where}: missing {', '.join(missing)}. A decision says what it accepts (finding), why (reason), who "
            f"decided (by) and until when (until, a date):\n{EXAMPLE}"
        )
    unknown = sorted(set(entry) - {"finding", "reason", "by", "until"})
    if unknown:
        raise ReadinessUsageError(f"{where}: unknown key(s) {', '.join(unknown)}: give finding, reason, by, until.")
    finding = str(entry["finding"]).strip()
    rule = finding.partition("@")[0]
    matched = _RULE.match(rule)
    if matched is None or matched.group(1) not in PREFIXES:
        raise ReadinessUsageError(
            f"{where}: {rule!r} is not a rule id. Copy it from the sign-off's `rule` (signoff.json, or the Rule "
            f"column), such as squawk:require-lock-timeout or report:indexes; it starts with one of "
            f"{', '.join(PREFIXES)}."
        )
    if matched.group(1) in ("report", "rule") and f"{matched.group(1)}.{matched.group(2)}" not in ledger.requirements():
        raise ReadinessUsageError(
            f"{where}: {rule} is no requirement of the ledger (readiness/schema/ledger.toml, docs/contract.md): "
            "copy the rule id from the sign-off."
        )
    if rule in NEVER_ACCEPTED:
        raise ReadinessUsageError(f"{where}: {rule} cannot be accepted: {NEVER_ACCEPTED[rule]}.")
    until = entry["until"]
    if isinstance(until, str):
        try:
            until = date.fromisoformat(until)
        except ValueError:
            until = None
    if not isinstance(until, date):
        raise ReadinessUsageError(f"{where}: until = {entry['until']!r} is not a date: write it as until = 2027-03-31.")
    return Decision(finding, str(entry["reason"]).strip(), str(entry["by"]).strip(), until.isoformat(),
                    f"{path}:{line}", at=Location(path, line))  # fmt: skip


def _deploy(path: Path, table: object) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ReadinessUsageError(f"{path}: [deploy] is a table, e.g. [deploy] lock_timeout = \"5s\".")
    unknown = sorted(set(table) - set(DEPLOY_SETTINGS))
    if unknown:
        raise ReadinessUsageError(
            f"{path}: [deploy] {', '.join(unknown)}: it says only what the deploy's connection sets, "
            f"{' and '.join(DEPLOY_SETTINGS)}."
        )
    return {name: str(value) for name, value in table.items()}


@dataclass
class Judged:
    """Findings after the decisions: what still blocks, what is recommended, what is accepted and why."""

    blocking: list[Issue] = field(default_factory=list)
    recommendations: list[Issue] = field(default_factory=list)
    accepted: list[tuple[Issue, Decision]] = field(default_factory=list)
    expired: list[tuple[Issue, Decision]] = field(default_factory=list)  # findings blocking again


def judge(blocking: list[Issue], recommendations: list[Issue], decisions: Decisions, today: date) -> Judged:
    """Each finding against the team's decisions: accepted by the first that matches it and has not expired."""
    judged, used = Judged(), set()
    for blocks, issue in [*((True, i) for i in blocking), *((False, i) for i in recommendations)]:
        matching = decisions.matching(issue)
        used.update(matching)
        accepted, current = decisions.accepting(issue, today), decisions.current(issue, today)
        if accepted is not None:
            judged.accepted.append((issue, accepted))
            continue
        if current is not None:  # CRITICAL
            issue = replace(issue, message=f"{issue.message} (a CRITICAL finding is never accepted: the decision at "
                                           f"{current.source} does not apply to it)")  # fmt: skip
        elif matching and blocks:
            decision = matching[0]
            judged.expired.append((issue, decision))
            issue = replace(issue, message=f"{issue.message} (its acceptance by {decision.by} expired on "
                                           f"{decision.until}: {decision.source}; renew it with a reason, or fix the "
                                           "finding)")  # fmt: skip
        (judged.blocking if blocks else judged.recommendations).append(issue)
    for decision in decisions.accepted:
        if decision not in used:
            judged.recommendations.append(
                Issue("LOW", f"the decision accepting {decision.finding} (by {decision.by}) matches no finding of "
                             "this run: remove it from the decisions file", decision.source,
                      rule="readiness:unmatched-decision", at=decision.at)  # fmt: skip
            )
    return judged

