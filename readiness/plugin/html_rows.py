"""pytest-html's hooks: the sign-off on top of its report, and each check's row as its Outcome says it (its
docstring, what it expected and found, the requirement it enforces), never a traceback."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from readiness.plugin.outcomes import outcome_of
from readiness.report.formats import html
from readiness.schema import ledger
from readiness.verdicts import BLOCKED, DIFFERS, FAILED

if TYPE_CHECKING:
    from readiness.plugin.reporter import SignOffReporter


class HtmlSignOff:
    """pytest-html hooks: the sign-off on top of the report, each test's docstring in its row."""

    def __init__(self, reporter: SignOffReporter):
        self.reporter = reporter

    def pytest_html_report_title(self, report) -> None:  # type: ignore[no-untyped-def]
        report.title = "Migration 0024 Production Readiness"

    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:  # type: ignore[no-untyped-def]
        if self.reporter.signoff is not None:  # signed by the reporter's sessionfinish, which runs first
            prefix.append(html.render(self.reporter.signoff))

    def pytest_html_results_table_header(self, cells) -> None:  # type: ignore[no-untyped-def]
        cells.insert(2, "<th>Check</th>")

    def pytest_html_results_table_html(self, report, data) -> None:  # type: ignore[no-untyped-def]
        """A failed, blocked or differing check's row shows what was expected and found (its message), not a
        traceback, and the requirement it enforces."""
        outcome = outcome_of(report)
        if outcome is not None and outcome.task and outcome.status in (FAILED, BLOCKED, DIFFERS):
            requirement = ledger.get(outcome.requirement) if outcome.requirement else None
            enforces = f'<div class="log">enforces {escape(str(requirement))}</div>' if requirement else ""
            data[:] = [f'<div class="log">{escape(outcome.message)}</div>{enforces}']

    def pytest_html_results_table_row(self, report, cells) -> None:  # type: ignore[no-untyped-def]
        outcome = outcome_of(report)
        cells.insert(2, f"<td>{escape(outcome.description if outcome else '')}</td>")
