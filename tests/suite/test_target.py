"""Verifying an existing database by DSN: the report's verdict on a production lookalike, no residue, faults."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.executors import PostgreSQLExecutor

from readiness import SQL_DIR
from readiness.postgres import interrupt
from readiness.schema.apply import first_reference
from readiness.schema.files import DEFAULT_MIGRATION, MIGRATION_0023, PREREQUISITE_FILES
from tests.suite.targets import OPERATIONAL, PASSWORD, state_of

pytestmark = pytest.mark.suite

# The seed report's sections, in its order (Root Cause Analysis and Migration Sequencing are prose
# a person writes). Ours adds Measurements when a figure was measured: on the lookalike, only the start of the
# suite's own server, where the target's shadow is built.
REPORT_HEADINGS = [
    "## Executive Summary", "## Detailed Validation Results", "## Recommendations", "## Measurements",
    "## Rollback Procedure", "## Summary Table", "## Sign-Off",
]  # fmt: skip


def blocked_tests(report_dir: Path) -> set[str]:
    """Names of the tests junit.xml records as skipped with a BLOCKED reason."""
    root = ET.parse(report_dir / "junit.xml").getroot()
    return {
        case.get("name", "")
        for case in root.iter("testcase")
        for skipped in case.iter("skipped")
        if "BLOCKED" in (skipped.get("message") or "")
    }


def test_production_lookalike_is_blocked_as_in_the_report(readiness_run, target, tmp_path: Path) -> None:
    """Operational tables and no organization/auth: NOT APPROVED, the report's blockers, statuses and policy rows."""
    dsn = target(OPERATIONAL)
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.statuses() == {
        1: "FAIL", 2: "BLOCKED", 3: "BLOCKED", 4: "BLOCKED", 5: "BLOCKED", 6: "BLOCKED", 7: "FAIL", 8: "N/A"
    }, run.output  # fmt: skip
    assert run.signoff["verdict"] == "NOT APPROVED" and run.exit_code == 1
    critical = [issue for issue in run.signoff["blocking_issues"] if issue["severity"] == "CRITICAL"]
    organization = first_reference(DEFAULT_MIGRATION, "organization")
    assert [issue["message"].split(" DOES NOT EXIST")[0] for issue in critical[:3]] == [
        "organization table", "auth schema", "auth.users_extended table"
    ]  # fmt: skip
    assert critical[0]["location"] == str(organization)
    assert {key: critical[3][key] for key in ("severity", "message", "location")} == {
        "severity": "CRITICAL",
        "message": 'CREATE TABLE sync_preview_cache ( - relation "organization" does not exist',
        "location": str(organization),
    }
    assert len(critical) == 4, critical  # the report's four blocking issues, one per cause
    policies = {name for name in blocked_tests(tmp_path / "reports") if name.startswith("test_policy_definition[")}
    assert len(policies) == 12, sorted(policies)
    assert "DO NOT DEPLOY MIGRATION 0024 YET" in (tmp_path / "reports" / "readiness.html").read_text()
    markdown = (tmp_path / "reports" / "readiness.md").read_text()
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings == REPORT_HEADINGS, headings
    assert "### 1. Schema Validation - FAILED ❌" in markdown and "**Severity:** CRITICAL" in markdown
    assert "| 8. Rollback Procedure | N/A | - |" in markdown
    assert state_of(dsn) == before, "the run left residue in the target"


def test_lookalike_with_prerequisites_and_0023_is_approved_without_residue(readiness_run, target, tmp_path) -> None:
    """The same database once prerequisites and 0023 are applied: APPROVED, and identical before and after the run."""
    dsn = target(OPERATIONAL, *PREREQUISITE_FILES, MIGRATION_0023)
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "APPROVED", run.output
    assert run.exit_code == 0
    assert state_of(dsn) == before, "the run left residue in the target"
    outputs = [run.output] + [path.read_text() for path in (tmp_path / "reports").iterdir() if path.is_file()]
    assert not [text for text in outputs if PASSWORD in text], "the DSN's password appears in the output or reports"
    assert "(read only; checked in a shadow of it on the suite's server)" in run.signoff["environment"]["target"]
    moments = run.signoff["lock_moments"]["per_table"]
    assert set(moments) == {"organization", "auth.users_extended"}, run.signoff["lock_moments"]
    assert all(m["moments"] == 1 and m["longest_ms"] <= 1000 for m in moments.values()), moments
    assert run.signoff["target_state"] == "absent", run.output
    exposed = [r for r in run.signoff["recommendations"] if "can be read whole by every signed-in user" in r["message"]]
    assert exposed == [], exposed  # users_extended has RLS and a self policy here (sql/prerequisites/03)
    assert "gates its deploy" in run.signoff["environment"]["target_state"]
    assert "This run gates the deploy to the target" in (tmp_path / "reports" / "readiness.md").read_text()


