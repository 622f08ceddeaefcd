"""Broken policies turn task 2 red: the suite tells an isolating migration from a leaking one."""

from __future__ import annotations

import json

import pytest

from readiness.schema.files import DEFAULT_MIGRATION
from tests.suite.helpers import ReadinessRun, mutate

pytestmark = pytest.mark.suite

TASK_2 = "tests/test_02_rls.py"
ORG_MEMBER = "(org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())))"


def scanned_line(run: ReadinessRun, rule: str) -> int:
    """The line code scanning puts the run's finding of `rule` on (its SARIF result)."""
    (result,) = [found for found in json.loads((run.reports / "readiness.sarif").read_text())["runs"][0]["results"]
                 if found["ruleId"] == rule]  # fmt: skip
    return int(result["locations"][0]["physicalLocation"]["region"]["startLine"])


def line_of(text: str) -> int:
    return next(number for number, line in enumerate(DEFAULT_MIGRATION.read_text().splitlines(), 1) if text in line)


def test_policy_calling_uid_per_row_fails_task_7(readiness_run) -> None:
    """A policy with a bare auth.uid() (evaluated per row) breaks splinter's auth_rls_initplan: task 7 names it;
    isolation holds, so task 2 passes."""
    select = "CREATE POLICY sync_progress_select ON sync_progress FOR SELECT TO authenticated\n    USING "
    run = readiness_run(
        mutate(select + ORG_MEMBER, select + ORG_MEMBER.replace("(SELECT auth.uid())", "auth.uid()")),
        TASK_2, "tests/test_07_production.py",
    )  # fmt: skip
    assert (run.statuses()[2], run.statuses()[7]) == ("PASS", "FAIL"), run.output
    assert "auth_rls_initplan" in run.task(7)["comments"] and "sync_progress_select" in run.task(7)["comments"]
    # the linter's finding is about the policy (and its table): on the policy's line, not the table's
    assert scanned_line(run, "splinter:auth_rls_initplan") == line_of("CREATE POLICY sync_progress_select")


def test_policy_open_to_every_row_fails_task_2_as_one_cause(readiness_run) -> None:
    """A SELECT policy USING (true) lets one organisation read another's log, and task 2 fails: one CRITICAL
    blocking issue, the table's, with every isolation check that shows the leak (tasks 2, 3 and 6) under it."""
    select = "CREATE POLICY sync_activity_log_select ON sync_activity_log FOR SELECT TO authenticated\n    USING "
    run = readiness_run(mutate(select + ORG_MEMBER, select + "(true)"))
    assert run.statuses()[2] == "FAIL", run.output
    assert run.task(2)["failed"] >= 3
    issues = run.signoff["blocking_issues"]
    assert len(issues) == 1, issues
    assert issues[0]["message"].startswith("RLS on sync_activity_log does not keep tenants apart"), issues
    assert "sync_activity_log_select lets any signed-in user read every organisation's rows." in issues[0]["message"]
    assert issues[0]["severity"] == "CRITICAL" and {2, 6} <= set(issues[0]["tasks"]), issues
    assert issues[0]["checks"] == sum(run.task(n)["failed"] for n in range(1, 9)), (issues, run.signoff["tasks"])
    red = {(row["table"], c["command"], c["actor"]): c for row in run.signoff["access_matrix"]["rows"]
           for c in row["cells"] if not c["as_expected"]}  # fmt: skip
    leak = red[("sync_activity_log", "SELECT", "other organisation")]
    assert leak["leak"] and leak["observed"] == "17 rows of another organisation", leak
    assert "tests/test_02_rls.py::test_member_sees_only_own_organisation[sync_activity_log]" in leak["checks"], leak
    assert {table for table, _, _ in red} == {"sync_activity_log"}, red  # the other tables stay green
    markdown = (run.reports / "readiness.md").read_text()
    (line,) = [line for line in markdown.splitlines() if line.startswith("| sync_activity_log |")]
    assert "❌ LEAK: 17 rows of another organisation (" in line, line
    assert "tests/test_02_rls.py::test_member_sees_only_own_organisation[sync_activity_log]" in line, line
    # the table's RLS cause is about the policy that leaks: code scanning shows it on that policy's line
    assert scanned_line(run, "report:isolation") == line_of("CREATE POLICY sync_activity_log_select")


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
    assert 'read through partitions ["sync_activity_log_' in run.task(2)["comments"], run.task(2)


def test_policy_not_asking_who_calls_fails_task_2(readiness_run) -> None:
    """A sub-select on auth.users_extended without the caller's id leaks every organisation with users once that
    table is readable (the report's Step 2 gives it no RLS): the structure and the behaviour both fail task 2."""
    select = "CREATE POLICY sync_progress_select ON sync_progress FOR SELECT TO authenticated\n    USING "
    blind = "(org_id IN (SELECT ue.org_id FROM auth.users_extended ue))"
    run = readiness_run(mutate(select + ORG_MEMBER, select + blind), TASK_2)
    assert run.statuses()[2] == "FAIL", run.output
    failed = {line.split("::")[1].split(" ")[0] for line in run.output.splitlines() if line.startswith("FAILED")}
    assert failed == {
        "test_isolation_proven_by_structure[sync_progress_select]",
        "test_isolation_holds_when_users_extended_has_no_rls[sync_progress]",
    }, run.output[-3000:]


def test_missing_policy_is_one_cause(readiness_run) -> None:
    """Without its INSERT policy sync_progress refuses every user's insert: one blocking issue, the table's, under
    which the policy checks and the checks that insert as a user fail."""
    insert = (
        "CREATE POLICY sync_progress_insert ON sync_progress FOR INSERT TO authenticated\n    WITH CHECK "
        + ORG_MEMBER + ";\n"
    )  # fmt: skip
    run = readiness_run(mutate(insert, ""))
    assert run.signoff["verdict"] == "NOT APPROVED", run.output
    issues = run.signoff["blocking_issues"]
    assert len(issues) == 1, issues
    assert issues[0]["message"].startswith("RLS on sync_progress does not keep tenants apart"), issues
    assert "policy sync_progress_insert does not exist" in issues[0]["message"], issues
    assert issues[0]["checks"] == sum(run.task(n)["failed"] for n in range(1, 9)) >= 3, issues
