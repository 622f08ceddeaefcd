"""Task 2, RLS Policy Validation: the 12 policies exactly, then isolation proven by acting as users.

Isolation is judged by what PostgreSQL does, whatever the policies' text: a user of organisation B
tries every command on organisation A's rows, by every write path (with and without WHERE or
RETURNING, INSERT ... ON CONFLICT, a partition named directly), and afterwards the rows, read as the
owner, say whether anything of A was read, written, moved or deleted.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from readiness.acting import factories, keys
from readiness.acting.access import ANON as ANON_ACTOR
from readiness.acting.access import MEMBER, ORPHAN, OTHER, SERVICE
from readiness.acting.auth import acting_as, as_user, attempt
from readiness.acting.factories import SYNC_TABLES, Tenant
from readiness.report.messages import differences
from readiness.rules import privileges, rls
from readiness.schema import catalog, design, expected
from readiness.schema.apply import first_reference
from readiness.schema.expected import ANON, SERVICE_ROLE
from readiness.verdicts import not_applicable

pytestmark = [pytest.mark.readiness, pytest.mark.enforces("report.isolation")]

# A column per table, named by the report, whose type the migration chooses and that no trigger rule reads:
# the one the update checks change (to a new value of its type).
EDITABLE = {"sync_preview_cache": "cache_key", "sync_progress": "job_id", "sync_activity_log": "sync_id"}
# A failure of these is one organisation reading or writing another's rows (or anon reading any): CRITICAL.
LEAK = pytest.mark.severity("CRITICAL")
# Each check marked with the table it isolates: the failures of a table whose RLS breaks the report's rule
# are one blocking issue, that table's (readiness.rules.rls, readiness.rules.causes).
TABLES = [pytest.param(table, marks=pytest.mark.uses(table)) for table in SYNC_TABLES]
POLICIES = [pytest.param(name, marks=pytest.mark.uses(table)) for name, (table, _) in sorted(expected.POLICIES.items())]


def of_orgs(conn: psycopg.Connection, table: str, *tenants: Tenant) -> set[keys.Key]:
    """The keys of the tenants' rows, read as the owner: a deployed target holds other organisations' rows too."""
    query = sql.SQL("SELECT {} FROM {} WHERE org_id = ANY(%s)").format(
        keys.selected(conn, table), sql.Identifier(table)
    )
    return {tuple(row) for row in conn.execute(query, ([tenant.org_id for tenant in tenants],))}


def row_of(conn: psycopg.Connection, table: str, key: keys.Key) -> dict[str, Any] | None:
    """The row `key` as the owner reads it, whole."""
    query = sql.SQL("SELECT * FROM {} WHERE {}").format(sql.Identifier(table), keys.where(conn, table, key))
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(query, key).fetchone()


def normalised(conn: psycopg.Connection, table: str, expression: str | None) -> str | None:
    """The expression as PostgreSQL prints it in pg_policies, from a probe policy created and rolled back."""
    if expression is None:
        return None
    with conn.transaction(force_rollback=True):
        conn.execute(
            sql.SQL("CREATE POLICY readiness_probe ON {} USING ({})").format(sql.Identifier(table), sql.SQL(expression))
        )
        return catalog.policies(conn, [table])["readiness_probe"].using


def edit(conn: psycopg.Connection, table: str, key: keys.Key) -> int:
    """UPDATE the row `key`'s editable column to a new value of its type; the rows updated."""
    column = EDITABLE[table]
    query = sql.SQL("UPDATE {} SET {} = %s WHERE {}").format(
        sql.Identifier(table), sql.Identifier(column), keys.where(conn, table, key)
    )
    return conn.execute(query, (factories.fresh_value_of(conn, table, column), *key)).rowcount


def delete_of(conn: psycopg.Connection, table: str, key: keys.Key) -> sql.Composed:
    """DELETE of the row `key` (its parameters are the key's values)."""
    return sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(table), keys.where(conn, table, key))


