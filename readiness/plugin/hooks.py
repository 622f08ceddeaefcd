"""pytest wiring of the sign-off: options, outcome collection, reports and the exit status.

A readiness run (`pytest -m readiness`) exits 0 only when the verdict is APPROVED; any other
run exits by its tests' outcomes. Every run writes, under --report-dir, readiness.html,
signoff.json and junit.xml.
"""

from __future__ import annotations

import json
import os
import sys
from html import escape
from pathlib import Path

import pytest

from readiness import PROJECT_ROOT
from readiness.acting import auth
from readiness.errors import ReadinessUsageError
from readiness.plugin import markers, outcomes
from readiness.postgres import interrupt
from readiness.report.markdown import signoff_markdown
from readiness.report.render import signoff_html, terminal_table
from readiness.report.signoff import SIGNOFF_KEY, SignOff
from readiness.rules.budget import DEFAULT_BUDGET_MS
from readiness.schema import column_roles, ledger
from readiness.schema.apply import meta_commands
from readiness.schema.files import DEFAULT_MIGRATION, DEFAULT_ROLLBACK
from readiness.verdicts import BLOCKED, DIFFERS, FAILED, Issue, Outcome

EXIT_NOT_APPROVED = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("readiness", "migration 0024 readiness")
    group.addoption("--migration", type=Path, default=DEFAULT_MIGRATION, help="migration 0024 file under test")
    group.addoption("--rollback", type=Path, default=DEFAULT_ROLLBACK, help="rollback file of 0024 under test")
    group.addoption("--report-dir", type=Path, default=PROJECT_ROOT / "reports", help="where reports are written")
    group.addoption("--pg-major", type=int, default=17, help="PostgreSQL major the server must be (default 17)")
    group.addoption(
        "--dsn",
        default=None,
        help="verify an existing database (also READINESS_DSN): read-only checks and a dry run, always rolled back",
    )
    group.addoption(
        "--volume", type=int, default=1_000_000, help="activity-log rows loaded for the index plans (task 3)"
    )
    group.addoption(
        "--columns",
        type=Path,
        default=None,
        help="TOML file naming the columns of your 0024 that play a role the suite cannot detect (docs/your-0024.md)",
    )
    group.addoption(
        "--explain-analyze",
        action="store_true",
        help="on a target where 0024 is deployed, time task 3's queries with EXPLAIN ANALYZE (it reads tenants' rows)",
    )
    group.addoption(
        "--migration-0023",
        default=None,
        help="a table (schema.table) whose presence shows migration 0023 applied, for a layout neither the report's "
        "Step 3 query (a sync%% table) nor a known migration history finds",
    )
    group.addoption("--lock-timeout", type=int, default=2000, help="lock_timeout in ms for every connection")
    group.addoption(
        "--lock-budget",
        type=int,
        default=DEFAULT_BUDGET_MS,
        help="on a target, the longest in ms a moment of the run may hold a lock that stalls the application's writes",
    )
    group.addoption("--statement-timeout", type=int, default=120_000, help="statement_timeout in ms")


def is_readiness_run(config: pytest.Config) -> bool:
    return (config.getoption("markexpr") or "").strip() == "readiness"


# The plugin's options that take a path or a URL: typed with a space, pytest may take the value for a test path.
VALUE_OPTIONS = ("--migration", "--rollback", "--report-dir", "--columns", "--dsn", "--postgresql-exec")
REEXEC_ENV = "READINESS_REEXEC"