def test_organisation_without_auth_is_blocked(readiness_run, target) -> None:
    """organization present but no auth schema: the two auth prerequisites are the CRITICAL blockers."""
    dsn = target(OPERATIONAL, SQL_DIR / "prerequisites" / "00_supabase_roles.sql", PREREQUISITE_FILES[1])
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "NOT APPROVED"
    missing = [
        i["message"].split(" DOES NOT EXIST")[0] for i in run.signoff["blocking_issues"] if "DOES NOT" in i["message"]
    ]
    assert missing == ["auth schema", "auth.users_extended table"], run.output
    assert run.statuses()[2] == "BLOCKED"


def test_prerequisites_without_0023_fail_task_1_only(readiness_run, target) -> None:
    """Prerequisites present but 0023 missing: task 1 FAIL naming 0023, every other task still verified."""
    dsn = target(OPERATIONAL, *PREREQUISITE_FILES)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "NOT APPROVED"
    assert run.statuses()[1] == "FAIL" and "0023" in run.task(1)["comments"], run.output
    assert {n for n, status in run.statuses().items() if status != "PASS"} == {1, 7}


def test_migration_failing_midway_leaves_nothing(readiness_run, target) -> None:
    """A migration that fails after creating its enums leaves the target exactly as it was."""
    dsn = target(OPERATIONAL, *PREREQUISITE_FILES, MIGRATION_0023)
    before = state_of(dsn)
    broken = DEFAULT_MIGRATION.read_text().replace(
        "CREATE TABLE sync_progress (", "CREATE TABLE sync_progress (\n    x nosuchtype,"
    )
    run = readiness_run(broken, f"--dsn={dsn}")
    assert run.statuses()[1] == "FAIL" and run.signoff["verdict"] == "NOT APPROVED", run.output
    assert 'type "nosuchtype" does not exist' in run.output
    assert state_of(dsn) == before, "the failed migration left residue in the target"


def test_lock_held_on_organization_is_reported_without_hanging(readiness_run, target) -> None:
    """Another session writing organization in an open transaction: reported as in 0024's way; the dry run on the
    target, which needs a lock that session's write conflicts with, is never had within the budget and is said
    so ("could not be checked on the target without stalling it"): not blocking by itself, never a wait."""
    dsn = target(OPERATIONAL, *PREREQUISITE_FILES, MIGRATION_0023)
    with psycopg.connect(dsn) as holder:
        holder.execute("INSERT INTO organization (name) VALUES ('held by a long transaction')")
        run = readiness_run(None, f"--dsn={dsn}")
        pid = holder.info.backend_pid
        holder.rollback()
    assert run.signoff["verdict"] == "NOT APPROVED", run.output
    assert run.signoff["readiness_checks"]["No active locks"] == "FAIL"
    assert f"pid {pid}" in run.output
    stalled = [r["message"] for r in run.signoff["recommendations"] if "without stalling it" in r["message"]]
    assert stalled and "locks were not had within 250 ms" in stalled[0], run.signoff["recommendations"]
    assert run.signoff["lock_moments"]["moments"] == [], run.signoff["lock_moments"]
    issues = run.signoff["blocking_issues"]
    assert len(issues) == 1 and "sessions in 0024's way" in issues[0]["message"], issues


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/nowhere", "Cannot connect to the target 127.0.0.1:1/nowhere"),
        ("postgresql://postgres@127.0.0.1:{port}/no_such_database", 'database "no_such_database" does not exist'),
        ("not a dsn at all = =", "The DSN given by --dsn / READINESS_DSN is not valid"),
    ],
)
def test_connection_faults_are_clear(readiness_run, pg_server: PostgreSQLExecutor, dsn: str, expected: str) -> None:
    """An unreachable host, a missing database or a malformed DSN: exit 4, a message saying what to check."""
    run = readiness_run(None, f"--dsn={dsn.format(port=pg_server.port)}")
    assert run.exit_code == 4, run.output
    assert expected in run.output
    assert "Traceback" not in run.output
    assert PASSWORD not in run.output


