"""An independent 0024, written from the report alone, is approved; its broken copies are caught by the right task.

The report is the contract: this migration differs from ours in everything the report leaves open
(column names and types, one jsonb payload, a nullable job_id, a 30-minute expiry, an identity key,
exactly the 15 indexes, trigger names, policies spelt with EXISTS and UPDATE policies without WITH CHECK).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.suite.conftest import mutate

pytestmark = pytest.mark.suite

HERE = Path(__file__).parent / "independent"
MIGRATION = (HERE / "0024_independent.sql").read_text()
ROLLBACK = (HERE / "0024_independent_down.sql").read_text()
MEMBER = "EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = {}.org_id)"
DETECTED = {
    "status": "job_status",
    "total": "items_total",
    "processed": "items_done",
    "failed": "items_failed",
    "elapsed": "duration_seconds",
    "speed": "throughput",
}


def test_independent_0024_is_approved(readiness_run) -> None:
    """Every task PASS; the roles it names otherwise are detected; our design's differences listed, not blocking."""
    run = readiness_run(MIGRATION, rollback_text=ROLLBACK)
    assert (run.exit_code, run.signoff.get("verdict")) == (0, "APPROVED"), run.output[-4000:]
    assert set(run.statuses().values()) == {"PASS"}, run.statuses()
    assert run.signoff["blocking_issues"] == []
    roles = run.signoff["environment"]["column roles of sync_progress"].split("; ")
    for role, column in DETECTED.items():
        assert f"{role}: {column} (detected)" in roles, roles
    assert "org_id: org_id (named by the report)" in roles, roles
    differences = {difference["subject"] for difference in run.signoff["design_differences"]}
    assert {"columns of sync_progress", "policy sync_progress_update", "indexes of the sync tables",
            "function auto_cleanup_preview_cache", "trigger names on sync_progress"} <= differences  # fmt: skip
    unindexed = [r for r in run.signoff["recommendations"] if "unindexed_foreign_keys" in r["message"]]
    assert len(unindexed) == 2, run.signoff["recommendations"]  # exactly the report's 15: two FKs lead no index


def member(table: str) -> str:
    return MEMBER.format(table)


# (what breaks, the task that must fail, the text replaced, its replacement, a word the task's failure names)
BROKEN = [
    pytest.param(2, f"FOR SELECT TO authenticated\n    USING ({member('sync_activity_log')})",
                 "FOR SELECT TO authenticated\n    USING (true)", "", id="log readable by every user"),
    pytest.param(2, f"FOR UPDATE TO authenticated\n    USING ({member('sync_preview_cache')})",
                 f"FOR UPDATE TO authenticated\n    USING ({member('sync_preview_cache')}) WITH CHECK (true)", "",
                 id="preview UPDATE without a tenant WITH CHECK"),
    pytest.param(2, f"FOR SELECT TO authenticated\n    USING ({member('sync_progress')})",
                 "FOR SELECT TO authenticated\n    USING (EXISTS (SELECT 1 FROM auth.users_extended u"
                 " WHERE u.org_id = sync_progress.org_id))", "auth.uid()", id="policy that does not ask who calls"),
    pytest.param(2, "ALTER TABLE public.sync_activity_log_other ENABLE ROW LEVEL SECURITY;\n"
                    "REVOKE ALL ON public.sync_activity_log_other FROM anon, authenticated;\n", "",
                 "sync_activity_log_other", id="default partition open"),
    pytest.param(1, "org_id uuid NOT NULL REFERENCES public.organization (id) ON DELETE CASCADE,\n    sync_id uuid NOT",
                 "org_id uuid NOT NULL REFERENCES public.organization (id) ON DELETE NO ACTION,\n    sync_id uuid NOT",
                 "NO ACTION", id="CASCADE turned NO ACTION"),
    pytest.param(4, "CREATE TRIGGER progress_10_elapsed BEFORE INSERT OR UPDATE",
                 "CREATE TRIGGER progress_10_elapsed AFTER INSERT OR UPDATE", "update_sync_progress_elapsed",
                 id="BEFORE trigger made AFTER"),
    pytest.param(4, "RAISE check_violation USING MESSAGE", "RAISE NOTICE USING MESSAGE", "23514",
                 id="totals function that does nothing"),
    pytest.param(3, "sync_activity_log (user_id, created_at DESC)", "sync_activity_log (user_id, created_at)",
                 "idx_sync_activity_log_user", id="lost DESC"),
    pytest.param(3, "(org_id, updated_at DESC) WHERE completed_at IS NULL", "(org_id, updated_at DESC)",
                 "idx_sync_progress_active", id="lost predicate"),
    pytest.param(5, "'scheduled_run', 'partial_resume');", "'scheduled_run');", "sync_action",
                 id="enum label dropped"),
]  # fmt: skip


