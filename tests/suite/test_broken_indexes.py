"""Broken indexes turn task 3 red: a lost DESC, a lost predicate, a missing index are each named."""

from __future__ import annotations

import pytest

from tests.suite.helpers import mutate

pytestmark = pytest.mark.suite

TASK_3 = "tests/test_03_indexes.py"


def test_index_without_desc_fails_task_3(readiness_run) -> None:
    """An index created ASC where the report says DESC fails task 3, naming the index and both definitions."""
    text = mutate(
        "idx_sync_activity_log_org_created ON sync_activity_log (org_id, created_at DESC)",
        "idx_sync_activity_log_org_created ON sync_activity_log (org_id, created_at)",
    )
    run = readiness_run(text, TASK_3)
    assert run.statuses()[3] == "FAIL", run.output
    assert "index idx_sync_activity_log_org_created" in run.output
    assert "columns=('org_id', 'created_at')" in run.output


def test_index_without_predicate_fails_task_3(readiness_run) -> None:
    """The active-jobs index without WHERE completed_at IS NULL fails task 3, and splinter's duplicate_index
    (task 7) names the twin it now duplicates."""
    text = mutate(
        "(org_id, updated_at DESC) WHERE completed_at IS NULL;",
        "(org_id, updated_at DESC);",
    )
    run = readiness_run(text, TASK_3, "tests/test_07_production.py")
    assert run.statuses()[3] == "FAIL" and run.statuses()[7] == "FAIL", run.output
    assert "index idx_sync_progress_active" in run.output
    assert "indexes idx_sync_progress_active, idx_sync_progress_updated are identical" in run.output


def test_missing_index_fails_task_3_as_one_cause(readiness_run) -> None:
    """A migration without the cache-key index fails task 3 and names it missing: one blocking issue, with the
    checks that use the index (its definition, its plan, task 6's over-long key) BLOCKED by it."""
    text = mutate(
        "CREATE INDEX idx_sync_preview_cache_key ON sync_preview_cache (cache_key) WHERE cache_key IS NOT NULL;\n", ""
    )
    run = readiness_run(text)
    assert run.statuses()[3] == "FAIL" and run.statuses()[6] == "BLOCKED", run.output
    assert "the report's indexes missing: idx_sync_preview_cache_key" in run.output
    issues = run.signoff["blocking_issues"]
    assert len(issues) == 1 and issues[0]["tasks"] == [3, 6] and issues[0]["checks"] == 4, issues
    assert issues[0]["message"].startswith("0024 did not create the index(es) idx_sync_preview_cache_key"), issues
