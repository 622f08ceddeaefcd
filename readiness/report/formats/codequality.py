"""reports/codequality.json in GitLab's code-quality format: the findings not accepted, each at its file and line."""

from __future__ import annotations

import json

from readiness.report.formats.scanning import findings, fingerprint, location, relative
from readiness.report.signoff import SignOff

FILE = "codequality.json"
CODE_QUALITY = {"CRITICAL": "blocker", "HIGH": "critical", "MEDIUM": "major", "LOW": "minor"}


def render(signoff: SignOff) -> str:
    """The whole sign-off in this format."""
    return json.dumps(codequality(signoff), indent=2) + "\n"


def codequality(signoff: SignOff) -> list[dict[str, object]]:
    """The findings not accepted, each at its file and line, relative to where the run started."""
    root = signoff.root
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
