"""The sign-off's reporter: gathers every check's Outcome and the run's Records (from xdist workers too), signs
once at the session's end, writes every format, and sets the exit status.

A readiness run (`pytest -m readiness`) exits 0 only when the verdict is APPROVED; any other
run exits by its tests' outcomes. Every run writes, under --report-dir, every format of
readiness.report.formats (FILES); pytest-html writes readiness.html and pytest junit.xml.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from readiness.plugin import options, outcomes
from readiness.postgres import interrupt
from readiness.report import formats
from readiness.report.formats import summary, terminal
from readiness.report.record import Record
from readiness.report.signoff import SignOff, sign
from readiness.report.tally import Tally
from readiness.verdicts import FAILED

EXIT_NOT_APPROVED = 1


class SignOffReporter:
    """Gathers every check's outcome (a Tally), signs it once at the end and writes every format of it."""

    def __init__(self, config: pytest.Config, tally: Tally):
        self.config = config
        self.tally = tally
        self.records: list[Record] = []  # the run's first (the controller's, then its workers'), then the checks'
        self.signoff: SignOff | None = None  # signed at the session's end

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = outcomes.outcome_of(report)
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
