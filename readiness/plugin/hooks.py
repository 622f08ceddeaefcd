"""pytest wiring of the sign-off: options, outcome collection, reports and the exit status.

A readiness run (`pytest -m readiness`) exits 0 only when the verdict is APPROVED; any other
run exits by its tests' outcomes. Every run writes, under --report-dir, every format of
readiness.report.formats (FILES), pytest-html's readiness.html and junit.xml; pytest's own rows read
each check's Outcome, as the sign-off does.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

import pytest

from readiness.plugin import markers, options, outcomes
from readiness.postgres import interrupt
from readiness.report import formats
from readiness.report.formats import html, summary, terminal
from readiness.report.record import Outcome, Record
from readiness.report.signoff import SignOff, sign
from readiness.report.tally import Tally
from readiness.schema import ledger
from readiness.schema.statements import has_byte_order_mark, meta_commands
from readiness.verdicts import BLOCKED, DIFFERS, FAILED, REFUSED

EXIT_NOT_APPROVED = 1


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
    run = outcomes.run_record(config)
    skipped = meta_commands(config.option.migration) + meta_commands(config.option.rollback)
    if skipped:
        run.note("psql meta-commands skipped (they change nothing in the database)", "; ".join(skipped))
    marked = [str(path) for path in (config.option.migration, config.option.rollback) if has_byte_order_mark(path)]
    if marked:
        run.note("files starting with a UTF-8 byte-order mark (read without it, as psql does)", ", ".join(marked))
    reporter = SignOffReporter(config, Tally(config.option.migration, config.option.rollback,
                                             decisions=config.option.decisions))  # fmt: skip
    config.pluginmanager.register(reporter, "readiness-signoff")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlSignOff(reporter), "readiness-html")


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
    """Gathers every check's outcome (a Tally), signs it once at the end and writes every format of it."""

    def __init__(self, config: pytest.Config, tally: Tally):
        self.config = config
        self.tally = tally
        self.records: list[Record] = []  # the run's first (the controller's, then its workers'), then the checks'
        self.signoff: SignOff | None = None  # signed at the session's end

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = outcome_of(report)
        if outcome is None or outcome.task is None:
            return
        self.records.append(outcome.record)
        if outcome.examples:
            self.tally.examples[outcome.nodeid] = outcome.examples
        if outcomes.counts(outcome):
            self.tally.record(outcome)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):
            # xdist: test outcomes reach the controller as reports; what the run's fixtures recorded, this way
            self.config.workeroutput["readiness"] = outcomes.run_record(self.config).as_json()  # type: ignore
            return
        if self.config.option.collectonly:
            return  # no check ran: the last sign-off stays (place_reports pointed pytest's own reports elsewhere)
        for record in [outcomes.run_record(self.config), *self.records]:
            self.tally.take(record)
        # where CI checked the repository out: code scanning's paths are relative to it
        signoff = self.signoff = sign(self.tally, Path.cwd())
        try:
            interrupt.announce(interrupt.SIGNOFF_WRITING)
            self.write(signoff, self.config.option.report_dir)
        except KeyboardInterrupt:  # the servers are still stopped: pytest's own sessionfinish tears them down
            pass
        if interrupt.received():
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif options.is_readiness_run(self.config) and signoff.verdict != "APPROVED" and exitstatus == 0:
            session.exitstatus = EXIT_NOT_APPROVED
        elif options.is_readiness_run(self.config) and exitstatus == pytest.ExitCode.TESTS_FAILED and approved(signoff):
            session.exitstatus = pytest.ExitCode.OK

    def write(self, signoff: SignOff, report_dir: Path) -> None:
        """Every format's file (readiness.report.formats), each whole or not at all; under GitHub Actions, the job's
        summary too."""
        for name, format_ in formats.FILES.items():
            partial = report_dir / f".{name}.partial"
            partial.write_text(format_.render(signoff))
            partial.replace(report_dir / name)
        step_summary = os.environ.get(summary.ENVIRONMENT)
        if step_summary and options.is_readiness_run(self.config):
            with open(step_summary, "a", encoding="utf-8") as job_summary:
                job_summary.write(summary.render(signoff))

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
        if self.signoff is None:  # the session ended before it was signed
            return
        terminalreporter.section("migration 0024 readiness sign-off")
        for line in terminal.render(self.signoff).splitlines():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"reports: {self.config.option.report_dir}/ {' '.join(formats.ALL_FILES)}")


def approved(signoff: SignOff) -> bool:
    """APPROVED with every failed check's findings accepted on the record: the run's exit status is 0."""
    failed = {t.nodeid for t in signoff.outcomes if t.status == FAILED}
    return signoff.verdict == "APPROVED" and failed <= signoff.accepted_checks


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


def outcome_of(report: pytest.TestReport) -> Outcome | None:
    """The check's Outcome (readiness.plugin.outcomes.decide) a report carries, in this process or from a worker."""
    data = getattr(report, "readiness", None)
    return Outcome.of(data) if data else None