def run_again_with_the_suites_configuration(config: pytest.Config) -> None:
    """A readiness run that did not find this project's pyproject.toml runs again, as the user meant it.

    pytest chooses its rootdir from the paths on the command line before any plugin's options are known, so
    `--migration /elsewhere/0024.sql` (with a space) makes it look for its configuration in /elsewhere. The
    run starts again with each option's value joined to it, the suite's configuration and, when no test path
    of the suite was given, its tests: the same process (exec), before any server started.
    """
    ours = PROJECT_ROOT / "pyproject.toml"
    if config.inipath == ours or os.environ.get(REEXEC_ENV) or hasattr(config, "workerinput"):
        return
    args, joined = list(config.invocation_params.args), []
    while args:
        arg = args.pop(0)
        joined.append(f"{arg}={args.pop(0)}" if arg in VALUE_OPTIONS and args else arg)
    tests = PROJECT_ROOT / "tests"
    given = [Path(arg).resolve() for arg in joined if not arg.startswith("-") and Path(arg).exists()]
    if not any(path == tests or tests in path.parents for path in given):
        joined.append(str(tests))
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()  # the new process writes to the terminal, not to pytest's capture files
    print(f"readiness: running again with this suite's configuration ({ours}): pytest {' '.join(joined)}", flush=True)
    os.environ[REEXEC_ENV] = "1"
    os.execv(sys.executable, [sys.executable, "-m", "pytest", f"--rootdir={PROJECT_ROOT}", "-c", str(ours), *joined])


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if is_readiness_run(config):
        run_again_with_the_suites_configuration(config)
    interrupt.install()
    for option in ("migration", "rollback"):
        path = config.getoption(option).resolve()
        if path.is_dir():
            raise pytest.UsageError(f"--{option} {path} is a directory: give the path of the .sql file in it.")
        if not path.is_file():
            raise pytest.UsageError(f"--{option} file not found: {path}. Give the path of an existing .sql file.")
        if path.suffix.lower() != ".sql":
            raise pytest.UsageError(f"--{option} {path} is not a .sql file: give the migration's SQL file.")
        setattr(config.option, option, path)
    if config.getoption("columns") is not None:
        config.option.columns = config.getoption("columns").resolve()
        try:
            column_roles.read_overrides(config.option.columns)
        except ReadinessUsageError as error:
            raise pytest.UsageError(str(error)) from None
    if config.getoption("lock_budget") < 50:
        raise pytest.UsageError(
            f"--lock-budget={config.getoption('lock_budget')}: give the longest a lock moment on the target may last, "
            "in ms, at least 50 (the default 1000 keeps the application's writes waiting no longer than a second)."
        )
    if config.getoption("volume") < 1:
        raise pytest.UsageError(
            f"--volume={config.getoption('volume')}: give the number of activity-log rows to load, at least 1 "
            "(task 3's plans are those of production from about 100000 rows)."
        )
    report_dir = config.getoption("report_dir").resolve()
    if report_dir.exists() and not report_dir.is_dir():
        raise pytest.UsageError(f"--report-dir {report_dir} is a file: give a directory for the reports.")
    report_dir.mkdir(parents=True, exist_ok=True)
    config.option.report_dir = report_dir
    # Before pytest-html and junitxml read them: the reports land beside signoff.json.
    if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(report_dir / "readiness.html")
        config.option.self_contained_html = True
    if not config.option.xmlpath:
        config.option.xmlpath = str(report_dir / "junit.xml")
    signoff = SignOff(config.option.migration, config.option.rollback)
    skipped = meta_commands(config.option.migration) + meta_commands(config.option.rollback)
    if skipped:
        signoff.environment["psql meta-commands skipped (they change nothing in the database)"] = "; ".join(skipped)
    config.stash[SIGNOFF_KEY] = signoff
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
    auth.REFUSALS.clear()
    outcome = yield
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
    report.readiness = outcomes.decide(item, call, report)


class SignOffReporter:
    """Gathers every test's outcome into the sign-off and writes it out at the end."""

    def __init__(self, config: pytest.Config, signoff: SignOff):
        self.config = config
        self.signoff = signoff

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "readiness", None)  # readiness.plugin.outcomes.decide's, in this process or a worker's
        if not data:
            return
        recorded = outcomes.recorded_of(data)
        for issue in recorded.recommendations:
            self.signoff.recommendations[issue] = None
        for difference in recorded.differences:
            self.signoff.design_differences[difference.subject] = difference
        self.signoff.figures.update(recorded.figures)
        if data.get("examples"):
            self.signoff.examples[report.nodeid] = data["examples"]
        if data.get("outcome"):
            self.signoff.record(Outcome.of(data["outcome"]))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):
            # xdist: test outcomes reach the controller as reports; what fixtures recorded, this way
            self.config.workeroutput["readiness"] = {  # type: ignore[attr-defined]
                "environment": self.signoff.environment,
                "figures": self.signoff.figures,
                "recommendations": [issue.__dict__ for issue in self.signoff.recommendations],
            }
            return
        try:
            interrupt.announce(interrupt.SIGNOFF_WRITING)
            self.write(self.config.option.report_dir)
        except KeyboardInterrupt:  # the servers are still stopped: pytest's own sessionfinish tears them down
            pass
        if interrupt.received():
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif is_readiness_run(self.config) and self.signoff.verdict != "APPROVED" and exitstatus == 0:
            session.exitstatus = EXIT_NOT_APPROVED

    def write(self, report_dir: Path) -> None:
        """signoff.json and readiness.md, each whole or not at all."""
        rollback = self.signoff.rollback
        rollback_sql = rollback.read_text(encoding="utf-8") if rollback.is_file() else ""
        for name, text in (
            ("signoff.json", json.dumps(self.signoff.to_json(), indent=2) + "\n"),
            ("readiness.md", signoff_markdown(self.signoff, rollback_sql)),
        ):
            partial = report_dir / f".{name}.partial"
            partial.write_text(text)
            partial.replace(report_dir / name)

    def pytest_testnodedown(self, node, error) -> None:  # type: ignore[no-untyped-def]
        recorded = getattr(node, "workeroutput", {}).get("readiness", {})
        self.signoff.environment.update(recorded.get("environment", {}))
        self.signoff.figures.update(recorded.get("figures", {}))
        for issue in recorded.get("recommendations", []):
            self.signoff.recommendations[Issue.of(issue)] = None

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        terminalreporter.section("migration 0024 readiness sign-off")
        for line in terminal_table(self.signoff):
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            f"reports: {self.config.option.report_dir}/ readiness.html readiness.md signoff.json junit.xml"
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
        outcome = (getattr(report, "readiness", None) or {}).get("outcome")
        if outcome and outcome["status"] in (FAILED, BLOCKED, DIFFERS):
            requirement = ledger.get(outcome["requirement"]) if outcome["requirement"] else None
            enforces = f'<div class="log">enforces {escape(str(requirement))}</div>' if requirement else ""
            data[:] = [f'<div class="log">{escape(outcome["message"])}</div>{enforces}']

    def pytest_html_results_table_row(self, report, cells) -> None:  # type: ignore[no-untyped-def]
        cells.insert(2, f"<td>{escape((getattr(report, 'readiness', None) or {}).get('description', ''))}</td>")
