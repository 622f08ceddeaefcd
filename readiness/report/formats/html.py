"""The sign-off as a person reads it in a browser: the section that opens pytest-html's report (readiness.html)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from readiness.acting import access
from readiness.report.signoff import PREREQUISITE_CHECKS, SignOff
from readiness.report.words import DECIDED_BY, EXECUTION_ORDER, PREREQUISITE_SQL, affected, requirement_words
from readiness.verdicts import Issue

FILE = "readiness.html"  # pytest-html's report, this section on top (readiness.plugin.html_rows)
STATUS_COLOURS = {
    "PASS": "#1a7f37",
    "ACCEPTED": "#9a6700",
    "FAIL": "#cf222e",
    "BLOCKED": "#bc4c00",
    "N/A": "#57606a",
    "NOT RUN": "#8250df",
    "APPROVED": "#1a7f37",
    "NOT APPROVED": "#cf222e",
}
# The report's Pass/Fail column; words, since a browser without an emoji font shows ❌ as a box.
STYLE = """
<style>
/* The report opens on the sign-off: pytest-html's package list moves below it, into the details. */
#environment-header, #environment { display: none; }
.signoff { font-family: sans-serif; max-width: 72em; }
.signoff table { border-collapse: collapse; margin: 0.5em 0 1em; }
.signoff th, .signoff td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }
.signoff .status { font-weight: bold; color: white; border-radius: 3px; padding: 1px 6px; white-space: nowrap; }
.signoff .verdict { font-size: 1.6em; font-weight: bold; padding: 0.4em 0.8em; color: white; display: inline-block; }
.signoff pre { background: #f6f8fa; padding: 0.6em; overflow-x: auto; }
.signoff td.access { font-size: 0.85em; }
.signoff td.access.ok { background: #dafbe1; }
.signoff td.access.leak { background: #cf222e; color: white; font-weight: bold; }
.signoff td.access.wrong { background: #ffebe9; color: #82071e; font-weight: bold; }
.signoff td.access.untried { color: #57606a; }
.signoff td.access.withheld { background: #eaeef2; color: #24292f; }
</style>
"""


def badge(status: str) -> str:
    """A coloured status label."""
    colour = STATUS_COLOURS.get(status, "#57606a")
    return f'<span class="status" style="background:{colour}">{escape(status)}</span>'


def table(headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are HTML already escaped by the caller."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def issues_table(heading: str, issues: Iterable[Issue], counted: bool = True) -> str:
    """Blocking issues (with the checks each affects and the requirement they break) or recommendations:
    severity, message, location."""
    rows = [
        [badge(i.severity), escape(i.message),
         *([escape(affected(i)), escape(requirement_words(i))] if counted else []),
         f"<code>{escape(i.location)}</code>", f"<code>{escape(i.rule or '')}</code>"]
        for i in issues
    ]  # fmt: skip
    headers = ["Severity", heading, *(["Checks", "Requirement"] if counted else []), "Location", "Rule"]
    return table(headers, rows) if rows else "<p>None.</p>"


def accepted_table(signoff: SignOff) -> str:
    """The findings accepted on the record: each with its rule, reason, who decided, until when, and where."""
    rows = [
        [badge(issue.severity), escape(issue.message), f"<code>{escape(decision.finding)}</code>",
         escape(decision.reason), escape(decision.by), escape(decision.until or "no expiry"),
         f"<code>{escape(decision.source)}</code> ({escape(DECIDED_BY[decision.kind])})"]
        for issue, decision in signoff.accepted
    ]  # fmt: skip
    headers = ["Severity", "Finding", "Accepted", "Reason", "By", "Until", "Decided in"]
    return table(headers, rows) if rows else "<p>None.</p>"


def access_table(signoff: SignOff) -> str:
    """The access matrix: a row per table and partition, a column per actor and command, each cell what PostgreSQL
    did, green as the report expects, red (naming the checks that prove it) where it is not."""
    rows = signoff.access_matrix
    if not rows:
        return "<p>No isolation check ran.</p>"
    actors = "".join(f'<th colspan="{len(access.COMMANDS)}">{escape(label)}<br><small>{escape(access.expected(a))}'
                     "</small></th>" for a, label in access.ACTORS.items())  # fmt: skip
    commands = "".join(f"<th>{command}</th>" for _, command in access.columns())
    body = []
    for table, cells in rows.items():
        tds = []
        for actor, cell in access.row_cells(cells):
            if cell is None:
                tds.append('<td class="access untried">not tried</td>')
                continue
            proof = "" if cell.as_expected else f"<br>{cell.verdict}: proved by " + ", ".join(
                f"<code>{escape(check)}</code>" for check in cell.checks)  # fmt: skip
            kind = {"ok": "ok", "LEAK": "leak", "withheld": "withheld"}.get(cell.verdict, "wrong")
            tds.append(f'<td class="access {kind}" title="expected: {escape(access.expected(actor))}">'
                       f"{escape(cell.observed)}{proof}</td>")  # fmt: skip
        body.append(f"<tr><th>{escape(table)}</th>{''.join(tds)}</tr>")
    return (f'<table id="access-matrix"><thead><tr><th rowspan="2">Table or partition</th>{actors}</tr>'
            f"<tr>{commands}</tr></thead><tbody>{''.join(body)}</tbody></table>")  # fmt: skip


def render(signoff: SignOff) -> str:
    """The sign-off section that opens the HTML report."""
    verdict = signoff.verdict
    parts = [
        STYLE,
        '<div class="signoff" id="signoff">',
        "<h2>Migration 0024 Production Readiness Sign-Off</h2>",
        f'<div class="verdict" id="verdict" style="background:{STATUS_COLOURS[verdict]}">'
        f"Production Deployment Authorization: {escape(verdict)}</div>",
        f'<p id="purpose">{escape(signoff.purpose).replace("**", "")}</p>',
        "<h3>Summary</h3>",
        table(
            ["Validation Task", "Status", "Comments"],
            [[f"{t.number}. {escape(t.name)}", badge(t.status), escape(t.comments)] for t in signoff.tasks],
        ),
        "<h3>Blocking Issues</h3>",
        issues_table("Issue", signoff.blocking_issues),
        '<h3 id="access">Tenant access, as observed</h3>',
        "<p>What PostgreSQL did when each actor tried each command on an organisation's rows, as task 2's checks saw "
        f"it; green where the report's policies expect it, red where not. {escape(access.PROOF)}</p>",
        access_table(signoff),
        recommendations(signoff),
        "<h3>Recommendations</h3>",
        issues_table("Recommendation", signoff.recommendations, counted=False),
        '<h3 id="accepted">Accepted risks</h3>',
        "<p>Findings that no longer block, on the record: why, by whom, until when.</p>",
        accepted_table(signoff),
        "<h3>Differences from the project's design</h3>",
        "<p>Where this migration chose otherwise than the project's own 0024, in what the report leaves open. "
        "Informational: none of these changes the verdict.</p>",
        table(
            ["Subject", "The project's 0024", "This migration"],
            [[escape(d.subject), escape(d.design), escape(d.found)] for d in signoff.design_differences],
        )
        if signoff.design_differences
        else "<p>None.</p>",
        "<h3>Production Readiness Checks</h3>",
        table(["Check", "Status"],
              [[escape(name), badge(status)] for name, status in signoff.readiness_checks.items()]),
        "<h3>Gating Criteria</h3>",
        "<ul>"
        + "".join(f"<li>[{'x' if met else ' '}] {escape(name)}</li>" for name, met in signoff.gating_criteria)
        + "</ul>",
        "<h3>Measurements</h3>",
        table(["Measurement", "Value"], [[escape(k), escape(v)] for k, v in signoff.figures.items()])
        if signoff.figures
        else "<p>None recorded.</p>",
        "<h3>Environment</h3>",
        table(["Item", "Value"], [[escape(k), f"<code>{escape(str(v))}</code>"] for k, v in environment(signoff)]),
        f"<details><summary>Rollback procedure ({escape(str(signoff.rollback))})</summary>"
        f"<pre>{escape(signoff.rollback_sql)}</pre></details>",
        "</div>",
    ]
    return "\n".join(parts)


def recommendations(signoff: SignOff) -> str:
    """When a prerequisite is missing: the report's recommended SQL and execution order."""
    rows = signoff.readiness_checks
    missing = [name for name, status in rows.items() if name in PREREQUISITE_CHECKS and status == "FAIL"]
    if not missing:
        return ""
    sql = "\n\n".join(path.read_text() for path in PREREQUISITE_SQL)
    steps = "".join(f"<li>{escape(step)}</li>" for step in EXECUTION_ORDER)
    return (
        "<h3>Recommendations: DO NOT DEPLOY MIGRATION 0024 YET</h3>"
        f"<p>Failed: {escape(', '.join(missing))}. Create the prerequisites (report, Recommendations, Steps 1-2):</p>"
        f"<pre>{escape(sql)}</pre><p>Required execution order:</p><ol>{steps}</ol>"
    )


def environment(signoff: SignOff) -> list[tuple[str, str]]:
    """Server, migration and rollback with their hashes, then what the fixtures recorded."""
    return [
        ("Server version", signoff.server_version),
        ("Migration", f"{signoff.migration}  sha256 {signoff.migration_sha256}"),
        ("Rollback", f"{signoff.rollback}  sha256 {signoff.rollback_sha256}"),
        *((key, value) for key, value in signoff.environment.items() if key != "server_version"),
        ("Hypothesis examples tried", f"{sum(signoff.examples.values())} in {len(signoff.examples)} property tests"),
    ]
