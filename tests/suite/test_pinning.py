"""Isolation proven from the policies' structure (readiness.rules.pinning, readiness.rules.rls.prove): every disjunct
of what decides a command keeps rows to the caller's organisations, or it is named; sound shapes written otherwise
than ours pass.

Each case replaces one policy of our 0024 (in a transaction rolled back) and reads what the structure proves.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from readiness.acting.factories import SYNC_TABLES
from readiness.databases.build import create_with_prerequisites
from readiness.postgres.connection import Timeouts, connect
from readiness.rules import rls
from readiness.schema import catalog
from readiness.schema.apply import apply_file
from readiness.schema.files import DEFAULT_MIGRATION
from tests.suite.family.mutants import LEAK_CONDITIONS, POLICY_PREFIX

pytestmark = pytest.mark.suite

PIN = "org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid()))"
HELPERS = """
CREATE SCHEMA probe_private;
CREATE FUNCTION probe_private.org_ids() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
    AS $$ SELECT org_id FROM auth.users_extended WHERE id = (SELECT auth.uid()) $$;
CREATE FUNCTION probe_private.org_array() RETURNS uuid[] LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
    AS $$ SELECT array_agg(org_id) FROM auth.users_extended WHERE id = auth.uid() $$;
CREATE FUNCTION probe_private.org_ids_plpgsql() RETURNS SETOF uuid LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = auth AS $$ BEGIN RETURN QUERY SELECT org_id FROM users_extended WHERE id = uid(); END $$;
CREATE FUNCTION probe_private.is_member(org uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = '' AS $$ SELECT EXISTS (SELECT 1 FROM auth.users_extended ue
                                              WHERE ue.id = auth.uid() AND ue.org_id = org) $$;
CREATE FUNCTION probe_private.is_member_plpgsql(org uuid) RETURNS boolean LANGUAGE plpgsql STABLE
    SET search_path = '' AS $$ BEGIN RETURN org IN (SELECT ue.org_id FROM auth.users_extended ue
                                                    WHERE ue.id = auth.uid()); END $$;
CREATE FUNCTION probe_private.can_see(org uuid) RETURNS boolean LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = '' AS $$
    BEGIN
        IF auth.uid() IS NULL THEN RETURN false; END IF;
        RETURN EXISTS (SELECT 1 FROM auth.users_extended ue WHERE ue.id = auth.uid() AND ue.org_id = org);
    END $$;
CREATE FUNCTION probe_private.caller() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT auth.uid() $$;
GRANT USAGE ON SCHEMA probe_private TO anon, authenticated;
"""


@pytest.fixture(scope="module")
def migrated(pg_server) -> Iterator[psycopg.Connection]:  # type: ignore[no-untyped-def]
    """A database of the test server with the prerequisites, 0023, our 0024 and helper functions."""
    conninfo = create_with_prerequisites(pg_server.host, pg_server.port, pg_server.user, Timeouts(), "pinning_tests")
    with connect(conninfo, Timeouts()) as conn:
        apply_file(conn, DEFAULT_MIGRATION)
        conn.execute(HELPERS)
        conn.commit()
        yield conn


@pytest.fixture
def db(migrated: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The database in a transaction rolled back after the test; what the session read of it forgotten (a proof is
    read once a session, and each test changes a policy)."""
    catalog.forget(migrated)
    with migrated.transaction(force_rollback=True):
        yield migrated
    catalog.forget(migrated)


def replaced(db: psycopg.Connection, policy: str, definition: str) -> dict[str, rls.Proof]:
    """What the structure proves of the policy's table once `policy` is defined as `definition` instead."""
    table = next(table for table in SYNC_TABLES if policy.startswith(table.removeprefix("sync_")[:7]) or
                 policy.startswith(table))  # fmt: skip
    table = {"preview_cache": "sync_preview_cache"}.get(policy.rsplit("_", 1)[0], table)
    db.execute(f"DROP POLICY {policy} ON {table}")
    db.execute(f"CREATE POLICY {policy} ON {table} {definition}")
    catalog.forget(db)
    return rls.prove(db, table)


def messages(proofs: dict[str, rls.Proof], kind: str = "leaks") -> list[str]:
    return [finding.message() for proof in proofs.values() for finding in getattr(proof, kind)]


def test_our_policies_are_proven(db: psycopg.Connection) -> None:
    """Every command of every sync table of our 0024 is proven by its structure: no leak, nothing undecided."""
    for table in SYNC_TABLES:
        proofs = rls.prove(db, table)
        assert (messages(proofs), messages(proofs, "undecided")) == ([], []), table


SOUND = {
    "IN a SQL helper": ("sync_progress_select", "FOR SELECT TO authenticated USING (org_id IN "
                        "(SELECT probe_private.org_ids()))"),
    "IN a PL/pgSQL helper": ("sync_progress_select", "FOR SELECT TO authenticated USING (org_id IN "
                             "(SELECT probe_private.org_ids_plpgsql()))"),
    "= ANY an array helper": ("sync_progress_select", "FOR SELECT TO authenticated USING (org_id = ANY "
                              "(probe_private.org_array()))"),
    "a boolean helper": ("sync_progress_select", "FOR SELECT TO authenticated USING (probe_private.is_member(org_id))"),
    "a PL/pgSQL boolean helper": ("sync_progress_select", "FOR SELECT TO authenticated USING "
                                  "((SELECT probe_private.is_member_plpgsql(org_id)))"),
    "EXISTS": ("sync_progress_select", "FOR SELECT TO authenticated USING (EXISTS (SELECT 1 FROM auth.users_extended "
               "ue WHERE ue.id = auth.uid() AND ue.org_id = sync_progress.org_id))"),
    "the JWT's sub": ("sync_progress_select", "FOR SELECT TO authenticated USING (org_id = (SELECT ue.org_id FROM "
                      "auth.users_extended ue WHERE ue.id = (auth.jwt() ->> 'sub')::uuid))"),
    "the claims setting": ("sync_progress_select", "FOR SELECT TO authenticated USING (org_id IN (SELECT ue.org_id "
                           "FROM auth.users_extended ue WHERE ue.id = (current_setting('request.jwt.claims', true)"
                           "::jsonb ->> 'sub')::uuid))"),
    "a caller helper": ("sync_progress_select", f"FOR SELECT TO authenticated USING ({PIN.replace('auth.uid()', 'probe_private.caller()')})"),  # noqa: E501
    "narrower: AND a status": ("sync_progress_select", f"FOR SELECT TO authenticated USING ({PIN} AND status <> "
                               "'failed')"),
    "narrower in the sub-select": ("sync_progress_select", "FOR SELECT TO authenticated USING (org_id IN (SELECT "
                                   "ue.org_id FROM auth.users_extended ue WHERE ue.id = auth.uid() AND ue.email "
                                   "IS NOT NULL))"),
    "COALESCE(pin, false)": ("sync_progress_select", f"FOR SELECT TO authenticated USING (COALESCE({PIN}, false))"),
    "CASE WHEN pin THEN true ELSE false": ("sync_progress_select", f"FOR SELECT TO authenticated USING "
                                           f"(CASE WHEN {PIN} THEN true ELSE false END)"),
    "NOT NOT pin": ("sync_progress_select", f"FOR SELECT TO authenticated USING (NOT (NOT ({PIN})))"),
    "pin OR a contradiction": ("sync_progress_select", f"FOR SELECT TO authenticated USING ({PIN} OR 1 = 0)"),
    "append-only: USING (false)": ("sync_activity_log_delete", "FOR DELETE TO authenticated USING (false)"),
    "append-only: UPDATE false": ("sync_activity_log_update", "FOR UPDATE TO authenticated USING (false) "
                                  "WITH CHECK (false)"),
    "restrictive and nothing more": ("sync_progress_delete", f"AS RESTRICTIVE FOR DELETE TO authenticated "
                                     f"USING ({PIN})"),
}


@pytest.mark.parametrize(("policy", "definition"), SOUND.values(), ids=SOUND.keys())
def test_sound_shapes_are_proven(db: psycopg.Connection, policy: str, definition: str) -> None:
    """A policy written otherwise than ours, keeping every row to the caller's organisations (or granting less),
    is proven: no leak, nothing undecided."""
    proofs = replaced(db, policy, definition)
    assert (messages(proofs), messages(proofs, "undecided")) == ([], []), definition


LEAKS = {
    "OR an enum label": ("sync_progress_select", f"FOR SELECT TO authenticated USING ({PIN} OR status = 'failed')",
                         "sync_progress_select lets any signed-in user read every organisation's rows where status = "
                         "'failed'"),
    "OR a NULL user": ("sync_activity_log_select", f"FOR SELECT TO authenticated USING ({PIN} OR user_id IS NULL)",
                       "sync_activity_log_select lets any signed-in user read every organisation's rows where "
                       "user_id IS NULL"),
    "OR a time": ("preview_cache_update", f"FOR UPDATE TO authenticated USING ({PIN} OR expires_at < now()) WITH "
                  f"CHECK ({PIN})", "preview_cache_update lets any signed-in user update every organisation's rows "
                  "where expires_at < now()"),
    "WITH CHECK OR a label": ("sync_activity_log_insert", f"FOR INSERT TO authenticated WITH CHECK ({PIN} OR action = "
                              "'manual_trigger')", "sync_activity_log_insert lets any signed-in user insert rows for "
                              "any organisation where action = 'manual_trigger'"),
    "UPDATE's WITH CHECK": ("sync_progress_update", f"FOR UPDATE TO authenticated USING ({PIN}) WITH CHECK "
                            f"({PIN} OR status = 'cancelled')", "sync_progress_update lets any signed-in user write "
                            "rows into any organisation by UPDATE where status = 'cancelled'"),
    "TO public": ("sync_progress_delete", f"FOR DELETE TO public USING ({PIN} OR entity_type = 'invoice')",
                  "sync_progress_delete lets anyone, signed in or not, delete every organisation's rows where "
                  "entity_type = 'invoice'"),
    "a user column instead of org_id": ("sync_progress_select", f"FOR SELECT TO authenticated USING ({PIN} OR "
                                        "initiated_by = auth.uid())", "sync_progress_select lets any signed-in user "
                                        "read every organisation's rows where initiated_by = auth.uid()"),
    "USING (true)": ("sync_activity_log_select", "FOR SELECT TO authenticated USING (true)",
                     "sync_activity_log_select lets any signed-in user read every organisation's rows"),
    "a mapping without the caller": ("sync_progress_select", "FOR SELECT TO authenticated USING (org_id IN (SELECT "
                                     "ue.org_id FROM auth.users_extended ue))", "sync_progress_select lets any "
                                     "signed-in user read every organisation's rows where org_id IN (SELECT ue.org_id "
                                     "FROM auth.users_extended AS ue)"),
    "the caller in one branch of the sub-select": ("sync_progress_select", "FOR SELECT TO authenticated USING (org_id "
                                                   "IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = "
                                                   "auth.uid() OR ue.email LIKE '%@example.test'))",
                                                   "sync_progress_select lets any signed-in user read every "
                                                   "organisation's rows where org_id IN (SELECT ue.org_id FROM "
                                                   "auth.users_extended AS ue WHERE ue.id = auth.uid() OR "),
    "CASE opening a label": ("sync_progress_select", f"FOR SELECT TO authenticated USING (CASE WHEN status = 'failed' "
                             f"THEN true ELSE {PIN} END)", "sync_progress_select lets any signed-in user read every "
                             "organisation's rows where status = 'failed'"),
    "COALESCE opening a label": ("sync_progress_select", f"FOR SELECT TO authenticated USING (COALESCE(status = "
                                 f"'failed', {PIN}))", "sync_progress_select lets any signed-in user read every "
                                 "organisation's rows where status = 'failed'"),
    "IN a list": ("sync_progress_select", f"FOR SELECT TO authenticated USING ({PIN} OR status IN ('failed', "
                  "'timeout'))", "sync_progress_select lets any signed-in user read every organisation's rows where "
                  "status = 'timeout'"),
    "NOT of a pin": ("sync_progress_select", f"FOR SELECT TO authenticated USING (NOT ({PIN}))",
                     "sync_progress_select lets any signed-in user read every organisation's rows where "
                     "NOT (org_id IN"),
    "a signed-in check": ("sync_progress_select", "FOR SELECT TO authenticated USING (auth.uid() IS NOT NULL)",
                          "sync_progress_select lets any signed-in user read every organisation's rows where "
                          "auth.uid() IS NOT NULL"),
}


@pytest.mark.parametrize(("policy", "definition", "message"), LEAKS.values(), ids=LEAKS.keys())
def test_leaking_shapes_are_named(db: psycopg.Connection, policy: str, definition: str, message: str) -> None:
    """A disjunct that does not keep rows to the caller's organisations is a leak, named in the DBA's terms: the
    policy, who, what they may do, and the condition."""
    found = messages(replaced(db, policy, definition))
    assert any(leak.startswith(message) for leak in found), found


def test_a_claim_is_not_the_mapping(db: psycopg.Connection) -> None:
    """org_id pinned to a claim of the JWT keeps tenants apart by the token, not by auth.users_extended: named."""
    found = messages(replaced(db, "sync_progress_select", "FOR SELECT TO authenticated USING (org_id = "
                                                          "(auth.jwt() ->> 'org_id')::uuid)"))  # fmt: skip
    assert found and "otherwise than by the organisations auth.users_extended maps the caller to" in found[0], found


def test_restrictive_guard_under_open_permissive_policies(db: psycopg.Connection) -> None:
    """A RESTRICTIVE policy pinning every row lets permissive policies say only who may act at all: proven; the
    same guard widened by a condition leaks where both are open."""
    db.execute(f"CREATE POLICY guard ON sync_progress AS RESTRICTIVE FOR ALL TO authenticated USING ({PIN}) "
               f"WITH CHECK ({PIN})")  # fmt: skip
    proofs = replaced(db, "sync_progress_select", "FOR SELECT TO authenticated USING (auth.uid() IS NOT NULL)")
    assert (messages(proofs), messages(proofs, "undecided")) == ([], [])
    db.execute("DROP POLICY guard ON sync_progress")
    db.execute(f"CREATE POLICY guard ON sync_progress AS RESTRICTIVE FOR ALL TO authenticated USING ({PIN} OR "
               "status = 'paused')")  # fmt: skip
    catalog.forget(db)
    found = messages(rls.prove(db, "sync_progress"))
    assert any(m.startswith("sync_progress_select lets any signed-in user read every organisation's rows where "
                            "auth.uid() IS NOT NULL AND status = 'paused'") for m in found), found  # fmt: skip


def test_a_helper_with_branches_is_undecided(db: psycopg.Connection) -> None:
    """A PL/pgSQL helper with branches is not read: undecided, never proven on its structure alone."""
    proofs = replaced(db, "sync_progress_select", "FOR SELECT TO authenticated USING (probe_private.can_see(org_id))")
    assert messages(proofs) == []
    assert messages(proofs, "undecided") == [
        "sync_progress_select: whether its USING (probe_private.can_see(org_id)) keeps any signed-in user to their "
        "organisation's rows cannot be read from its structure; the behaviour checks over every row's domain decide it"
    ]


def test_a_role_without_the_privilege_is_not_a_leak(db: psycopg.Connection) -> None:
    """anon holding no privilege on the table is refused by PostgreSQL whatever a policy says: no finding."""
    db.execute("REVOKE ALL ON sync_progress FROM anon")
    catalog.forget(db)
    assert messages(replaced(db, "sync_progress_select", "FOR SELECT TO anon USING (true)")) == []


ROW_LEAKS = [(kind, table, command, condition) for kind, tables in LEAK_CONDITIONS.items()
             for table, conditions in tables.items()
             for command, condition in zip(rls.COMMANDS, conditions, strict=True)]  # fmt: skip


@pytest.mark.parametrize(("kind", "table", "command", "condition"), ROW_LEAKS,
                         ids=[f"{kind}-{table}-{command}" for kind, table, command, _ in ROW_LEAKS])  # fmt: skip
def test_row_dependent_leak_is_named(db: psycopg.Connection, kind: str, table: str, command: str,
                                     condition: str) -> None:  # fmt: skip
    """Each policy of our 0024 widened by `OR <a condition on the row>` (an enum label other than the first, a NULL,
    a time) is a leak its structure names: the policy, who, what they may do, and the condition's column."""
    policy = f"{POLICY_PREFIX[table]}_{command.lower()}"
    current = catalog.policies(db, [table])[policy]
    clause, expression = ("WITH CHECK", current.with_check) if command == "INSERT" else ("USING", current.using)
    db.execute(f"ALTER POLICY {policy} ON {table} {clause} (({expression}) OR {condition})")
    catalog.forget(db)
    found = [leak.message() for leak in rls.prove(db, table)[command].leaks]
    column = condition.split()[0]
    assert any(m.startswith(f"{policy} lets any signed-in user ") and f"where {column}" in m for m in found), found
