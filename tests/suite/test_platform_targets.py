"""Targets that behave like real Supabase and Neon: their roles, privileges and auth, their own 0023, no residue.

Each platform is a cluster of its own, bootstrapped by the platform's superuser (supabase_admin, cloud_admin),
set up from tests/suite/platforms/ (written from the facts of Supabase's and Neon's own SQL); the report's Steps
1 and 2, 0023 and 0024 then run as the role a DBA works as there (postgres, which is no superuser on Supabase;
neondb_owner on Neon), and the suite verifies it by DSN.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from readiness.postgres import server
from readiness.schema.apply import apply_file
from readiness.schema.files import DEFAULT_MIGRATION, MIGRATION_0023, PREREQUISITE_FILES
from tests.suite.targets import PASSWORD, state_of

pytestmark = pytest.mark.suite

PLATFORMS = Path(__file__).parent / "platforms"
# The report's Steps 1 and 2, no grant in them.
ORGANIZATION, USERS_EXTENDED = PREREQUISITE_FILES[1], PREREQUISITE_FILES[2]
GRANT = "GRANT SELECT ON auth.users_extended TO authenticated;"
# Another team's 0023 with no sync% table, recorded in the Supabase CLI's history under its number.
RECORDED_0023 = """
CREATE TABLE integration_endpoint (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE, url text NOT NULL);
INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES ('20250301120000', '0023_integrations');
"""

Step = tuple[str, "Path | str"]  # (the role it runs as, a SQL file or text)


class Platform:
    """A cluster bootstrapped by `superuser`, set up by `cluster_sql`; make() builds a target database on it."""

    def __init__(self, superuser: str, cluster_sql: Path, database_sql: Path | None, owner: str) -> None:
        pg_ctl, _ = server.discover(None)
        self.executor = server.new_executor(pg_ctl, superuser=superuser)
        self.superuser, self.database_sql, self.owner = superuser, database_sql, owner
        self.executor.start()
        self.run(superuser, "postgres", cluster_sql)

    def connect(self, user: str, dbname: str) -> psycopg.Connection:
        return psycopg.connect(host=self.executor.host, port=self.executor.port, user=user, dbname=dbname)

    def run(self, user: str, dbname: str, step: Path | str) -> None:
        with self.connect(user, dbname) as conn:
            if isinstance(step, Path):
                apply_file(conn, step, trusted=True)
            else:
                conn.execute(step)

    def make(self, *steps: Step) -> str:
        """A database owned by the platform's DBA role, set up as the platform does, then `steps`; its DSN."""
        name = f"target_{uuid.uuid4().hex[:8]}"
        with self.connect(self.superuser, "postgres") as admin:
            admin.autocommit = True
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(self.owner))
            )
        if self.database_sql is not None:
            self.run(self.superuser, name, self.database_sql)
        for user, step in steps:
            self.run(user, name, step)
        return self.dsn(self.owner, name)

    def dsn(self, user: str, dbname: str) -> str:
        return f"postgresql://{user}:{PASSWORD}@{self.executor.host}:{self.executor.port}/{dbname}"

    def stop(self) -> None:
        server.stop(self.executor)


@pytest.fixture(scope="module")
def supabase() -> Iterator[Platform]:
    platform = Platform(
        "supabase_admin", PLATFORMS / "supabase_cluster.sql", PLATFORMS / "supabase_database.sql", "postgres"
    )
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def neon() -> Iterator[Platform]:
    platform = Platform("cloud_admin", PLATFORMS / "neon_cluster.sql", None, "neondb_owner")
    yield platform
    platform.stop()


def as_postgres(*steps: Path | str) -> list[Step]:
    return [("postgres", step) for step in steps]


def blocking(run) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return run.signoff["blocking_issues"]


def recommended(run, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["message"] for r in run.signoff["recommendations"] if text in r["message"]]


