"""pytest wiring of the sign-off: options, outcome collection, reports and the exit status.

A readiness run (`pytest -m readiness`) exits 0 only when the verdict is APPROVED; any other
run exits by its tests' outcomes. Every run writes, under --report-dir, readiness.html,
signoff.json and junit.xml.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path

import pytest

from readiness.plugin import markers, options, outcomes
from readiness.postgres import interrupt
from readiness.report import code_scanning
from readiness.report.markdown import signoff_markdown
from readiness.report.record import Outcome, Record
from readiness.report.render import signoff_html, terminal_table
from readiness.report.signoff import SignOff
from readiness.schema import ledger
from readiness.schema.statements import has_byte_order_mark, meta_commands
from readiness.verdicts import BLOCKED, DIFFERS, FAILED, REFUSED

EXIT_NOT_APPROVED = 1
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"  # GitHub Actions' job summary, a Markdown file appended to


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Options checked, reports placed, the sign-off started and its reporters registered."""
    if options.is_readiness_run(config):
        options.run_again_with_the_suites_configuration(config)
    interrupt.install()
    options.validate(config)
    options.place_reports(config)
    signoff = SignOff(config.option.migration, config.option.rollback, decisions=config.option.decisions)
    run = outcomes.run_record(config)
    skipped = meta_commands(config.option.migration) + meta_commands(config.option.rollback)
    if skipped:
        run.note("psql meta-commands skipped (they change nothing in the database)", "; ".join(skipped))
    marked = [str(path) for path in (config.option.migration, config.option.rollback) if has_byte_order_mark(path)]
    if marked:
        run.note("files starting with a UTF-8 byte-order mark (read without it, as psql does)", ", ".join(marked))
    config.pluginmanager.register(SignOffReporter(config, signoff), "readiness-signoff")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlSignOff(signoff), "readiness-html")


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session):  # type: ignore[no-untyped-def]
    """An interrupt while xdist starts its workers kills them mid-handshake, and xdist raises what it saw
    (EOFError from execnet): that is the interrupt, exit 2, not an internal error."""
    try:
        return (yield)
    except Exception as error:  # the signal's handler runs by the time this line does, if it came
        if interrupt.received():
            raise KeyboardInterrupt(f"signal {interrupt.received()} while the session started") from error
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    refused = REFUSED.set(outcomes.record_of(item).refusals)
    try:
        outcome = yield
    finally:
        REFUSED.reset(refused)
    if interrupt.received():  # its KeyboardInterrupt was swallowed by a third party during this test
        raise KeyboardInterrupt(f"signal {interrupt.received()}, received during {item.nodeid}")
    return outcome


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every readiness check names the requirement it enforces, and its markers' arguments are known ones."""
    markers.validate(items)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """The one place a check's outcome is decided (readiness.plugin.outcomes), carried on its report as a value."""
    report = (yield).get_result()
    report.readiness = outcomes.decide(item, call, report).as_json()


