"""The findings where CI shows them: SARIF 2.1.0 for GitHub code scanning, GitLab's code-quality JSON.

Every blocking issue, recommendation and accepted finding, with its rule id and level, located at the file and
line of the migration, its rollback or the decisions file where the finding has one; a finding about the
migration as a whole is located at the file it is about (the rollback's task 8, else the migration), at the
line that first names its subject when the message names one the file has. Accepted
findings are in SARIF as suppressed results (their reason the justification), and not in code quality.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from readiness.errors import ReadinessUsageError
from readiness.report.signoff import SignOff
from readiness.rules.decisions import Decision
from readiness.schema import ledger
from readiness.schema.apply import ApplyError, Location, first_reference
from readiness.verdicts import Issue

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL = "readiness-0024"
LEVELS = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}
CODE_QUALITY = {"CRITICAL": "blocker", "HIGH": "critical", "MEDIUM": "major", "LOW": "minor"}
_LOCATED = re.compile(r"^(?P<path>.+?):(?P<line>\d+)(?::(?P<column>\d+))?$")
_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")  # names as 0024's objects have them: sync_progress_select


def findings(signoff: SignOff) -> list[tuple[Issue, Decision | None]]:
    """Every finding of the run: blocking, recommended, then accepted (with its decision)."""
    return [
        *((issue, None) for issue in signoff.blocking_issues),
        *((issue, None) for issue in signoff.listed_recommendations),
        *signoff.accepted,
    ]


def location(issue: Issue, signoff: SignOff) -> tuple[Path, int | None, int | None]:
    """The file, line and column a finding is at: its own location when that is a file:line[:column], else the
    file it is about (the rollback's, for task 8 alone; the migration's otherwise)."""
    found = _LOCATED.match(issue.location)
    if found and Path(found["path"]).is_file():
        column = int(found["column"]) if found["column"] else None
        return Path(found["path"]).resolve(), int(found["line"]), column
    if issue.location and Path(issue.location).is_file():
        return Path(issue.location).resolve(), None, None
    about = (signoff.rollback if issue.tasks == (8,) else signoff.migration).resolve()
    found_at = subject_of(about, issue.message)
    return about, found_at.line if found_at else None, found_at.column if found_at else None


def subject_of(path: Path, message: str) -> Location | None:
    """Where the file first names what the message is about: of the names in it the file has, the most specific
    (the longest: sync_activity_log_select before sync_activity_log)."""
    names = sorted(set(_NAME.findall(message)), key=len, reverse=True)
    try:
        return next((found for name in names if (found := first_reference(path, name)) is not None), None)
    except (ApplyError, ReadinessUsageError):  # a file that does not parse is located by its own finding
        return None


def relative(path: Path, root: Path) -> str | None:
    """`path` relative to `root` when under it (how code scanning matches a repository's files), else None."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else None


def fingerprint(issue: Issue) -> str:
    """The same finding gets the same fingerprint across runs and checkouts: its rule and message without paths."""
    message = re.sub(r"(/[^\s:]+/)", "", issue.message)
    return hashlib.sha256(f"{issue.rule}\n{message}".encode()).hexdigest()[:32]


def rule_description(rule: str) -> dict[str, object]:
    """A SARIF reportingDescriptor: the requirement's words for the report's and our rules, the linter's name else."""
    source, _, name = rule.partition(":")
    requirement = ledger.requirements().get(f"{source}.{name}")
    descriptor: dict[str, object] = {"id": rule, "shortDescription": {"text": requirement.requires if requirement
                                                                      else f"{source} rule {name}"}}  # fmt: skip
    if requirement is not None:
        descriptor["fullDescription"] = {"text": f"{requirement.cites}: {requirement.quote}"}
    if source == "squawk":
        descriptor["helpUri"] = f"https://squawkhq.com/docs/{name}"
    return descriptor


def sarif(signoff: SignOff, root: Path) -> dict[str, object]:
    """reports/readiness.sarif: one run of this tool, its rules, and a result per finding."""
    found = findings(signoff)
    blocking = set(signoff.blocking_issues)
    rules = sorted({issue.rule or "readiness:unattributed" for issue, _ in found})
    results = []
    for issue, decision in found:
        path, line, column = location(issue, signoff)
        region = {"startLine": line, **({"startColumn": column} if column else {})} if line else {"startLine": 1}
        result: dict[str, object] = {
            "ruleId": issue.rule,
            "ruleIndex": rules.index(issue.rule or "readiness:unattributed"),
            "level": LEVELS.get(issue.severity, "warning"),
            "message": {"text": issue.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": under, "uriBaseId": "%SRCROOT%"} if (under := relative(path, root))
                                    else {"uri": path.as_uri()},
                "region": region,
            }}],
            "partialFingerprints": {"readinessFinding/v1": fingerprint(issue)},
            "properties": {"severity": issue.severity, "blocking": issue in blocking},
        }  # fmt: skip
        if decision is not None:
            why = f"{decision.reason} (by {decision.by}, until {decision.until or 'no expiry'}; {decision.source})"
            result["suppressions"] = [{"kind": "external", "justification": why}]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL, "rules": [
                rule_description(rule) for rule in rules]}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": root.as_uri() + "/"}},
            "results": results,
            "properties": {"verdict": signoff.verdict},
        }],
    }  # fmt: skip


def codequality(signoff: SignOff, root: Path) -> list[dict[str, object]]:
    """reports/codequality.json in GitLab's format: the findings not accepted, each at its file and line."""
    report = []
    for issue, decision in findings(signoff):
        if decision is not None:
            continue
        path, line, _ = location(issue, signoff)
        report.append({
            "description": issue.message,
            "check_name": issue.rule,
            "fingerprint": fingerprint(issue),
            "severity": CODE_QUALITY.get(issue.severity, "info"),
            "location": {"path": relative(path, root) or str(path), "lines": {"begin": line or 1}},
        })  # fmt: skip
    return report
