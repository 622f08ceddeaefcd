"""Options as pytest users type them, and migration files as DBAs write them for psql."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from readiness import PROJECT_ROOT
from readiness.postgres import cache, process_group
from readiness.schema.files import DEFAULT_MIGRATION
from tests.suite.helpers import NESTED_VOLUME

pytestmark = pytest.mark.suite

TASK_5 = str(PROJECT_ROOT / "tests" / "test_05_enums.py")


def run_from(cwd: Path, *args: str, nested_cache: Path) -> subprocess.CompletedProcess[str]:
    """`python -m pytest -m readiness ARGS` started in `cwd`."""
    return process_group.run(
        [sys.executable, "-m", "pytest", "-m", "readiness", "-q", "--volume", str(NESTED_VOLUME), *args],
        cwd=cwd, timeout=600,
        env={**os.environ, cache.ROOT_ENV: str(nested_cache)},
    )  # fmt: skip


@pytest.mark.parametrize("where", ["project root", "another directory"])
def test_migration_path_with_a_space(where: str, tmp_path: Path, nested_cache: Path) -> None:
    """`--migration /elsewhere/0024.sql` and `--report-dir DIR` with a space work from the project root and from
    elsewhere: the run uses the suite's configuration and tests, and signs off that migration."""
    migration = tmp_path / "elsewhere" / "0024.sql"
    migration.parent.mkdir()
    migration.write_text(DEFAULT_MIGRATION.read_text())
    cwd = PROJECT_ROOT if where == "project root" else tmp_path
    run = run_from(cwd, "--migration", str(migration), "--report-dir", str(tmp_path / "reports"),
                   nested_cache=nested_cache)  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "unrecognized arguments" not in output and "PytestUnknownMarkWarning" not in output, output[-3000:]
    signoff = json.loads((tmp_path / "reports" / "signoff.json").read_text())
    assert (signoff["verdict"], signoff["migration"]["path"]) == ("APPROVED", str(migration))
    assert sum(task["passed"] for task in signoff["tasks"]) > 200, "the suite's own tests ran"


@pytest.mark.parametrize(
    ("given", "said"),
    [("directory", "is a directory: give the path of the .sql file in it"), ("text", "is not a .sql file")],
)
def test_migration_option_that_is_not_a_sql_file(given: str, said: str, tmp_path: Path, nested_cache: Path) -> None:
    """A directory, or a file that is not .sql, given as --migration is a usage error (exit 4) saying so."""
    path = tmp_path / "0024"
    if given == "directory":
        path.mkdir()
    else:
        path = path.with_suffix(".txt")
        path.write_text("SELECT 1;")
    run = run_from(PROJECT_ROOT, f"--migration={path}", TASK_5, nested_cache=nested_cache)
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert said in run.stderr, run.stderr[-2000:]


def test_harmless_psql_meta_commands_are_skipped_and_listed(readiness_run) -> None:
    """`\\set ON_ERROR_STOP on` and `\\echo` at the top of 0024, as psql users write it: skipped, listed, approved."""
    run = readiness_run("\\set ON_ERROR_STOP on\n\\echo applying 0024\n" + DEFAULT_MIGRATION.read_text())
    assert (run.exit_code, run.signoff.get("verdict")) == (0, "APPROVED"), run.output[-3000:]
    skipped = run.signoff["environment"]["psql meta-commands skipped (they change nothing in the database)"]
    assert "0024_under_test.sql:1:1: \\set ON_ERROR_STOP on" in skipped and ":2:1: \\echo applying 0024" in skipped


def test_psql_include_is_refused_at_its_line(readiness_run) -> None:
    """`\\i other.sql` would run a file the suite cannot see: 0024 does not apply, naming the line and what to do."""
    run = readiness_run("-- 0024\n\\i other.sql\n" + DEFAULT_MIGRATION.read_text(), "tests/test_01_schema.py")
    assert run.statuses()[1] == "FAIL", run.output[-3000:]
    issue = run.signoff["blocking_issues"][0]
    assert issue["severity"] == "CRITICAL" and issue["location"].endswith("0024_under_test.sql:2:1"), issue
    assert "the psql meta-command \\i" in issue["message"] and "inline what it brings" in issue["message"], issue


def test_collect_only_leaves_the_last_sign_off(tmp_path: Path, nested_cache: Path) -> None:
    """`pytest -m readiness --collect-only` lists the checks and runs none: the last sign-off stays as it was,
    and the run says so."""
    reports = tmp_path / "reports"
    reports.mkdir()
    last = {name: f"the last sign-off's {name}" for name in ("signoff.json", "readiness.md", "readiness.html",
                                                              "junit.xml", "readiness.sarif")}  # fmt: skip
    for name, text in last.items():
        (reports / name).write_text(text)
    run = run_from(PROJECT_ROOT, "--collect-only", f"--report-dir={reports}", nested_cache=nested_cache)
    assert run.returncode == 0, run.stdout + run.stderr
    assert {name: (reports / name).read_text() for name in last} == last
    assert "the last sign-off in" in run.stdout and "is left as it was" in run.stdout, run.stdout[-500:]
    assert "tests/test_02_rls.py::test_member_sees_only_own_organisation" in run.stdout


def test_ci_recipes_publish_the_findings_where_ci_shows_them() -> None:
    """GitHub's recipe uploads readiness.sarif to code scanning (and may write it: security-events), GitLab's
    declares codequality.json; both keep reports/ as the artifact."""
    github = yaml_free(PROJECT_ROOT / "ci" / "github-actions.yml")
    assert github.count("uses: github/codeql-action/upload-sarif@v3") == 2, github
    assert github.count("sarif_file: reports/readiness.sarif") == 2 and "security-events: write" in github
    gitlab = yaml_free(PROJECT_ROOT / "ci" / "gitlab-ci.yml")
    assert "codequality: reports/codequality.json" in gitlab and "junit: reports/junit.xml" in gitlab


def yaml_free(path: Path) -> str:
    """A recipe's lines without comments (a commented-out step does not count)."""
    return "\n".join(line.split(" #")[0].rstrip() for line in path.read_text().splitlines()
                     if not line.lstrip().startswith("#"))  # fmt: skip
