"""Broken rollbacks turn task 8 red, naming the leftover object or the failing line."""

from __future__ import annotations

import pytest

from readiness import SQL_DIR
from tests.suite.helpers import mutate_rollback

pytestmark = pytest.mark.suite

TASK_8 = "tests/test_08_rollback.py"


def test_report_rollback_fails_when_never_applied(readiness_run) -> None:
    """The report's own rollback script fails when 0024 was never applied, at its ALTER TABLE line."""
    report_script = (SQL_DIR / "rollback" / "0024_down_report.sql").read_text()
    run = readiness_run(None, TASK_8, rollback_text=report_script)
    assert run.statuses()[8] == "FAIL", run.output
    assert run.task(8)["failed"] == 2, run.output  # never applied, and stopped after the enums
    assert "0024_down_under_test.sql:22:13: ALTER TABLE sync_activity_log DISABLE ROW LEVEL SECURITY" in run.output


def test_rollback_forgetting_a_type_fails_task_8(readiness_run) -> None:
    """A rollback that leaves enum sync_action behind fails task 8 and names the type."""
    run = readiness_run(None, TASK_8, rollback_text=mutate_rollback("DROP TYPE IF EXISTS sync_action;\n", ""))
    assert run.statuses()[8] == "FAIL", run.output
    assert "types: public.sync_action" in run.output


def test_rollback_forgetting_a_function_fails_task_8(readiness_run) -> None:
    """A rollback that leaves a function behind fails task 8 and names the function."""
    run = readiness_run(
        None, TASK_8, rollback_text=mutate_rollback("DROP FUNCTION IF EXISTS auto_cleanup_preview_cache();\n", "")
    )
    assert run.statuses()[8] == "FAIL", run.output
    assert "functions: public.auto_cleanup_preview_cache()" in run.output