def insert_as_caller(conn: psycopg.Connection, table: str, org_id: Any) -> None:
    """Insert without RETURNING: RETURNING needs SELECT rights on the new row, a different question."""
    values = factories.new_row(conn, table, org_id)
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        ),
        list(values.values()),
    )


def tried(conn: psycopg.Connection, what: Callable[[], object]) -> str:
    """Run `what` in a savepoint: 'refused with <SQLSTATE> <message>', else 'accepted', with the rows it changed
    when it says (an UPDATE's or DELETE's count: 'accepted, 0 rows')."""
    done: list[object] = []
    error = attempt(conn, lambda: done.append(what()))
    if error:
        return f"refused with {error.sqlstate} {error.diag.message_primary}"
    result = done[0] if done else None
    count = result if isinstance(result, int) else getattr(result, "rowcount", -1)
    return f"accepted, {rows(count)}" if isinstance(count, int) and count >= 0 else "accepted"


def short(outcome: str) -> str:
    """'0 rows', 'accepted' or 'refused <SQLSTATE>': an outcome as a cell of the access matrix shows it."""
    return "refused " + outcome.split()[2] if outcome.startswith("refused") else outcome.removeprefix("accepted, ")


def rows(count: int, of: str = "") -> str:
    return f"{count} row{'s' if count != 1 else ''}{of}"


# --- catalog ---------------------------------------------------------------------------


@pytest.mark.enforces("report.rls-enabled")
@pytest.mark.check("RLS can be enabled")
@pytest.mark.parametrize("table", TABLES)
def test_rls_enabled(migrated: psycopg.Connection, table: str) -> None:
    """Row-level security is enabled on each sync table."""
    assert catalog.rls_enabled(migrated, table), f"RLS is not enabled on {table}: its rows are open to every role"


@pytest.mark.enforces("report.policies")
def test_exactly_the_twelve_policies(migrated: psycopg.Connection, counts_under_rls_of) -> None:
    """The sync tables carry exactly the report's 12 policies, by name and table, and no other."""
    found = {name: policy.table for name, policy in catalog.policies(migrated, list(SYNC_TABLES)).items()}
    wanted = {name: table for name, (table, _) in expected.POLICIES.items()}
    # A missing policy is its table's cause (readiness.rules.rls), not an issue of its own.
    counts_under_rls_of(sorted({table for name, table in wanted.items() if name not in found}))
    assert found == wanted, differences("policies on the sync tables", wanted, found)


@pytest.mark.enforces("report.policy-rule")
@pytest.mark.parametrize("name", POLICIES)
def test_policy_definition(migrated: psycopg.Connection, name: str, design_difference) -> None:
    """Each policy is permissive for its command, and what decides it reaches the caller and auth.users_extended."""
    policy = catalog.policies(migrated, list(SYNC_TABLES)).get(name)
    faults = rls.policy_faults(migrated, name, policy)
    if policy is not None:
        table = expected.POLICIES[name][0]
        ours = design.POLICIES[name]
        ours = replace(ours, using=normalised(migrated, table, ours.using),
                       with_check=normalised(migrated, table, ours.with_check))  # fmt: skip
        if policy != ours:
            design_difference(f"policy {name}", ours, policy)
    assert faults == [], "; ".join(faults)


@pytest.mark.enforces("report.policy-privileges")
@pytest.mark.severity("CRITICAL")
def test_api_roles_hold_what_the_policies_use(
    migrated: psycopg.Connection, causes, privilege_gaps, migration_state, blocking_issue, recommendation
) -> None:
    """The API roles the policies apply to hold what the policies (and triggers) use as the calling role: USAGE on
    its schemas, SELECT on what they read, EXECUTE on what they call; what they read no signed-in user reads whole."""
    error = causes.privileges_unread
    assert error is None, f"the privileges 0024's policies and triggers use could not be read: {error}"
    for gap in privilege_gaps:
        where = first_reference(migration_state.migration, gap.needed_by[0].split()[1])
        blocking_issue({"severity": "CRITICAL", "message": gap.message, "location": str(where or gap.needed_by[0])})
    tables = [f"public.{table}" for table in SYNC_TABLES if catalog.relation_exists(migrated, table)]
    for exposed in privileges.exposures(migrated, tables):
        recommendation("MEDIUM", exposed.message, exposed.table)
    assert privilege_gaps == [], "; ".join(gap.message for gap in privilege_gaps)


