"""A sign-off a DBA can act on: one blocking issue per root cause, dependent checks BLOCKED by it."""

from __future__ import annotations

import pytest

from tests.suite.helpers import ReadinessRun, mutate

pytestmark = pytest.mark.suite


def no_driver_errors(run: ReadinessRun) -> None:
    """Blocking issues and task comments in words, never a driver traceback."""
    text = " ".join(
        [i["message"] for i in run.signoff["blocking_issues"]] + [t["comments"] for t in run.signoff["tasks"]]
    )
    assert "psycopg.errors" not in text and "LINE 1:" not in text, text[:3000]


def test_empty_migration_names_what_is_missing(readiness_run) -> None:
    """An empty 0024: NOT APPROVED with a handful of blocking issues naming the missing tables, enums and
    functions; every check of the missing tables BLOCKED by them."""
    run = readiness_run("-- 0024, empty\nSELECT 1;\n")
    assert run.exit_code == 1 and run.signoff["verdict"] == "NOT APPROVED", run.output[-3000:]
    issues = run.signoff["blocking_issues"]
    assert 1 <= len(issues) <= 12, [i["message"][:100] for i in issues]
    messages = " ".join(i["message"] for i in issues)
    for missing in ("table(s) sync_preview_cache, sync_progress, sync_activity_log", "enum type(s) sync_type",
                    "function(s) auto_cleanup_preview_cache"):  # fmt: skip
        assert missing in messages, messages
    assert {run.statuses()[n] for n in (2, 3, 6)} == {"BLOCKED"}, run.statuses()
    tables = next(i for i in issues if "table(s)" in i["message"])
    assert tables["checks"] > 100 and tables["tasks"] == [1, 2, 3, 4, 5, 6, 7, 8], tables
    no_driver_errors(run)


def test_misspelt_column_the_report_names_is_one_issue(readiness_run) -> None:
    """job_id spelt jobid: at most 3 blocking issues, the first naming sync_progress.job_id; no UndefinedColumn."""
    text = mutate("    job_id TEXT NOT NULL,\n", "    jobid TEXT NOT NULL,\n")
    text = mutate("ON sync_progress (org_id, job_id);", "ON sync_progress (org_id, jobid);", source=text)
    text = mutate("'job_id', NEW.job_id,", "'job_id', NEW.jobid,", source=text)
    run = readiness_run(text)
    assert run.signoff["verdict"] == "NOT APPROVED", run.output[-3000:]
    issues = run.signoff["blocking_issues"]
    assert 1 <= len(issues) <= 3, [i["message"][:100] for i in issues]
    assert "column(s) sync_progress.job_id" in issues[0]["message"], issues[0]
    assert "column(s) sync_progress.job_id" in run.task(2)["comments"], run.task(2)
    no_driver_errors(run)
