"""reports/readiness.sarif: SARIF 2.1.0 for GitHub code scanning, one result per finding at its file and line;
accepted findings are suppressed results, their reason the justification."""

from __future__ import annotations

import json

from readiness.report.formats.scanning import findings, fingerprint, location, relative
from readiness.report.signoff import SignOff
from readiness.schema import ledger

FILE = "readiness.sarif"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL = "readiness-0024"
LEVELS = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}


def render(signoff: SignOff) -> str:
    """The whole sign-off in this format."""
    return json.dumps(sarif(signoff), indent=2) + "\n"


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


def sarif(signoff: SignOff) -> dict[str, object]:
    """One run of this tool, its rules, and a result per finding; paths relative to where the run started."""
    root = signoff.root
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
