"""Verifying a target after deploy: 0024 present (matching its file or drifted) and partly present, no residue."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.schema.files import DEFAULT_MIGRATION, MIGRATION_0023, PREREQUISITE_FILES
from tests.suite.helpers import mutate_rollback
from tests.suite.targets import state_of

pytestmark = pytest.mark.suite

DEPLOYED = (*PREREQUISITE_FILES, MIGRATION_0023, DEFAULT_MIGRATION)
# Tenants' rows on a deployed target: 20 organisations with a user each, 120,000 log rows (task 3 judges plans
# from 100,000), every user's rows spread over the last 5 days.
TENANTS = """
INSERT INTO organization (name, slug) SELECT 'tenant ' || g, 'tenant-' || g FROM generate_series(1, 20) g;
INSERT INTO auth.users_extended (id, org_id) SELECT gen_random_uuid(), id FROM organization;
INSERT INTO sync_activity_log (org_id, user_id, action, status, created_at)
SELECT u.org_id, u.id, 'batch_process', 'completed', now() - make_interval(secs => g * 3)
FROM generate_series(1, 6000) g CROSS JOIN auth.users_extended u;
ANALYZE;
"""
# A target whose settings keep its planner off indexes: its plans then read whole tables.
NO_INDEX_SCANS = """
DO $$ BEGIN
  EXECUTE format('ALTER DATABASE %I SET enable_indexscan = off', current_database());
  EXECUTE format('ALTER DATABASE %I SET enable_bitmapscan = off', current_database());
  EXECUTE format('ALTER DATABASE %I SET enable_indexonlyscan = off', current_database());
END $$;
"""


def sql_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.sql"
    path.write_text(text)
    return path


def drift_findings(run) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["message"] for r in run.signoff["recommendations"] if r["message"].startswith("drift from the file")]


def test_deployed_and_matching_is_verified_in_place(readiness_run, target, tmp_path: Path) -> None:
    """0024 deployed as its file creates it: verified in its shadow, APPROVED, no drift, the target unchanged; no
    sequence of the target is advanced (organization with a bigserial column: the test rows are the shadow's),
    and the one lock moment is the rollback's dry run on the target."""
    serial = sql_file(tmp_path, "serial", "ALTER TABLE organization ADD COLUMN seq bigserial;")
    dsn = target(*PREREQUISITE_FILES, MIGRATION_0023, serial, DEFAULT_MIGRATION)
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "APPROVED" and run.exit_code == 0, run.output
    assert run.signoff["target_state"] == "present"
    environment = run.signoff["environment"]
    assert "verifies the deployed objects in place" in environment["target_state"]
    assert environment["sequences advanced by the run (nextval() is never rolled back)"] == "none", environment
    moments = run.signoff["lock_moments"]["moments"]
    assert [m["what"] for m in moments] == ["the rollback run on the target, rolled back"], moments
    assert {"sync_progress", "organization"} <= set(moments[0]["tables"]), moments
    assert drift_findings(run) == []
    assert "never applied" not in run.output
    assert run.statuses()[8] == "PASS", run.task(8)
    markdown = (tmp_path / "reports" / "readiness.md").read_text()
    assert "This run verifies a deploy" in markdown and "The deployed 0024 **meets the report**" in markdown
    assert state_of(dsn) == before, "the run left residue in the target"


def test_deployed_by_one_superuser_verified_by_another_is_approved(readiness_run, target, tmp_path: Path) -> None:
    """Our 0024 deployed by postgres and verified by another superuser: the tables' owner and grantor are not the
    verifier, the privileges the API roles hold are those the file gives; APPROVED, no drift."""
    verifier = sql_file(tmp_path, "verifier", (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'readiness_verifier') THEN "
        "CREATE ROLE readiness_verifier SUPERUSER LOGIN; END IF; END $$;"
    ))  # fmt: skip
    dsn = target(*PREREQUISITE_FILES, MIGRATION_0023, DEFAULT_MIGRATION, verifier)
    before = state_of(dsn)
    user = dsn.split("//", 1)[1].split(":", 1)[0]
    run = readiness_run(None, f"--dsn={dsn.replace(f'//{user}:', '//readiness_verifier:')}")
    assert run.signoff["verdict"] == "APPROVED" and run.exit_code == 0, run.output
    assert run.signoff["target_state"] == "present", run.output
    assert drift_findings(run) == []
    assert state_of(dsn) == before, "the run left residue in the target"


