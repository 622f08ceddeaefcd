"""What a policy reaches is read from the catalog, the same whatever the session's search_path (rules.reach)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from readiness.acting.factories import SYNC_TABLES
from readiness.databases.build import create_with_prerequisites
from readiness.postgres.connection import Timeouts, connect
from readiness.rules import lint, privileges, reach, rls
from readiness.schema.apply import apply_file
from readiness.schema.files import DEFAULT_MIGRATION

pytestmark = pytest.mark.suite

SEARCH_PATHS = ['"$user", public', "auth, public", '"$user", public, auth, extensions', "pg_catalog"]


@pytest.fixture(scope="module")
def migrated(pg_server) -> Iterator[psycopg.Connection]:  # type: ignore[no-untyped-def]
    """A database of the test server with the prerequisites, 0023 and our 0024; each test rolls back."""
    conninfo = create_with_prerequisites(pg_server.host, pg_server.port, pg_server.user, Timeouts(), "reach_tests")
    with connect(conninfo, Timeouts()) as conn:
        apply_file(conn, DEFAULT_MIGRATION)
        conn.commit()
        yield conn


@pytest.fixture
def db(migrated: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with migrated.transaction(force_rollback=True):
        yield migrated


@pytest.mark.parametrize("path", SEARCH_PATHS)
def test_policy_rule_and_initplan_lint_ignore_the_search_path(db: psycopg.Connection, path: str) -> None:
    """With auth on the search_path PostgreSQL prints auth.uid() as uid(): the RLS rule and splinter's
    auth_rls_initplan give the same answer as without it."""
    db.execute("SELECT set_config('search_path', %s, true)", (path,))
    assert rls.faults(db, list(SYNC_TABLES)) == {}, f"search_path {path}: our policies break the RLS rule"
    assert lint.auth_rls_initplan(db) == [], f"search_path {path}: our policies call auth.uid() per row"
    db.execute(
        "CREATE POLICY readiness_probe ON public.sync_progress FOR SELECT USING (org_id IN (SELECT ue.org_id FROM "
        "auth.users_extended ue WHERE ue.id = auth.uid()))"
    )
    found = lint.auth_rls_initplan(db)
    assert any("readiness_probe calls auth.uid()" in finding.text for finding in found), f"search_path {path}: {found}"


HELPERS = {
    "sql": "CREATE FUNCTION probe_private.org_ids() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER "
    "SET search_path = '' AS $$ SELECT org_id FROM auth.users_extended WHERE id = (SELECT auth.uid()) $$",
    "plpgsql": "CREATE FUNCTION probe_private.org_ids() RETURNS SETOF uuid LANGUAGE plpgsql STABLE SECURITY DEFINER "
    "SET search_path = auth AS $$ BEGIN RETURN QUERY SELECT org_id FROM users_extended WHERE id = uid(); END $$",
    "sql, standard body": "CREATE FUNCTION probe_private.org_ids() RETURNS SETOF uuid LANGUAGE sql STABLE "
    "BEGIN ATOMIC SELECT org_id FROM auth.users_extended WHERE id = auth.uid(); END",
    "the JWT read directly": "CREATE FUNCTION probe_private.org_ids() RETURNS SETOF uuid LANGUAGE sql STABLE "
    "SET search_path = '' AS $$ SELECT org_id FROM auth.users_extended WHERE id = "
    "(current_setting('request.jwt.claims', true)::jsonb ->> 'sub')::uuid $$",
}


@pytest.mark.parametrize("helper", HELPERS.values(), ids=HELPERS.keys())
def test_a_helper_function_is_followed_into_its_body(db: psycopg.Connection, helper: str) -> None:
    """`org_id IN (SELECT probe_private.org_ids())`, the pattern Supabase's docs recommend, reaches the caller and
    auth.users_extended through the helper's body, whatever its language and search_path."""
    db.execute("CREATE SCHEMA probe_private")
    db.execute(helper)
    found = reach.expression(db, "(org_id IN (SELECT probe_private.org_ids() AS org_ids))")
    assert (found.caller, "auth.users_extended" in found.relations) == (True, True), found
    assert "probe_private.org_ids" in found.functions, found