class SignOffReporter:
    """Gathers every test's outcome into the sign-off and writes it out at the end."""

    def __init__(self, config: pytest.Config, signoff: SignOff):
        self.config = config
        self.signoff = signoff
        self.records: list[Record] = []  # the run's first (the controller's, then its workers'), then the checks'

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "readiness", None)  # readiness.plugin.outcomes.decide's, in this process or a worker's
        outcome = Outcome.of(data) if data else None
        if outcome is None or outcome.task is None:
            return
        self.records.append(outcome.record)
        if outcome.examples:
            self.signoff.examples[outcome.nodeid] = outcome.examples
        if outcomes.counts(outcome):
            self.signoff.record(outcome)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):
            # xdist: test outcomes reach the controller as reports; what the run's fixtures recorded, this way
            self.config.workeroutput["readiness"] = outcomes.run_record(self.config).as_json()  # type: ignore
            return
        for record in [outcomes.run_record(self.config), *self.records]:
            self.signoff.take(record)
        if self.config.option.collectonly:
            return  # no check ran: the last sign-off stays (place_reports pointed pytest's own reports elsewhere)
        try:
            interrupt.announce(interrupt.SIGNOFF_WRITING)
            self.write(self.config.option.report_dir)
        except KeyboardInterrupt:  # the servers are still stopped: pytest's own sessionfinish tears them down
            pass
        if interrupt.received():
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif options.is_readiness_run(self.config) and self.signoff.verdict != "APPROVED" and exitstatus == 0:
            session.exitstatus = EXIT_NOT_APPROVED
        elif options.is_readiness_run(self.config) and exitstatus == pytest.ExitCode.TESTS_FAILED and self.approved():
            session.exitstatus = pytest.ExitCode.OK

    def approved(self) -> bool:
        """APPROVED with every failed check's findings accepted on the record: the run's exit status is 0."""
        failed = {t.nodeid for t in self.signoff.outcomes.values() if t.status == FAILED}
        return self.signoff.verdict == "APPROVED" and failed <= self.signoff.accepted_checks

    def write(self, report_dir: Path) -> None:
        """signoff.json, readiness.md, readiness.sarif and codequality.json, each whole or not at all; under GitHub
        Actions, the Markdown sign-off in the job's summary too."""
        rollback = self.signoff.rollback
        rollback_sql = rollback.read_text(encoding="utf-8") if rollback.is_file() else ""
        markdown = signoff_markdown(self.signoff, rollback_sql)
        root = Path.cwd()  # where CI checked the repository out: code scanning's paths are relative to it
        for name, text in (
            ("signoff.json", json.dumps(self.signoff.to_json(), indent=2) + "\n"),
            ("readiness.md", markdown),
            ("readiness.sarif", json.dumps(code_scanning.sarif(self.signoff, root), indent=2) + "\n"),
            ("codequality.json", json.dumps(code_scanning.codequality(self.signoff, root), indent=2) + "\n"),
        ):
            partial = report_dir / f".{name}.partial"
            partial.write_text(text)
            partial.replace(report_dir / name)
        summary = os.environ.get(STEP_SUMMARY_ENV)
        if summary and options.is_readiness_run(self.config):
            with open(summary, "a", encoding="utf-8") as step_summary:
                step_summary.write(markdown + "\n")

    def pytest_testnodedown(self, node, error) -> None:  # type: ignore[no-untyped-def]
        recorded = getattr(node, "workeroutput", {}).get("readiness")
        if recorded:
            self.records.insert(0, Record.of(recorded))

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        if self.config.option.collectonly:
            terminalreporter.write_line(
                f"readiness: no check ran (--collect-only): the last sign-off in {self.config.option.report_dir}/ "
                "is left as it was."
            )
            return
        terminalreporter.section("migration 0024 readiness sign-off")
        for line in terminal_table(self.signoff):
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            f"reports: {self.config.option.report_dir}/ readiness.html readiness.md signoff.json junit.xml "
            "readiness.sarif codequality.json"
        )


class HtmlSignOff:
    """pytest-html hooks: the sign-off on top of the report, each test's docstring in its row."""

    def __init__(self, signoff: SignOff):
        self.signoff = signoff

    def pytest_html_report_title(self, report) -> None:  # type: ignore[no-untyped-def]
        report.title = "Migration 0024 Production Readiness"

    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:  # type: ignore[no-untyped-def]
        rollback = self.signoff.rollback
        prefix.append(signoff_html(self.signoff, rollback.read_text(encoding="utf-8") if rollback.is_file() else ""))

    def pytest_html_results_table_header(self, cells) -> None:  # type: ignore[no-untyped-def]
        cells.insert(2, "<th>Check</th>")

    def pytest_html_results_table_html(self, report, data) -> None:  # type: ignore[no-untyped-def]
        """A failed, blocked or differing check's row shows what was expected and found (its message), not a
        traceback, and the requirement it enforces."""
        outcome = getattr(report, "readiness", None) or {}
        if outcome.get("task") and outcome["status"] in (FAILED, BLOCKED, DIFFERS):
            requirement = ledger.get(outcome["requirement"]) if outcome["requirement"] else None
            enforces = f'<div class="log">enforces {escape(str(requirement))}</div>' if requirement else ""
            data[:] = [f'<div class="log">{escape(outcome["message"])}</div>{enforces}']

    def pytest_html_results_table_row(self, report, cells) -> None:  # type: ignore[no-untyped-def]
        cells.insert(2, f"<td>{escape((getattr(report, 'readiness', None) or {}).get('description', ''))}</td>")
