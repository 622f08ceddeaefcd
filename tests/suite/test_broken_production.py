"""Broken copies of 0024 turn task 7 red: its lock footprint and linter rules tell safe deployments from unsafe."""

from __future__ import annotations

import pytest

from tests.suite.helpers import ReadinessRun, mutate

pytestmark = pytest.mark.suite

TASK_7 = "tests/test_07_production.py"


def appended(statements: str) -> str:
    """The migration with `statements` run just before its COMMIT."""
    return mutate("\nCOMMIT;\n", f"\n{statements}\n\nCOMMIT;\n")


def messages(run: ReadinessRun) -> str:
    """Every blocking issue's message of a nested run."""
    return "\n".join(issue["message"] for issue in run.signoff["blocking_issues"])


def test_rewriting_an_existing_table_fails_task_7(readiness_run) -> None:
    """ADD COLUMN with a volatile default rewrites organization under ACCESS EXCLUSIVE: task 7 fails, naming it."""
    run = readiness_run(appended("ALTER TABLE organization ADD COLUMN x int DEFAULT random();"), TASK_7)
    assert run.statuses()[7] == "FAIL", run.output
    assert "organization" in run.task(7)["comments"] and "ACCESS EXCLUSIVE" in run.task(7)["comments"]
    assert "0024 rewrites organization (new relfilenode)" in messages(run)
    assert run.task(7)["failed"] == 2, messages(run)  # the lock and the rewrite; every linter rule passes


def test_security_definer_function_open_to_anon_fails_task_7(readiness_run) -> None:
    """A SECURITY DEFINER function without search_path that anon may call fails three linter rules, naming it."""
    run = readiness_run(
        appended(
            "CREATE FUNCTION public.org_job_count(org uuid) RETURNS bigint LANGUAGE sql SECURITY DEFINER\n"
            "AS $$ SELECT count(*) FROM public.sync_progress WHERE org_id = org $$;\n"
            "GRANT EXECUTE ON FUNCTION public.org_job_count(uuid) TO anon;"
        ),
        TASK_7,
    )
    assert run.statuses()[7] == "FAIL", run.output
    assert "org_job_count(uuid)" in run.task(7)["comments"]
    found = messages(run)
    assert "org_job_count(uuid): search_path is not pinned" in found
    assert "org_job_count(uuid): SECURITY DEFINER and executable by anon" in found
    assert "org_job_count(uuid): SECURITY DEFINER and executable by authenticated" in found


def test_migration_without_lock_timeout_fails_task_7(readiness_run) -> None:
    """0024 without its SET LOCAL lock_timeout: squawk's require-lock-timeout blocks, since 0024 locks
    organization and auth.users_extended; task 7 fails naming the rule and the line."""
    run = readiness_run(mutate("SET LOCAL lock_timeout = '5s';\n", ""), TASK_7)
    assert run.statuses()[7] == "FAIL", run.output
    found = messages(run)
    assert "0024_under_test.sql:13:1: squawk require-lock-timeout" in found, found
    assert "blocking" in found and "organization" in found, found


def test_squawk_missing_blocks_its_checks(readiness_run) -> None:
    """Without a squawk binary, its checks are BLOCKED saying how to install it; they never pass silently."""
    run = readiness_run(None, TASK_7, env={"READINESS_SQUAWK": "/nonexistent/squawk"})
    assert run.statuses()[7] == "BLOCKED", run.output
    assert run.task(7)["blocked"] == 2, run.task(7)
    assert "squawk is not installed" in run.task(7)["comments"] and "make setup" in run.task(7)["comments"]