@pytest.mark.parametrize(
    ("expression", "caller", "mapping"),
    [
        ("true", False, False),
        ("(org_id IN (SELECT ue.org_id FROM auth.users_extended ue))", False, True),
        ("((auth.jwt() ->> 'org_id'::text))::uuid = org_id", True, False),
        ("(org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE (ue.id = ( SELECT auth.uid() AS uid))))",
         True, True),
    ],
    ids=["true", "no caller", "no mapping", "ours"],
)  # fmt: skip
def test_what_an_expression_reaches(db: psycopg.Connection, expression: str, caller: bool, mapping: bool) -> None:
    """An expression reaches the caller through auth.uid() or the JWT, and the mapping by naming it."""
    found = reach.expression(db, expression)
    assert (found.caller, "auth.users_extended" in found.relations) == (caller, mapping), found


def test_what_the_caller_must_hold_stops_at_a_security_definer_function(db: psycopg.Connection) -> None:
    """Through a SECURITY DEFINER helper the caller needs EXECUTE on it and USAGE on its schema, not SELECT on what it
    reads (its owner reads that); inline, the caller needs SELECT on auth.users_extended and EXECUTE on auth.uid()."""
    db.execute("CREATE SCHEMA probe_private")
    db.execute(HELPERS["sql"])
    through = reach.expression(db, "(org_id IN (SELECT probe_private.org_ids() AS org_ids))").needs
    assert through == {
        reach.Need("schema", "probe_private", "USAGE"), reach.Need("function", "probe_private.org_ids()", "EXECUTE")
    }, through  # fmt: skip
    inline = reach.expression(
        db, "(org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE (ue.id = ( SELECT auth.uid() AS uid))))"
    ).needs
    assert {
        reach.Need("table", "auth.users_extended", "SELECT"), reach.Need("function", "auth.uid()", "EXECUTE"),
        reach.Need("schema", "auth", "USAGE"),
    } <= inline, inline  # fmt: skip


def test_a_trigger_function_needs_what_its_statements_write(db: psycopg.Connection) -> None:
    """A caller-rights trigger function's INSERT needs INSERT of the role whose statement fires it (not EXECUTE:
    PostgreSQL fires a trigger without checking it); a SECURITY DEFINER one needs nothing of it."""
    db.execute("CREATE TABLE public.probe_audit (id int)")
    db.execute(
        "CREATE FUNCTION public.probe_audit_row() RETURNS trigger LANGUAGE plpgsql SET search_path = '' AS "
        "$$ BEGIN INSERT INTO public.probe_audit VALUES (1); RETURN NEW; END $$"
    )
    needs = reach.trigger_function(db, "public", "probe_audit_row").needs
    assert needs == {reach.Need("schema", "public", "USAGE"), reach.Need("table", "public.probe_audit", "INSERT")}
    db.execute("ALTER FUNCTION public.probe_audit_row() SECURITY DEFINER")
    assert reach.trigger_function(db, "public", "probe_audit_row").needs == set()


def test_a_missing_grant_is_one_gap_with_its_fix(db: psycopg.Connection) -> None:
    """Without authenticated's SELECT on auth.users_extended, the twelve policies that read it make one gap, naming
    the GRANT; with it there is none."""
    tables = [f"public.{table}" for table in SYNC_TABLES]
    assert privileges.gaps(db, tables) == []
    db.execute("REVOKE SELECT ON auth.users_extended FROM authenticated")
    gaps = privileges.gaps(db, tables)
    assert [gap.grant for gap in gaps] == ["GRANT SELECT ON TABLE auth.users_extended TO authenticated;"], gaps
    assert len(gaps[0].needed_by) == 12 and gaps[0].tables == tuple(sorted(SYNC_TABLES)), gaps[0]


def test_tables_deployed_without_grants_are_one_gap_per_role(db: psycopg.Connection) -> None:
    """service_role without its privileges on two sync tables (deployed by a role the default privileges do not
    cover): one gap naming both tables and the one GRANT; authenticated without them is no gap (granting less than
    ours is sound: its checks list what it withholds)."""
    tables = [f"public.{table}" for table in SYNC_TABLES]
    db.execute("REVOKE ALL ON public.sync_progress, public.sync_preview_cache FROM authenticated, service_role")
    gaps = {gap.role: gap for gap in privileges.gaps(db, tables)}
    assert sorted(gaps) == ["service_role"], gaps
    assert gaps["service_role"].grant == (
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.sync_preview_cache, public.sync_progress "
        "TO service_role;"
    ), gaps["service_role"]
    assert gaps["service_role"].tables == ("sync_preview_cache", "sync_progress"), gaps["service_role"]
