"""The suite rejects broken copies of 0024, naming what is wrong; it passes the sound one."""

from __future__ import annotations

import pytest

from readiness.postgres import install
from tests.suite.helpers import mutate

pytestmark = pytest.mark.suite


def test_sound_migration_is_approved(readiness_run) -> None:
    """The project's 0024 passes all eight tasks: APPROVED, exit 0, every readiness check and gate met."""
    run = readiness_run()
    assert run.statuses() == dict.fromkeys(range(1, 9), "PASS"), run.output
    assert run.signoff["verdict"] == "APPROVED"
    assert run.exit_code == 0, run.output
    assert run.signoff["blocking_issues"] == []
    assert set(run.signoff["readiness_checks"].values()) == {"PASS"}
    assert set(run.signoff["readiness_checks"]) == {
        "Schema prerequisites exist", "Auth infrastructure exists", "User mapping table exists", "No active locks",
        "Migration can execute", "RLS can be enabled", "Application deployment safe",
    }  # fmt: skip
    assert all(run.signoff["gating_criteria"].values()), run.signoff["gating_criteria"]
    assert len(run.signoff["migration"]["sha256"]) == 64


def test_dropped_enum_label_fails_task_5(readiness_run) -> None:
    """An enum missing a label turns task 5 red, naming the enum and both label lists."""
    run = readiness_run(mutate("'paused', 'timeout'", "'paused'"))
    assert run.statuses()[5] == "FAIL", run.output
    assert "enum sync_status_type" in run.task(5)["comments"]
    assert "'timeout'" in run.task(5)["comments"]
    assert run.statuses()[1] == "PASS"


def test_flipped_fk_action_fails_task_1(readiness_run) -> None:
    """An FK to auth.users_extended with CASCADE instead of SET NULL turns task 1 red, naming the key."""
    run = readiness_run(
        mutate(
            "computed_by UUID REFERENCES auth.users_extended(id) ON DELETE SET NULL",
            "computed_by UUID REFERENCES auth.users_extended(id) ON DELETE CASCADE",
        )
    )
    assert run.statuses()[1] == "FAIL", run.output
    assert "foreign keys of sync_preview_cache" in run.task(1)["comments"]
    assert "unexpected computed_by REFERENCES auth.users_extended ON DELETE CASCADE" in run.task(1)["comments"]


def test_dropped_column_fails_task_1(readiness_run) -> None:
    """A table missing a column turns task 1 red, naming the missing column."""
    run = readiness_run(
        mutate("    cache_key TEXT,\n", "", source=None).replace(
            "CREATE INDEX idx_sync_preview_cache_key ON sync_preview_cache (cache_key) WHERE cache_key IS NOT NULL;\n",
            "",
        )
    )
    assert run.statuses()[1] == "FAIL", run.output
    assert "columns of sync_preview_cache the report requires: cache_key" in run.task(1)["comments"]


def test_sql_error_is_reported_with_file_and_line_and_blocks_dependent_checks(readiness_run) -> None:
    """A migration referencing a missing table fails task 1 at its file:line; checks that need it are BLOCKED."""
    text = mutate(
        "org_id UUID NOT NULL REFERENCES organization(id) ON DELETE CASCADE,\n    sync_id UUID NOT NULL,",
        "org_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,\n    sync_id UUID NOT NULL,",
    )
    line = text[: text.index("REFERENCES organizations(id)")].count("\n") + 1
    run = readiness_run(text)
    assert run.statuses()[1] == "FAIL", run.output
    assert run.statuses()[5] == "BLOCKED"
    critical = [issue for issue in run.signoff["blocking_issues"] if issue["severity"] == "CRITICAL"]
    assert critical == [
        {
            "severity": "CRITICAL",
            "message": 'CREATE TABLE sync_progress ( - relation "organizations" does not exist',
            "location": f"{run.signoff['migration']['path']}:{line}:37",
            "checks": critical[0]["checks"],
            "tasks": [1, 2, 3, 4, 5, 6, 7],
            "requirement": {
                "id": "report.executes",
                "source": "report",
                "cites": "7. Production Readiness Checks, row 'Migration can execute'",
                "quote": "Migration can execute | ❌ FAILED | Will fail on FK constraint",
            },
            "rule": "report:executes",
        }
    ]
    assert critical[0]["checks"] > 200, "the checks it BLOCKED count under the one cause"
    assert len(run.signoff["blocking_issues"]) == 1, run.signoff["blocking_issues"]
    assert "migration 0024 did not apply" in run.task(5)["comments"]
    assert run.exit_code == 1


