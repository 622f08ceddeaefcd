"""Fixtures for testing the suite itself: mutated copies of the migration and nested readiness runs."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_postgresql.executors import PostgreSQLExecutor

from readiness import PROJECT_ROOT
from readiness.postgres import cache, process_group, server
from readiness.report.formats.summary import ENVIRONMENT as STEP_SUMMARY_ENV
from tests.suite.helpers import NESTED_VOLUME, ReadinessRun
from tests.suite.targets import databases


@pytest.fixture(scope="session")
def nested_cache() -> Iterator[Path]:
    """The nested runs' cluster cache, apart from the project's, in RAM when there is room: mutated
    migrations each store a volume, which must neither evict the project's nor be copied to disk."""
    root = Path(tempfile.mkdtemp(prefix="readiness-cache-", dir=server.scratch_dir(4 * 2**30)))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def readiness_run(tmp_path: Path, nested_cache: Path) -> Callable[..., ReadinessRun]:
    """Run `pytest -m readiness` in a subprocess on a given migration text; return its exit code and sign-off."""

    def run(
        migration_text: str | None = None, *extra: str, rollback_text: str | None = None, env: dict | None = None
    ) -> ReadinessRun:
        args = [sys.executable, "-m", "pytest", "-m", "readiness", "-q", f"--report-dir={tmp_path / 'reports'}"]
        args.append(f"--volume={NESTED_VOLUME}")
        if migration_text is not None:
            migration = tmp_path / "0024_under_test.sql"
            migration.write_text(migration_text)
            args.append(f"--migration={migration}")  # one token: pytest must not take the path for a test path
        if rollback_text is not None:
            rollback = tmp_path / "0024_down_under_test.sql"
            rollback.write_text(rollback_text)
            args.append(f"--rollback={rollback}")
        inherited = {name: value for name, value in os.environ.items() if name != STEP_SUMMARY_ENV}  # not the job's
        result = process_group.run(
            [*args, *extra],
            cwd=PROJECT_ROOT,
            timeout=600,
            env={**inherited, cache.ROOT_ENV: str(nested_cache), **(env or {})},
        )
        signoff_path = tmp_path / "reports" / "signoff.json"
        signoff = json.loads(signoff_path.read_text()) if signoff_path.is_file() else {}
        return ReadinessRun(result.returncode, result.stdout + result.stderr, signoff, tmp_path / "reports")

    return run


@pytest.fixture
def target(pg_server: PostgreSQLExecutor) -> Iterator[Callable[..., str]]:
    """A factory of databases on the test server, built from SQL files; returns a DSN with a password in it."""
    with databases(pg_server) as make:
        yield make