def test_workers_against_a_target_are_refused(readiness_run) -> None:
    """-n against a target is a usage error (exit 4): two workers' dry runs would wait on each other's locks."""
    run = readiness_run(None, f"--dsn=postgresql://postgres:{PASSWORD}@127.0.0.1:1/staging", "-n", "2")
    assert run.exit_code == 4, run.output
    assert "Run without -n" in run.output
    assert "Traceback" not in run.output and PASSWORD not in run.output


def test_target_of_another_major_is_refused(readiness_run, target) -> None:
    """A target whose major is not the one required stops the run (exit 4), naming the version found."""
    dsn = target(OPERATIONAL)
    run = readiness_run(None, f"--dsn={dsn}", "--pg-major=16")
    assert run.exit_code == 4, run.output
    assert "runs 17." in run.output and "targets PostgreSQL 16" in run.output
    assert PASSWORD not in run.output


@pytest.fixture
def password_role(pg_server: PostgreSQLExecutor) -> Iterator[str]:
    """A role that must log in with a password: pg_hba.conf asks it for one, restored afterwards."""
    hba = Path(pg_server.datadir) / "pg_hba.conf"
    original = hba.read_text()
    admin = psycopg.connect(host=pg_server.host, port=pg_server.port, user=pg_server.user, dbname="postgres")
    admin.autocommit = True
    admin.execute("CREATE ROLE readiness_pw LOGIN PASSWORD 'the-right-one'")
    hba.write_text(f"host all readiness_pw {pg_server.host}/32 scram-sha-256\n" + original)
    admin.execute("SELECT pg_reload_conf()")
    try:
        yield "readiness_pw"
    finally:
        hba.write_text(original)
        admin.execute("SELECT pg_reload_conf()")
        admin.execute("DROP ROLE readiness_pw")
        admin.close()


def test_wrong_password_is_clear(readiness_run, pg_server: PostgreSQLExecutor, password_role: str) -> None:
    """A wrong password: exit 4, a message naming the target and saying to check the password, never echoing it."""
    dsn = f"postgresql://{password_role}:{PASSWORD}@{pg_server.host}:{pg_server.port}/postgres"
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.exit_code == 4, run.output
    assert f'password authentication failed for user "{password_role}"' in run.output
    assert "check the password" in run.output
    assert PASSWORD not in run.output


def test_connection_lost_mid_run_ends_clearly_and_leaves_nothing(readiness_run, target, pg_server, tmp_path) -> None:
    """The target drops the suite's connection once the run has read it (held there, then let go on): a clear
    NOT APPROVED end (exit 4), and the target unchanged."""
    dsn = target(OPERATIONAL, *PREREQUISITE_FILES, MIGRATION_0023)
    before = state_of(dsn)
    database = dsn.rsplit("/", 1)[1]
    phases, resume = tmp_path / "phases", tmp_path / "resume"

    def drop_the_suite_connection() -> None:
        while not (phases.is_file() and interrupt.TARGET_READ in phases.read_text().splitlines()):
            if done.is_set():
                return
            time.sleep(0.05)
        with psycopg.connect(host=pg_server.host, port=pg_server.port, user=pg_server.user, dbname="postgres") as admin:
            admin.autocommit = True
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                "AND application_name = 'readiness-0024'", (database,),
            )  # fmt: skip
        resume.touch()

    done = threading.Event()
    killer = threading.Thread(target=drop_the_suite_connection)
    killer.start()
    try:
        env = {interrupt.PHASES_ENV: str(phases), interrupt.HOLD_ENV: interrupt.TARGET_READ,
               interrupt.RESUME_ENV: str(resume)}  # fmt: skip
        run = readiness_run(None, f"--dsn={dsn}", env=env)
    finally:
        done.set()
        killer.join()
    assert run.exit_code == 4, run.output
    assert "was lost during the run" in run.output
    assert run.signoff["verdict"] == "NOT APPROVED"
    assert state_of(dsn) == before, "the run left residue in the target"
