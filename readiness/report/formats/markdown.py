"""reports/readiness.md: the sign-off in the layout of the hand-written readiness report, for a review (and, under
GitHub Actions, the job's summary: readiness.report.formats.summary)."""

from __future__ import annotations

from datetime import UTC, datetime

from readiness.acting import access
from readiness.report.signoff import PREREQUISITE_CHECKS, SignOff
from readiness.report.words import DECIDED_BY, EXECUTION_ORDER, PREREQUISITE_SQL, affected, requirement_words

FILE = "readiness.md"
MARKS = {"PASS": "✓ PASS", "FAIL": "❌ FAIL", "BLOCKED": "❌ FAIL", "N/A": "-", "NOT RUN": "❌ FAIL"}  # as the report
CHECK_MARKS = {"PASS": "✓ PASS", "ACCEPTED": "⚠ ACCEPTED"}  # a readiness row; any other is ❌
HEADLINE = {
    "PASS": "PASSED ✓",
    "FAIL": "FAILED ❌",
    "BLOCKED": "CANNOT VALIDATE ❌",
    "N/A": "NOT APPLICABLE",
    "NOT RUN": "NOT RUN ❌",
}


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def severity(signoff: SignOff) -> str:
    """The report's headline severity: the worst of the blocking issues."""
    severities = {issue.severity for issue in signoff.blocking_issues}
    return "CRITICAL" if "CRITICAL" in severities else "HIGH" if severities else "NONE"


def access_markdown(signoff: SignOff) -> list[str]:
    """The access matrix: ✓ where PostgreSQL did what the report expects, ❌ (naming the checks) where not."""
    rows = signoff.access_matrix
    if not rows:
        return ["No isolation check ran."]
    headers = [f"{actor} {command}" for actor, command in access.columns()]
    lines = ["Expected: " + "; ".join(f"{label}: {access.expected(a)}" for a, label in access.ACTORS.items()) + ".", "",
             "| Table or partition | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]  # fmt: skip
    for table, cells in rows.items():
        marks = [
            "-" if found is None
            else f"✓ {'withheld: ' if found.withheld else ''}{cell(found.observed)}" if found.as_expected
            else f"❌ {found.verdict}: {cell(found.observed)} ({cell(', '.join(found.checks))})"
            for _, found in access.row_cells(cells)
        ]  # fmt: skip
        lines.append(f"| {table} | " + " | ".join(marks) + " |")
    return lines


def render(signoff: SignOff) -> str:
    """The whole document, generated from the run."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    approved = signoff.verdict == "APPROVED"
    lines = [
        "# Migration 0024 Production Readiness Verification Report",
        "",
        f"**Generated:** {now}",
        f"**Status:** {signoff.verdict}",
        f"**Severity:** {severity(signoff)}",
        "",
        "## Executive Summary",
        "",
        "Migration 0024 (Sync Preview, Progress & Logging). " + signoff.purpose,
        "",
        "---",
        "",
        "## Detailed Validation Results",
        "",
    ]
    for task in signoff.tasks:
        lines += [
            f"### {task.number}. {task.name} - {HEADLINE[task.status]}",
            "",
            f"**Status:** {task.status} ({task.passed} passed, {task.failed} failed, {task.blocked} blocked)",
            "",
            task.comments,
            "",
        ]
    lines += ["### Blocking Issues", ""]
    lines += [f"{i}. **{issue.severity}:** {issue.message} (`{issue.location}`; {affected(issue)}; rule `{issue.rule}`)"
              + (f"\n   - Requirement: {requirement_words(issue)}" if issue.requirement else "")
              for i, issue in enumerate(signoff.blocking_issues, 1)] or ["None."]  # fmt: skip
    lines += ["", "### Tenant access, as observed", "", access.PROOF, ""] + access_markdown(signoff)
    lines += ["", "### Recommendations (not blocking)", ""]
    lines += [f"{i}. **{issue.severity}:** {issue.message} (`{issue.location}`; rule `{issue.rule}`)" for i, issue in
              enumerate(signoff.recommendations, 1)] or ["None."]  # fmt: skip
    lines += ["", "### Accepted risks", ""]
    if signoff.accepted:
        lines += ["| Finding | Accepted | Reason | By | Until | Decided in |", "|---|---|---|---|---|---|"]
    lines += [f"| {cell(issue.message)} | `{d.finding}` | {cell(d.reason)} | {cell(d.by)} | {d.until or 'no expiry'} | "
              f"`{cell(d.source)}` ({DECIDED_BY[d.kind]}) |" for issue, d in signoff.accepted] or ["None."]  # fmt: skip
    lines += ["", "### Differences from the project's design (informational)", ""]
    lines += [f"- **{cell(d.subject)}**: the project's 0024 has {cell(d.design)}; this migration has {cell(d.found)}"
              for d in signoff.design_differences] or ["None."]  # fmt: skip
    lines += ["", "### Production Readiness Checks", "", "| Check | Status |", "|-------|--------|"]
    lines += [
        f"| {name} | {CHECK_MARKS.get(status, '❌ ' + status)} |" for name, status in signoff.readiness_checks.items()
    ]
    lines += ["", f"**Production Readiness:** {signoff.verdict}", ""]
    if any(signoff.readiness_checks.get(name) == "FAIL" for name in PREREQUISITE_CHECKS):
        lines += ["## Recommendations", "", "### CRITICAL: DO NOT DEPLOY MIGRATION 0024 YET", "", "```sql"]
        lines += ["\n".join(path.read_text().rstrip() for path in PREREQUISITE_SQL), "```", ""]
        lines += ["### Required Execution Order", ""] + [f"{i}. {step}" for i, step in enumerate(EXECUTION_ORDER, 1)]
        lines += [""]
    if signoff.figures:
        lines += ["## Measurements", "", "| Measurement | Value |", "|---|---|"]
        lines += [f"| {cell(name)} | {cell(value)} |" for name, value in signoff.figures.items()] + [""]
    lines += ["## Rollback Procedure", "", "```sql", signoff.rollback_sql.rstrip(), "```", ""]
    lines += ["## Summary Table", "", "| Validation Task | Status | Pass/Fail | Comments |",
              "|-----------------|--------|-----------|----------|"]  # fmt: skip
    lines += [f"| {t.number}. {t.name} | {t.status} | {MARKS[t.status]} | {cell(t.comments)} |" for t in signoff.tasks]
    lines += ["", f"**OVERALL STATUS:** {'✓' if approved else '❌'} {signoff.verdict} FOR DEPLOYMENT", "", "---", ""]
    lines += ["## Sign-Off", "", f"**Production Deployment Authorization:** {signoff.verdict}", "",
              "**Gating Criteria Status:**"]  # fmt: skip
    lines += [f"- [{'x' if met else ' '}] {name}" for name, met in signoff.gating_criteria]
    lines += [
        "",
        "---",
        "",
        f"**Verification Report Generated:** {now}",
        "**Verification Tool:** readiness-0024 (pytest -m readiness)",
        f"**Database:** PostgreSQL {signoff.server_version} ({signoff.environment.get('target', 'unknown')})",
        f"**Migration:** {signoff.migration} (sha256 {signoff.migration_sha256})",
        f"**Status:** {signoff.verdict}",
        "",
    ]
    return "\n".join(lines)