def test_deployed_with_drift_from_the_contract_is_blocked(readiness_run, target, tmp_path: Path) -> None:
    """A policy widened to USING (true), a report index dropped and an enum label added after the deploy:
    NOT APPROVED; the leak is CRITICAL; the dropped index is one issue, its existence check's, not part of the
    contract drift; the enum is contract drift (both sides shown); the policy text drift is listed."""
    drift = sql_file(
        tmp_path, "drift",
        "ALTER POLICY sync_progress_select ON sync_progress USING (true);\nDROP INDEX idx_sync_progress_entity;\n"
        "ALTER TYPE sync_type ADD VALUE 'magento';",
    )  # fmt: skip
    dsn = target(*DEPLOYED, drift)
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "NOT APPROVED" and run.exit_code == 1, run.output
    assert run.signoff["target_state"] == "present"
    statuses = run.statuses()
    assert statuses[2] == "FAIL" and statuses[3] == "FAIL" and statuses[8] == "FAIL", statuses
    issues = run.signoff["blocking_issues"]
    assert any(i["severity"] == "CRITICAL" and "sync_progress" in i["message"] for i in issues), issues
    index = [i for i in issues if "idx_sync_progress_entity" in i["message"]]
    assert len(index) == 1 and index[0]["message"].startswith("0024 did not create the index(es)"), issues
    contract = [i for i in issues if i["message"].startswith("the deployed 0024 drifted from the report's contract")]
    assert len(contract) == 1, issues
    assert "types public.sync_type: deployed: " in contract[0]["message"] and "magento" in contract[0]["message"]
    assert "idx_sync_progress_entity" not in contract[0]["message"], contract
    widened = [m for m in drift_findings(run) if "sync_progress_select" in m]
    assert len(widened) == 1 and "using=true" in widened[0] and "auth.uid()" in widened[0], drift_findings(run)
    assert "The deployed 0024 **does NOT meet the report**" in (tmp_path / "reports" / "readiness.md").read_text()
    assert state_of(dsn) == before, "the run left residue in the target"


def test_deployed_without_a_report_index_is_one_issue(readiness_run, target, tmp_path: Path) -> None:
    """A report index dropped after the deploy, and nothing else: one blocking issue, its existence check's, with
    the checks of that index and task 8's drift check BLOCKED by it."""
    dsn = target(*DEPLOYED, sql_file(tmp_path, "drift", "DROP INDEX idx_sync_progress_entity;"))
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "NOT APPROVED" and run.exit_code == 1, run.output
    issues = run.signoff["blocking_issues"]
    assert len(issues) == 1, issues
    assert issues[0]["message"].startswith("0024 did not create the index(es) idx_sync_progress_entity"), issues
    assert issues[0]["tasks"] == [3, 8] and issues[0]["checks"] == 3, issues  # existence, definition, drift
    assert run.statuses()[8] == "BLOCKED", run.task(8)


def test_deployed_with_drift_in_what_the_report_leaves_open_is_approved(readiness_run, target, tmp_path) -> None:
    """A default changed after the deploy (the report leaves defaults open): APPROVED, the drift a recommendation."""
    drift = sql_file(
        tmp_path, "drift", "ALTER TABLE sync_progress ALTER COLUMN updated_at SET DEFAULT clock_timestamp();"
    )
    dsn = target(*DEPLOYED, drift)
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "APPROVED" and run.exit_code == 0, run.output
    assert drift_findings(run) == [
        "drift from the file: columns public.sync_progress.updated_at: deployed: public.sync_progress.updated_at "
        "timestamp with time zone not null default clock_timestamp() | the file creates: "
        "public.sync_progress.updated_at timestamp with time zone not null default now()"
    ]
    assert state_of(dsn) == before, "the run left residue in the target"


def test_partly_deployed_is_one_critical_cause_with_its_way_out(readiness_run, target, tmp_path: Path) -> None:
    """A deploy that stopped after the enums: one CRITICAL issue listing what exists and what is missing, and the
    ways out tried in the dry run; every other check BLOCKED by it; the target unchanged."""
    source = DEFAULT_MIGRATION.read_text()
    enums_only = sql_file(tmp_path, "enums", source[: source.index("CREATE TABLE sync_preview_cache")])
    dsn = target(*PREREQUISITE_FILES, MIGRATION_0023, enums_only)
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "NOT APPROVED" and run.exit_code == 1, run.output
    assert run.signoff["target_state"] == "partial"
    issues = run.signoff["blocking_issues"]
    assert len(issues) == 1 and issues[0]["severity"] == "CRITICAL", issues
    message = issues[0]["message"]
    assert "4 of the file's 46 objects exist (4 types: sync_type, sync_action, sync_entity_type, sync_status_type)" in (
        message
    )
    assert "missing: 4 tables: sync_preview_cache, sync_progress, sync_activity_log, sync_activity_log_default" in (
        message
    )
    assert "; the 4 objects present match what the file creates." in message
    assert "the rollback leaves the target clean and 0024 then applies: this way out WORKS" in message
    assert "applying the rest of the file (from " in message and ":33:1, table sync_preview_cache) WORKS" in message
    statuses = run.statuses()
    assert statuses[1] == "FAIL" and all(statuses[n] == "BLOCKED" for n in range(2, 9)), statuses
    assert "never applied" not in run.output
    assert state_of(dsn) == before, "the run left residue in the target"