def test_supabase_without_the_grant_is_one_critical_issue_naming_it(readiness_run, supabase: Platform) -> None:
    """The report's Step 2 on Supabase gives authenticated no SELECT on auth.users_extended: one CRITICAL issue
    naming the GRANT, and every check that breaks BLOCKED by it, not failed one by one."""
    dsn = supabase.make(*as_postgres(ORGANIZATION, USERS_EXTENDED, MIGRATION_0023))
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "NOT APPROVED" and run.exit_code == 1, run.output
    issues = blocking(run)
    assert len(issues) == 1, issues
    issue = issues[0]
    assert issue["severity"] == "CRITICAL" and issue["requirement"]["id"] == "report.policy-privileges", issue
    assert "authenticated lacks SELECT on table auth.users_extended" in issue["message"], issue
    assert GRANT.replace("auth.users_extended", "TABLE auth.users_extended") in issue["message"], issue
    # what the gap breaks is BLOCKED by it; the isolation checks pass (a refusal reaches no other organisation)
    assert issue["checks"] >= 5 and {4, 6} <= set(issue["tasks"]), issue
    outcomes = run.signoff["checks"]
    failed = [o for o in outcomes if o["status"] == "failed"]
    assert [o["nodeid"].split("::")[-1] for o in failed] == ["test_api_roles_hold_what_the_policies_use"], failed
    environment = run.signoff["environment"]
    assert environment["target's platform (by its roles)"] == "Supabase-like", environment
    assert environment["target's connecting role"].startswith("postgres: not a superuser BYPASSRLS"), environment
    assert "pgrst_ddl_watch" in environment["target's event triggers on DDL"], environment
    assert environment["target's auth.uid()"] == "sql, reads request.jwt.claim.sub then request.jwt.claims"
    assert environment["target's default table privileges for the API roles"].endswith("in auth: none"), environment
    assert state_of(dsn) == before, "the run left residue in the target"


def test_supabase_with_the_grant_is_approved_and_names_what_it_exposes(readiness_run, supabase: Platform) -> None:
    """With the grant, before deploy: APPROVED as postgres (no superuser there), with the recommendation that
    auth.users_extended is readable whole by every signed-in user, and the evidence of 0023 named."""
    dsn = supabase.make(*as_postgres(ORGANIZATION, USERS_EXTENDED, GRANT, MIGRATION_0023))
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "APPROVED" and run.exit_code == 0, run.output
    exposed = recommended(run, "auth.users_extended, which 0024's policies read, can be read whole")
    assert exposed and "ENABLE ROW LEVEL SECURITY" in exposed[0] and "email" in exposed[0], run.signoff[
        "recommendations"
    ]
    evidence = run.signoff["environment"]["migration 0023 applied, as shown by"]
    assert "public.sync_connection (the report's Step 3 query)" in evidence, evidence
    assert state_of(dsn) == before, "the run left residue in the target"


