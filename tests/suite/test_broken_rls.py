"""Broken policies turn task 2 red: the suite tells an isolating migration from a leaking one."""

from __future__ import annotations

import pytest

from tests.suite.conftest import mutate

pytestmark = pytest.mark.suite

TASK_2 = "tests/test_02_rls.py"
ORG_MEMBER = "(org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())))"


def test_policy_calling_uid_per_row_fails_task_2(readiness_run) -> None:
    """A policy with a bare auth.uid() (evaluated per row) is named in task 2's failure."""
    select = "CREATE POLICY sync_progress_select ON sync_progress FOR SELECT TO authenticated\n    USING "
    run = readiness_run(
        mutate(select + ORG_MEMBER, select + ORG_MEMBER.replace("(SELECT auth.uid())", "auth.uid()")), TASK_2
    )
    assert run.statuses()[2] == "FAIL", run.output
    assert "sync_progress_select" in run.task(2)["comments"]


def test_policy_open_to_every_row_fails_task_2(readiness_run) -> None:
    """A SELECT policy USING (true) lets one organisation read another's log, and task 2 fails."""
    select = "CREATE POLICY sync_activity_log_select ON sync_activity_log FOR SELECT TO authenticated\n    USING "
    run = readiness_run(mutate(select + ORG_MEMBER, select + "(true)"), TASK_2)
    assert run.statuses()[2] == "FAIL", run.output
    assert run.task(2)["failed"] >= 3


def test_partitions_left_open_fail_task_2(readiness_run) -> None:
    """Partitions keeping the API roles' privileges and no RLS leak rows when named directly: task 2 fails."""
    text = mutate(
        "        EXECUTE format('REVOKE ALL ON %I FROM anon, authenticated', partition_name);\n"
        "        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', partition_name);\n",
        "",
    )
    text = mutate(
        "REVOKE ALL ON sync_activity_log_default FROM anon, authenticated;\n"
        "ALTER TABLE sync_activity_log_default ENABLE ROW LEVEL SECURITY;\n",
        "",
        source=text,
    )
    run = readiness_run(text, TASK_2)
    assert run.statuses()[2] == "FAIL", run.output
    assert "through partition sync_activity_log_" in run.task(2)["comments"]


def test_policy_not_asking_who_calls_fails_task_2(readiness_run) -> None:
    """A sub-select on auth.users_extended without the caller's id leaks every organisation with users once that
    table is readable (the report's Step 2 gives it no RLS): the catalog rule and the behaviour both fail task 2."""
    select = "CREATE POLICY sync_progress_select ON sync_progress FOR SELECT TO authenticated\n    USING "
    blind = "(org_id IN (SELECT ue.org_id FROM auth.users_extended ue))"
    run = readiness_run(mutate(select + ORG_MEMBER, select + blind), TASK_2)
    assert run.statuses()[2] == "FAIL", run.output
    failed = {line.split("::")[1].split(" ")[0] for line in run.output.splitlines() if line.startswith("FAILED")}
    assert failed == {
        "test_policy_definition[sync_progress_select]",
        "test_isolation_holds_when_users_extended_has_no_rls[sync_progress]",
    }, run.output[-3000:]