def test_rollback_that_drops_what_is_not_0024s_fails_on_a_deployed_target(readiness_run, target) -> None:
    """On a deployed 0024, a rollback that also drops an index of organization fails task 8, naming it."""
    dsn = target(*DEPLOYED)
    before = state_of(dsn)
    rollback = mutate_rollback(
        "DROP TABLE IF EXISTS sync_progress CASCADE;",
        "DROP TABLE IF EXISTS sync_progress CASCADE;\nDROP INDEX IF EXISTS idx_organization_slug;",
    )
    run = readiness_run(None, f"--dsn={dsn}", rollback_text=rollback)
    assert run.signoff["verdict"] == "NOT APPROVED" and run.statuses()[8] == "FAIL", run.output
    assert "the rollback changes objects that are not 0024's" in run.output
    assert "idx_organization_slug" in run.output
    assert state_of(dsn) == before, "the run left residue in the target"


def test_plans_on_the_deployed_target_are_reported(readiness_run, target, tmp_path: Path) -> None:
    """On a deployed 0024 with tenants' rows, task 3 plans each query on the target's statistics as a user of its
    busiest organisation and reports the index each uses; APPROVED, nothing left behind."""
    dsn = target(*DEPLOYED, sql_file(tmp_path, "tenants", TENANTS))
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "APPROVED", run.output
    figures = run.signoff["measurements"]
    latest = "on the target: an organisation's latest activity (idx_sync_activity_log_org_created)"
    assert figures[latest].startswith("idx_sync_activity_log_org_created; est. 50 rows"), figures
    assert "ms" not in figures[latest]  # EXPLAIN without ANALYZE: no tenant's row is read
    assert not [r for r in run.signoff["recommendations"] if r["message"].startswith("on the target")]
    assert state_of(dsn) == before, "the run left residue in the target"


def test_plans_without_their_index_on_a_large_target_are_a_recommendation(readiness_run, target, tmp_path) -> None:
    """The same target, its planner kept off indexes by its settings: each large table's query planned without
    its index is a MEDIUM recommendation (the verdict on plans is the ephemeral volume's); --explain-analyze times
    them."""
    dsn = target(*DEPLOYED, sql_file(tmp_path, "tenants", TENANTS), sql_file(tmp_path, "off", NO_INDEX_SCANS))
    run = readiness_run(None, f"--dsn={dsn}", "--explain-analyze")
    assert run.signoff["verdict"] == "APPROVED", run.output
    found = [r["message"] for r in run.signoff["recommendations"] if r["message"].startswith("on the target")]
    assert any("an organisation's latest activity is planned without idx_sync_activity_log_org_created" in m
               and "rows of sync_activity_log" in m for m in found), found  # fmt: skip
    latest = "on the target: an organisation's latest activity (idx_sync_activity_log_org_created)"
    assert run.signoff["measurements"][latest].endswith(" ms"), run.signoff["measurements"]


def test_partly_deployed_objects_that_differ_from_the_file_are_shown(readiness_run, target, tmp_path: Path) -> None:
    """A deploy that stopped after an enum made with another label: the one CRITICAL cause shows both sides."""
    source = DEFAULT_MIGRATION.read_text()
    first_enum = source[: source.index("CREATE TYPE sync_action")].replace("'custom'", "'custom', 'magento'")
    dsn = target(*PREREQUISITE_FILES, MIGRATION_0023, sql_file(tmp_path, "enum", first_enum))
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["target_state"] == "partial", run.output
    message = run.signoff["blocking_issues"][0]["message"]
    assert "the objects present differ from what the file creates: types public.sync_type: deployed: " in message
    assert "woocommerce,odoo,shopify,custom,magento" in message and "| the file creates: public.sync_type e " in message