def test_supabase_deployed_by_postgres_verified_by_supabase_admin(readiness_run, supabase: Platform) -> None:
    """0024 deployed by postgres, verified by supabase_admin (auth on its search_path, so policies print uid()
    unqualified in its sessions, and another owner and grantor than the file's replay): APPROVED, no drift."""
    postgres_dsn = supabase.make(*as_postgres(ORGANIZATION, USERS_EXTENDED, GRANT, MIGRATION_0023, DEFAULT_MIGRATION))
    dsn = postgres_dsn.replace("//postgres:", "//supabase_admin:")
    before = state_of(postgres_dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "APPROVED" and run.exit_code == 0, run.output
    assert run.signoff["target_state"] == "present", run.output
    assert [r for r in run.signoff["recommendations"] if r["message"].startswith("drift from the file")] == []
    assert recommended(run, "auth.users_extended, which 0024's policies read, can be read whole")
    assert state_of(postgres_dsn) == before, "the run left residue in the target"


def test_supabase_whose_history_records_0023_is_approved(readiness_run, supabase: Platform) -> None:
    """A 0023 with no sync% table, recorded as 0023 in supabase_migrations.schema_migrations: APPROVED, and the
    sign-off names the history as the evidence."""
    dsn = supabase.make(*as_postgres(ORGANIZATION, USERS_EXTENDED, GRANT, RECORDED_0023))
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "APPROVED", run.output
    evidence = run.signoff["environment"]["migration 0023 applied, as shown by"]
    assert evidence == "supabase_migrations.schema_migrations records 20250301120000 0023_integrations", evidence
    assert state_of(dsn) == before, "the run left residue in the target"


def test_neon_with_the_dbas_prerequisites_and_own_0023_is_approved(readiness_run, neon: Platform) -> None:
    """Neon: the owner is no superuser and there is no auth schema until the DBA adds the prerequisites and the
    auth.uid() shim; their 0023 names its tables otherwise than ours. APPROVED; the sign-off names the tables
    Step 3 found, and our own 0023's table is a difference, never blocking."""
    steps = [("neondb_owner", path) for path in (*PREREQUISITE_FILES, PLATFORMS / "their_0023.sql")]
    dsn = neon.make(*steps)
    before = state_of(dsn)
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "APPROVED" and run.exit_code == 0, run.output
    evidence = run.signoff["environment"]["migration 0023 applied, as shown by"]
    assert evidence == (
        "public.sync_credentials (the report's Step 3 query); public.sync_integrations (the report's Step 3 query)"
    ), evidence
    assert run.signoff["environment"]["target's platform (by its roles)"] == "Neon-like"
    differences = [d["found"] for d in run.signoff["design_differences"]]
    assert any("sync_connection" in found for found in differences), run.signoff["design_differences"]
    assert state_of(dsn) == before, "the run left residue in the target"


def test_neon_deployed_by_its_owner_verified_by_another_role(readiness_run, neon: Platform) -> None:
    """0024 deployed by neondb_owner, verified by a reviewer who owns none of it. Without USAGE on auth it cannot
    read the prerequisites: a usage error naming the GRANT. With it: APPROVED, no drift; the rollback cannot run on
    the target as a role that does not own its tables, which is said (never blocking), since the shadow ran it as
    the owner; the plans on the target's rows, which it may not read, are N/A."""
    steps = [("neondb_owner", path) for path in (*PREREQUISITE_FILES, MIGRATION_0023, DEFAULT_MIGRATION)]
    owner_dsn = neon.make(*steps)
    reviewer_dsn = owner_dsn.replace("//neondb_owner:", "//reviewer:")
    refused = readiness_run(None, f"--dsn={reviewer_dsn}")
    assert refused.exit_code == 4, refused.output  # usage error: nothing verified
    assert "lacks USAGE on schema auth" in refused.output, refused.output
    assert "GRANT USAGE ON SCHEMA auth TO reviewer;" in refused.output, refused.output
    neon.run("neondb_owner", owner_dsn.rsplit("/", 1)[1], "GRANT USAGE ON SCHEMA auth TO reviewer")
    before = state_of(owner_dsn)
    run = readiness_run(None, f"--dsn={reviewer_dsn}")
    assert run.signoff["verdict"] == "APPROVED" and run.exit_code == 0, run.output
    assert [r for r in run.signoff["recommendations"] if r["message"].startswith("drift from the file")] == []
    unchecked = recommended(run, "could not be run on the target as reviewer, which is not neondb_owner")
    assert unchecked and "must be owner" in unchecked[0], run.signoff["recommendations"]
    assert state_of(owner_dsn) == before, "the run left residue in the target"


def test_neon_without_auth_names_the_prerequisites_the_dba_must_add(readiness_run, neon: Platform) -> None:
    """Neon as a project starts: organization made, no auth schema and no API roles. The missing prerequisites are
    the blockers, each named."""
    dsn = neon.make(("neondb_owner", ORGANIZATION))
    run = readiness_run(None, f"--dsn={dsn}")
    assert run.signoff["verdict"] == "NOT APPROVED", run.output
    missing = [i["message"].split(" DOES NOT EXIST")[0] for i in blocking(run) if "DOES NOT EXIST" in i["message"]]
    assert missing == ["auth schema", "auth.users_extended table"], blocking(run)