# --- behaviour: SELECT -----------------------------------------------------------------


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_member_sees_only_own_organisation(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """A user sees exactly their organisation's rows, and the other organisation's user sees exactly theirs."""
    for tenant in two_tenants:
        with as_user(migrated, tenant.user_id):
            seen = keys.visible(migrated, table)
        own, others = tenant.rows[table] in seen, seen - {tenant.rows[table]}
        observe(table, "SELECT", MEMBER, rows(int(own), " of their own"), own)
        observe(table, "SELECT", OTHER, rows(len(others), " of another organisation"), bool(others))
        assert seen == {tenant.rows[table]}, (
            f"{table}: the user of organisation {tenant.org_id} sees {len(seen)} rows, expected only their own one"
        )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_isolation_holds_when_users_extended_has_no_rls(
    migrated: psycopg.Connection, two_tenants, table: str, observe
) -> None:
    """With auth.users_extended readable whole (the report's Step 2 gives it no RLS), users still see only their rows.

    Our prerequisites restrict auth.users_extended to the caller's own row, which would hide a policy whose
    sub-select forgets to ask who the caller is; here the table is opened for the test, rolled back after it.
    """
    migrated.execute("ALTER TABLE auth.users_extended DISABLE ROW LEVEL SECURITY")
    for tenant in two_tenants:
        with as_user(migrated, tenant.user_id):
            seen = keys.visible(migrated, table)
        others = seen - {tenant.rows[table]}
        observe(table, "SELECT", OTHER, rows(len(others), " of another organisation"), bool(others))
        assert seen == {tenant.rows[table]}, (
            f"{table}: with auth.users_extended readable, the user of {tenant.org_id} sees {len(seen)} rows, "
            "expected only their organisation's: a policy's lookup of auth.users_extended does not ask who calls"
        )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_anon_sees_nothing(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """anon, which holds table privileges as on Supabase, sees no row."""
    with acting_as(migrated, ANON):
        seen = keys.visible(migrated, table)
    observe(table, "SELECT", ANON_ACTOR, rows(len(seen)), bool(seen))
    assert seen == set(), f"anon sees {len(seen)} rows of {table}"


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_user_without_mapping_sees_nothing(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """An authenticated user with no auth.users_extended row belongs to no organisation and sees nothing."""
    with as_user(migrated, uuid.uuid4()):
        seen = keys.visible(migrated, table)
    observe(table, "SELECT", ORPHAN, rows(len(seen)), bool(seen))
    assert seen == set(), f"a user with no organisation sees {len(seen)} rows of {table}"


@pytest.mark.enforces("rule.service-role")
@pytest.mark.parametrize("table", TABLES)
def test_service_role_sees_everything(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """service_role bypasses RLS and sees the rows of every organisation."""
    a, b = two_tenants
    with acting_as(migrated, SERVICE_ROLE):
        seen = keys.visible(migrated, table)
    both = {a.rows[table], b.rows[table]} <= seen
    observe(table, "SELECT", SERVICE, "both organisations' rows" if both else "not both organisations' rows", both)
    assert {a.rows[table], b.rows[table]} <= seen, f"service_role sees {len(seen)} rows of {table}, not both tenants'"


# --- behaviour: INSERT, UPDATE, DELETE -------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_insert_into_own_organisation(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """A user can insert rows for their own organisation."""
    a, _ = two_tenants
    with as_user(migrated, a.user_id):
        outcome = tried(migrated, lambda: insert_as_caller(migrated, table, a.org_id))
        seen = len(keys.visible(migrated, table))
    observe(table, "INSERT", MEMBER, short(outcome), outcome.startswith("accepted") and seen == 2)
    assert outcome.startswith("accepted") and seen == 2, (
        f"{table}: a user inserting a row for their own organisation was {outcome}, and then sees {seen} rows "
        "(expected accepted, and their 2 rows)"
    )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_insert_into_other_organisation_refused(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """A user inserting a row for another organisation is refused, and nothing is written."""
    a, b = two_tenants
    with as_user(migrated, b.user_id):
        outcome = tried(migrated, lambda: insert_as_caller(migrated, table, a.org_id))
    held = of_orgs(migrated, table, a, b)
    written = not outcome.startswith("refused") or held != {a.rows[table], b.rows[table]}
    observe(table, "INSERT", OTHER, short(outcome), written)
    assert not written, (
        f"{table}: a user of organisation B inserting a row for organisation A was {outcome}; "
        f"A and B now hold {len(held)} rows (expected their 2)"
    )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_anon_cannot_insert(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """anon inserting a row for any organisation is refused, and nothing is written."""
    a, b = two_tenants
    with acting_as(migrated, ANON):
        outcome = tried(migrated, lambda: insert_as_caller(migrated, table, a.org_id))
    written = not outcome.startswith("refused") or of_orgs(migrated, table, a, b) != {a.rows[table], b.rows[table]}
    observe(table, "INSERT", ANON_ACTOR, short(outcome), written)
    assert not written, f"{table}: anon inserting a row for organisation A was {outcome}"


@pytest.mark.parametrize("table", TABLES)
def test_update_own_row(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """A user can update their organisation's row."""
    a, _ = two_tenants
    with as_user(migrated, a.user_id):
        updated = edit(migrated, table, a.rows[table])
    observe(table, "UPDATE", MEMBER, rows(updated, " updated"), updated == 1)
    assert updated == 1, f"{table}: a user updating their own organisation's row updated {updated} rows, expected 1"


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_update_other_organisation_changes_nothing(
    migrated: psycopg.Connection, two_tenants, table: str, observe
) -> None:
    """Another organisation's user, and anon, update 0 rows of an organisation's data, which stays as it was."""
    a, b = two_tenants
    before = row_of(migrated, table, a.rows[table])
    for who, actor, acting in (
        ("a user of organisation B", OTHER, as_user(migrated, b.user_id)),
        ("anon", ANON_ACTOR, acting_as(migrated, ANON)),
    ):
        with acting:
            outcome = tried(migrated, lambda: edit(migrated, table, a.rows[table]))
        after = row_of(migrated, table, a.rows[table])
        observe(table, "UPDATE", actor, f"{short(outcome)}, row {'changed' if after != before else 'unchanged'}",
                after != before)  # fmt: skip
        assert after == before, (
            f"{table}: {who} updating organisation A's row was {outcome}, and the row changed: "
            + differences("the row", before or {}, after or {})
        )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_update_moving_row_to_other_organisation_refused(migrated: psycopg.Connection, two_tenants, table: str) -> None:
    """A user moving their row into another organisation (UPDATE ... WHERE its key) is refused; it stays theirs."""
    a, b = two_tenants
    move = sql.SQL("UPDATE {} SET org_id = %s WHERE {}").format(
        sql.Identifier(table), keys.where(migrated, table, a.rows[table])
    )
    with as_user(migrated, a.user_id):
        outcome = tried(migrated, lambda: migrated.execute(move, (b.org_id, *a.rows[table])))
    assert of_orgs(migrated, table, b) == {b.rows[table]}, (
        f"{table}: a user of organisation A moving their row into organisation B was {outcome}: B now holds it"
    )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_update_without_where_cannot_move_rows_to_other_organisation(
    migrated: psycopg.Connection, two_tenants, table: str
) -> None:
    """`UPDATE ... SET org_id = <another organisation>` with no WHERE and no RETURNING (no SELECT policy applies)
    moves none of the user's rows into that organisation."""
    a, b = two_tenants
    move = sql.SQL("UPDATE {} SET org_id = %s").format(sql.Identifier(table))
    with as_user(migrated, a.user_id):
        outcome = tried(migrated, lambda: migrated.execute(move, (b.org_id,)))
    assert of_orgs(migrated, table, b) == {b.rows[table]}, (
        f"{table}: `UPDATE {table} SET org_id = <B>` (no WHERE, no RETURNING) by a user of organisation A was "
        f"{outcome}, and moved their rows into organisation B: the UPDATE policy's WITH CHECK lets a row leave "
        "the caller's organisation"
    )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_delete_only_own_rows(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """Another organisation's user and anon delete 0 rows, with or without WHERE; the owner's user deletes theirs."""
    a, b = two_tenants
    by_key = sql.SQL("DELETE FROM {} WHERE {}").format(
        sql.Identifier(table), keys.where(migrated, table, a.rows[table])
    )
    everything = sql.SQL("DELETE FROM {}").format(sql.Identifier(table))
    for who, actor, acting in (("a user of organisation B", OTHER, lambda: as_user(migrated, b.user_id)),
                               ("anon", ANON_ACTOR, lambda: acting_as(migrated, ANON))):  # fmt: skip
        for statement, params in ((by_key, a.rows[table]), (everything, ())):
            with acting():
                outcome = tried(migrated, lambda: migrated.execute(statement, params))  # noqa: B023
            kept = a.rows[table] in of_orgs(migrated, table, a)
            how = "" if statement is by_key else "without WHERE: "
            observe(table, "DELETE", actor, f"{how}{short(outcome)}, row {'kept' if kept else 'deleted'}", not kept)
            assert kept, (
                f"{table}: {who} deleting ({statement.as_string(migrated)}) was {outcome} and deleted "
                "organisation A's row"
            )
    with as_user(migrated, a.user_id):
        deleted = migrated.execute(by_key, a.rows[table]).rowcount
    observe(table, "DELETE", MEMBER, rows(deleted, " deleted"), deleted == 1)
    assert deleted == 1, f"{table}: the user of organisation A deleting their own row deleted {deleted} rows"


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_user_without_mapping_cannot_write(migrated: psycopg.Connection, two_tenants, table: str, observe) -> None:
    """A signed-in user of no organisation inserting a row for organisation A is refused; updating or deleting A's
    row changes nothing."""
    a, b = two_tenants
    before, orphan = row_of(migrated, table, a.rows[table]), uuid.uuid4()
    with as_user(migrated, orphan):
        inserted = tried(migrated, lambda: insert_as_caller(migrated, table, a.org_id))
    written = not inserted.startswith("refused") or len(of_orgs(migrated, table, a, b)) != 2
    with as_user(migrated, orphan):
        updated = tried(migrated, lambda: edit(migrated, table, a.rows[table]))
        deleted = tried(migrated, lambda: migrated.execute(delete_of(migrated, table, a.rows[table]), a.rows[table]))
        everything = sql.SQL("DELETE FROM {}").format(sql.Identifier(table))  # no WHERE: no SELECT policy applies
        emptied = tried(migrated, lambda: migrated.execute(everything))
    after = row_of(migrated, table, a.rows[table])
    observe(table, "INSERT", ORPHAN, short(inserted), written)
    changed = after not in (before, None)
    observe(table, "UPDATE", ORPHAN, f"{short(updated)}, row {'changed' if changed else 'unchanged'}", changed)
    observe(table, "DELETE", ORPHAN, f"{short(deleted)}; without WHERE: {short(emptied)}, row "
            f"{'deleted' if after is None else 'kept'}", after is None)  # fmt: skip
    assert not written and after == before, (
        f"{table}: a user of no organisation inserting a row for organisation A was {inserted}, updating A's row "
        f"{updated}, deleting it {deleted}, deleting every row {emptied}; "
        + differences("A's row", before or {}, after or {})
    )


@pytest.mark.enforces("rule.service-role")
@pytest.mark.parametrize("table", TABLES)
def test_service_role_changes_every_organisation(
    migrated: psycopg.Connection, two_tenants, table: str, observe
) -> None:
    """service_role, the backend's role, updates and deletes the rows of any organisation."""
    a, b = two_tenants
    with acting_as(migrated, SERVICE_ROLE):
        updated = edit(migrated, table, b.rows[table])
        deleted = migrated.execute(delete_of(migrated, table, a.rows[table]), a.rows[table]).rowcount
    observe(table, "UPDATE", SERVICE, rows(updated, " updated"), updated == 1)
    observe(table, "DELETE", SERVICE, rows(deleted, " deleted"), deleted == 1)
    assert (updated, deleted) == (1, 1), (
        f"{table}: service_role updated {updated} and deleted {deleted} of the organisations' rows, expected 1 each"
    )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_upsert_cannot_take_over_other_organisations_row(migrated: psycopg.Connection, two_tenants, table: str) -> None:
    """INSERT ... ON CONFLICT (its key) DO UPDATE by another organisation's user, aimed at a row of organisation A,
    leaves that row as it was."""
    a, b = two_tenants
    key_columns = keys.columns(migrated, table)
    before = row_of(migrated, table, a.rows[table])
    values = {**factories.new_row(migrated, table, b.org_id), **dict(zip(key_columns, a.rows[table], strict=True))}
    column = EDITABLE[table]
    values[column] = factories.fresh_value_of(migrated, table, column)
    upsert = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({}) ON CONFLICT ({}) "
                     "DO UPDATE SET {} = EXCLUDED.{}, org_id = EXCLUDED.org_id").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)), keys.selected(migrated, table),
        sql.Identifier(column), sql.Identifier(column),
    )  # fmt: skip
    with as_user(migrated, b.user_id):
        outcome = tried(migrated, lambda: migrated.execute(upsert, list(values.values())))
    after = row_of(migrated, table, a.rows[table])
    assert after == before, (
        f"{table}: a user of organisation B upserting onto organisation A's row (ON CONFLICT DO UPDATE) was "
        f"{outcome}, and the row changed: " + differences("the row", before or {}, after or {})
    )


# --- partitions are tables too ---------------------------------------------------------


def partition_time(bound: str) -> str | None:
    """A created_at a partition of the log takes: the lower bound of a range, a far past for the default one."""
    if bound == "DEFAULT":
        return "1901-01-01 00:00:00+00"
    found = re.search(r"FROM \('([^']+)'\)", bound)
    return found.group(1) if found else None


def log_partitions(conn: psycopg.Connection) -> dict[str, str]:
    """Partition -> a created_at it takes; N/A when the log is not partitioned by range on created_at."""
    key = catalog.partition_key(conn, "sync_activity_log")
    if key is None or key[0] != "range" or key[1] != "created_at":
        not_applicable(f"sync_activity_log is partitioned {'by ' + ' on '.join(key) if key else 'not at all'}: "
                       "the direct-write checks pick a partition's rows by created_at")  # fmt: skip
    bounds = catalog.partitions(conn, "sync_activity_log")
    return {name: time for name, bound in bounds.items() if (time := partition_time(bound)) is not None}


def outsiders(conn: psycopg.Connection, b: Tenant) -> list[tuple[str, str, Callable[[], Any]]]:
    """Who may reach none of organisation A's rows: (who, actor, how to act as them)."""
    orphan = uuid.uuid4()
    return [("a user of organisation B", OTHER, lambda: as_user(conn, b.user_id)),
            ("a user of no organisation", ORPHAN, lambda: as_user(conn, orphan)),
            ("anon", ANON_ACTOR, lambda: acting_as(conn, ANON))]  # fmt: skip


@LEAK
@pytest.mark.uses("sync_activity_log")
def test_partition_named_directly_does_not_leak(migrated: psycopg.Connection, two_tenants, observe) -> None:
    """Naming a partition of sync_activity_log directly shows a user of another organisation, a user of none and
    anon no row of an organisation."""
    a, b = two_tenants
    leaked = []
    for partition in catalog.partitions(migrated, "sync_activity_log"):
        query = sql.SQL("SELECT count(*) FROM {} WHERE org_id = %s").format(sql.Identifier(partition))
        for who, actor, acting in outsiders(migrated, b):
            with acting():
                seen: list[int] = []
                error = attempt(migrated, lambda: seen.append(migrated.execute(query, (a.org_id,)).fetchone()[0]))  # noqa: B023
            count = seen[0] if seen else 0
            observe(partition, "SELECT", actor, f"refused {error.sqlstate}" if error else rows(count, " of another "
                    "organisation"), bool(count))  # fmt: skip
            if count:
                leaked.append(f"{partition} (by {who})")
    assert leaked == [], f"organisation A's rows are read through partitions {leaked}"


@LEAK
@pytest.mark.uses("sync_activity_log")
def test_partition_named_directly_refuses_foreign_write(migrated: psycopg.Connection, two_tenants, observe) -> None:
    """Inserting a row of an organisation by naming a partition directly is refused, in every partition, for a
    user of another organisation, a user of none and anon."""
    a, b = two_tenants
    written = []
    for partition, created_at in log_partitions(migrated).items():
        values = factories.new_row(migrated, "sync_activity_log", a.org_id, created_at=created_at)
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(partition), sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        )  # fmt: skip
        for who, actor, acting in outsiders(migrated, b):
            with acting():
                outcome = tried(migrated, lambda: migrated.execute(query, list(values.values())))  # noqa: B023
            observe(partition, "INSERT", actor, short(outcome), outcome.startswith("accepted"))
            if outcome.startswith("accepted"):
                written.append(f"{partition} (by {who})")
    assert written == [], f"rows of organisation A are written into partitions {written}"


# --- property: what a user reads is what the model says they may read --------------------

worlds = st.fixed_dictionaries(
    {
        "users": st.lists(st.integers(0, 3), min_size=1, max_size=6),  # each user's organisation index
        "rows": st.lists(st.tuples(st.sampled_from(SYNC_TABLES), st.integers(0, 3)), max_size=12),
        "orphans": st.integers(0, 1),
    }
)


@LEAK
@pytest.mark.uses(*SYNC_TABLES)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(world=worlds)
def test_random_worlds_match_the_model(migrated: psycopg.Connection, world: dict) -> None:  # type: ignore[type-arg]
    """In random worlds of organisations, users and rows, each user reads exactly their organisation's rows."""
    with migrated.transaction(force_rollback=True):
        orgs = [factories.organization(migrated, f"org-{i}") for i in range(4)]
        users = [(factories.user(migrated, orgs[o]), o) for o in world["users"]]
        users += [(uuid.uuid4(), None) for _ in range(world["orphans"])]
        rows: dict[str, list[tuple[keys.Key, int]]] = {table: [] for table in SYNC_TABLES}
        for table, o in world["rows"]:
            rows[table].append((keys.of(migrated, table, factories.sync_row(migrated, table, orgs[o])), o))
        for user_id, org in users:
            who = f"a user of organisation {org}" if org is not None else "a user of no organisation"
            with as_user(migrated, user_id):
                for table in SYNC_TABLES:
                    model = {key for key, o in rows[table] if o == org}
                    seen = keys.visible(migrated, table)
                    assert seen == model, (
                        f"{table}: in a world of {len(world['users'])} users and {len(world['rows'])} rows, {who} "
                        f"sees {len(seen)} rows, the model allows {len(model)}"
                    )
                other = orgs[(org + 1) % 4] if org is not None else orgs[0]
                for table in SYNC_TABLES:
                    outcome = tried(migrated, lambda: insert_as_caller(migrated, table, other))  # noqa: B023
                    assert outcome.startswith("refused"), (
                        f"{table}: {who} inserting another organisation's row was accepted"
                    )