@pytest.mark.parametrize(("task", "old", "new", "named"), BROKEN)
def test_broken_independent_0024_fails_the_right_task(readiness_run, task: int, old: str, new: str, named: str) -> None:
    """A broken copy of the independent 0024 is NOT APPROVED, with the task that checks the breakage FAIL."""
    run = readiness_run(mutate(old, new, source=MIGRATION), rollback_text=ROLLBACK)
    assert run.exit_code == 1 and run.signoff.get("verdict") == "NOT APPROVED", run.output[-4000:]
    assert run.statuses()[task] == "FAIL", f"task {task}: {run.task(task)}\n{run.output[-3000:]}"
    failures = " ".join(issue["message"] for issue in run.signoff["blocking_issues"])
    assert named in failures, f"expected the blocking issues to name {named!r}: {failures[:3000]}"


def test_rollback_forgetting_a_function_fails_task_8(readiness_run) -> None:
    """The independent rollback without one of its DROP FUNCTIONs leaves 0024 behind: task 8 fails naming it."""
    forgetful = mutate("DROP FUNCTION IF EXISTS public.auto_cleanup_preview_cache();\n", "", source=ROLLBACK)
    run = readiness_run(MIGRATION, "tests/test_08_rollback.py", rollback_text=forgetful)
    assert run.statuses()[8] == "FAIL", run.output[-3000:]
    assert "auto_cleanup_preview_cache" in run.task(8)["comments"], run.task(8)


def test_undetectable_role_blocks_until_configured(readiness_run, tmp_path: Path) -> None:
    """A counter no rule can find (named expected_count) blocks the checks that need it, saying where to set it;
    named in a --columns file, the same migration is approved."""
    renamed = MIGRATION.replace("items_total", "expected_count")
    blocked = readiness_run(renamed, rollback_text=ROLLBACK)
    assert blocked.signoff.get("verdict") == "NOT APPROVED", blocked.output[-3000:]
    assert blocked.statuses()[4] == "BLOCKED", blocked.statuses()
    roles = blocked.signoff["environment"]["column roles of sync_progress"]
    assert (
        'total: UNRESOLVED (no column fits; set it in the --columns file: [sync_progress] total = "<column>")' in roles
    )
    assert "column role sync_progress.total" in blocked.task(4)["comments"], blocked.task(4)

    columns = tmp_path / "columns.toml"
    columns.write_text('[sync_progress]\ntotal = "expected_count"\n')
    configured = readiness_run(renamed, f"--columns={columns}", rollback_text=ROLLBACK)
    assert (configured.exit_code, configured.signoff.get("verdict")) == (0, "APPROVED"), configured.output[-3000:]
    assert "total: expected_count (configured)" in configured.signoff["environment"]["column roles of sync_progress"]


def test_columns_file_naming_no_role_is_a_usage_error(readiness_run, tmp_path: Path) -> None:
    """A --columns file with a role the suite does not know stops the run (exit 4), listing the roles."""
    columns = tmp_path / "columns.toml"
    columns.write_text('[sync_progress]\ntotals = "items_total"\n')
    run = readiness_run(MIGRATION, f"--columns={columns}", rollback_text=ROLLBACK)
    assert run.exit_code == 4, run.output[-3000:]
    assert "[sync_progress] totals = 'items_total' is not a column role" in run.output
    assert "sync_progress.total" in run.output
