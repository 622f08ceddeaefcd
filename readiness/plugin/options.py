"""The suite's options, checked before anything runs: a bad one is a usage error (exit 4) saying what to give."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from readiness import PROJECT_ROOT
from readiness.errors import ReadinessUsageError
from readiness.postgres import dsn
from readiness.report.formats import JUNIT, html
from readiness.rules import decisions
from readiness.rules.budget import DEFAULT_BUDGET_MS
from readiness.schema import column_roles, statements
from readiness.schema.files import DEFAULT_MIGRATION, DEFAULT_ROLLBACK


def add(parser: pytest.Parser) -> None:
    """The suite's options (README, "Options")."""
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
    group.addoption(
        "--decisions",
        type=Path,
        default=None,
        help="TOML file of the team's decisions: findings accepted with a reason, by whom and until when "
        "(default: readiness.toml beside the migration, if there is one; README, 'Decisions')",
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
    """Whether this is the sign-off run (`pytest -m readiness`), whose exit status is the verdict's."""
    return (config.getoption("markexpr") or "").strip() == "readiness"


def target_dsn_of(config: pytest.Config) -> dsn.Dsn | None:
    """The --dsn or READINESS_DSN of this run, None for the ephemeral cluster."""
    given = config.getoption("dsn") or os.environ.get(DSN_ENV)
    return dsn.Dsn(given) if given else None


# The plugin's options that take a path or a URL: typed with a space, pytest may take the value for a test path.
VALUE_OPTIONS = ("--migration", "--rollback", "--report-dir", "--columns", "--decisions", "--dsn", "--postgresql-exec")
REEXEC_ENV, DSN_ENV = "READINESS_REEXEC", "READINESS_DSN"


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
    passed_on = ""
    if config.getoption("dsn"):  # in the environment: the line below and the new process's ps would show its password
        os.environ[DSN_ENV] = config.getoption("dsn")
        joined, passed_on = [arg for arg in joined if not arg.startswith("--dsn=")], f" (--dsn passed on as {DSN_ENV})"
    tests = PROJECT_ROOT / "tests"
    given = [Path(arg).resolve() for arg in joined if not arg.startswith("-") and Path(arg).exists()]
    if not any(path == tests or tests in path.parents for path in given):
        joined.append(str(tests))
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()  # the new process writes to the terminal, not to pytest's capture files
    print(f"readiness: running again with this suite's configuration ({ours}): pytest {' '.join(joined)}{passed_on}",
          flush=True)  # fmt: skip
    os.environ[REEXEC_ENV] = "1"
    os.execv(sys.executable, [sys.executable, "-m", "pytest", f"--rootdir={PROJECT_ROOT}", "-c", str(ours), *joined])


def validate(config: pytest.Config) -> None:
    """The migration, rollback and columns files exist and read; a target's DSN reads as meant; the budget and volume
    are sizes that make sense."""
    for option in ("migration", "rollback"):
        path = config.getoption(option).resolve()
        if path.is_dir():
            raise pytest.UsageError(f"--{option} {path} is a directory: give the path of the .sql file in it.")
        if not path.is_file():
            raise pytest.UsageError(f"--{option} file not found: {path}. Give the path of an existing .sql file.")
        if path.suffix.lower() != ".sql":
            raise pytest.UsageError(f"--{option} {path} is not a .sql file: give the migration's SQL file.")
        try:
            statements.text_of(path)  # UTF-8 text, not a binary file: said here, before anything reads it
        except ReadinessUsageError as error:
            raise pytest.UsageError(f"--{option}: {error}") from None
        setattr(config.option, option, path)
    if config.getoption("columns") is not None:
        config.option.columns = config.getoption("columns").resolve()
        try:
            column_roles.read_overrides(config.option.columns)
        except ReadinessUsageError as error:
            raise pytest.UsageError(str(error)) from None
    try:
        config.option.decisions = decisions.load(decisions.find(config.option.migration, config.getoption("decisions")))
    except ReadinessUsageError as error:
        raise pytest.UsageError(str(error)) from None
    if (target := target_dsn_of(config)) is not None:
        try:
            dsn.check(target)
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


def place_reports(config: pytest.Config) -> None:
    """--report-dir made, and pytest-html's and junitxml's reports put in it beside signoff.json."""
    report_dir = config.getoption("report_dir").resolve()
    if report_dir.exists() and not report_dir.is_dir():
        raise pytest.UsageError(f"--report-dir {report_dir} is a file: give a directory for the reports.")
    report_dir.mkdir(parents=True, exist_ok=True)
    config.option.report_dir = report_dir
    if config.option.collectonly:
        return  # no check runs: pytest-html and junitxml write where they were told, if anywhere, not over the sign-off
    # Before pytest-html and junitxml read them: the reports land beside signoff.json.
    if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(report_dir / html.FILE)
        config.option.self_contained_html = True
    if not config.option.xmlpath:
        config.option.xmlpath = str(report_dir / JUNIT)