def test_syntax_error_is_reported_with_file_and_line(readiness_run) -> None:
    """A syntax error is located by PostgreSQL's own parser at its file:line:column."""
    text = mutate("CREATE TYPE sync_type AS ENUM", "CREATE TYPE sync_type AS ENUMM")
    line = text[: text.index("ENUMM")].count("\n") + 1
    run = readiness_run(text)
    assert run.statuses()[1] == "FAIL", run.output
    issue = run.signoff["blocking_issues"][0]
    assert issue["location"] == f"{run.signoff['migration']['path']}:{line}:26"
    assert "syntax error" in issue["message"]


def test_missing_migration_file_is_a_usage_error(readiness_run, tmp_path) -> None:
    """A --migration path that does not exist stops the run with a message naming it (exit 4)."""
    run = readiness_run(None, f"--migration={tmp_path / 'nope.sql'}")
    assert run.exit_code == 4
    assert f"--migration file not found: {tmp_path / 'nope.sql'}" in run.output


def test_volume_below_one_row_is_a_usage_error(readiness_run) -> None:
    """--volume=0 stops the run (exit 4) saying what the option wants, before any server starts."""
    run = readiness_run(None, "--volume=0")
    assert run.exit_code == 4, run.output
    assert "--volume=0: give the number of activity-log rows to load, at least 1" in run.output
    assert "Traceback" not in run.output


def test_wrong_server_major_is_refused(readiness_run) -> None:
    """A server of another major than required stops the run, naming the version found and how to get 17."""
    pg_ctl = install.bindir(17) / "pg_ctl"  # a 17 server where 16 is asked for
    run = readiness_run(None, f"--postgresql-exec={pg_ctl}", "--pg-major=16")
    assert run.exit_code == 4, run.output
    assert "is PostgreSQL 17." in run.output and "targets PostgreSQL 16" in run.output
    assert "Traceback" not in run.output


def test_restrict_on_log_org_fk_fails_task_6(readiness_run) -> None:
    """sync_activity_log's org_id with ON DELETE RESTRICT turns task 6 red: deleting an organisation is refused."""
    run = readiness_run(
        mutate(
            "org_id UUID NOT NULL REFERENCES organization(id) ON DELETE CASCADE,\n    sync_id UUID,\n",
            "org_id UUID NOT NULL REFERENCES organization(id) ON DELETE RESTRICT,\n    sync_id UUID,\n",
        )
    )
    assert run.statuses()[6] == "FAIL", run.output
    assert "deleting organisation A" in run.task(6)["comments"], run.task(6)["comments"]
    assert "sync_activity_log_org_id_fkey" in run.task(6)["comments"], run.task(6)["comments"]


def test_unpinned_search_path_of_definer_function_fails_task_7(readiness_run) -> None:
    """A SECURITY DEFINER function without SET search_path turns task 7 red (splinter's WARN rule), naming it.

    How a function runs is the migration's choice (task 4 lists it as a design difference); a mutable
    search_path on a definer function is a security finding, and blocks."""
    run = readiness_run(
        mutate(
            "LANGUAGE plpgsql VOLATILE SECURITY DEFINER\nSET search_path = ''\nAS $$\nDECLARE",
            "LANGUAGE plpgsql VOLATILE SECURITY DEFINER\nAS $$\nDECLARE",
        )
    )
    assert run.statuses()[7] == "FAIL", run.output
    assert "function_search_path_mutable" in run.task(7)["comments"], run.task(7)["comments"]
    assert "auto_cleanup_preview_cache" in run.task(7)["comments"], run.task(7)["comments"]
