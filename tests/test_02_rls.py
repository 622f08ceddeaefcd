"""Task 2, RLS Policy Validation: the 12 policies, then isolation proven twice, by structure and by behaviour.

The report's isolation is an upper bound: a user reaches only their organisation's rows. First the policies'
structure: for every command, what the table's policies decide together (permissive OR-ed, restrictive AND-ed)
is put in disjunctive form, and every disjunct must keep rows to the organisations auth.users_extended maps the
caller to, or to none (readiness.rules.rls). Then behaviour, whatever the policies' text: organisation A holds
rows over every column's domain (every enum label, NULL, times past and future, users of either organisation or a
third, a row in every partition: readiness.acting.rows), and a user of organisation B, a user of none and anon
try every command on them by every path (with and without WHERE, INSERT ... ON CONFLICT, a partition named
directly); afterwards A's rows, read as the owner by their keys, say whether anything of A was read, written,
moved or deleted, and which rows, in words. A migration granting less than ours is sound: what it withholds from
an organisation's own users is a design difference, never a block.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from psycopg import sql

from readiness.acting import factories, keys, leaks, rows
from readiness.acting.access import ANON as ANON_ACTOR
from readiness.acting.access import MEMBER, ORPHAN, OTHER, SERVICE, Observation
from readiness.acting.auth import acting_as, as_user, attempt
from readiness.acting.factories import SYNC_TABLES, Tenant
from readiness.report.messages import differences
from readiness.report.record import Record
from readiness.rules import privileges, rls
from readiness.rules.causes import Causes, rls_cause
from readiness.schema import catalog, design, expected
from readiness.schema.apply import first_reference
from readiness.schema.expected import ANON, SERVICE_ROLE
from readiness.verdicts import Issue, not_applicable

pytestmark = [pytest.mark.readiness, pytest.mark.task(2), pytest.mark.enforces("report.isolation")]

# A column per table, named by the report, whose type the migration chooses and that no trigger rule reads:
# the one the update checks change (to a new value of its type).
EDITABLE = {"sync_preview_cache": "cache_key", "sync_progress": "job_id", "sync_activity_log": "sync_id"}
# A failure of these is one organisation reading or writing another's rows (or anon reading any): CRITICAL.
LEAK = pytest.mark.severity("CRITICAL")
# Each check marked with the table it isolates: the failures of a table whose RLS breaks the report's rule
# are one blocking issue, that table's (readiness.rules.rls, readiness.rules.causes).
TABLES = [pytest.param(table, marks=pytest.mark.uses(table)) for table in SYNC_TABLES]
POLICIES = [pytest.param(name, marks=pytest.mark.uses(table)) for name, (table, _) in sorted(expected.POLICIES.items())]


def keys_of(conn: psycopg.Connection, table: str, org_id: Any) -> set[keys.Key]:
    """The keys of an organisation's rows, read as the owner: a deployed target holds other organisations' too."""
    query = sql.SQL("SELECT {} FROM {} WHERE org_id = %s").format(keys.selected(conn, table), sql.Identifier(table))
    return {tuple(row) for row in conn.execute(query, (org_id,))}


def key_list(conn: psycopg.Connection, table: str, wanted: tuple[keys.Key, ...]) -> sql.Composed:
    """`(k1, k2) IN ((%s, %s), ...)` for the keys `wanted` (pass their values, flattened, as parameters)."""
    names = keys.columns(conn, table)
    one = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(names)))
    return sql.SQL("({}) IN ({})").format(sql.SQL(", ").join(map(sql.Identifier, names)),
                                          sql.SQL(", ").join([one] * len(wanted)))  # fmt: skip


def flat(wanted: tuple[keys.Key, ...]) -> list[Any]:
    return [value for key in wanted for value in key]


def normalised(conn: psycopg.Connection, table: str, expression: str | None) -> str | None:
    """The expression as PostgreSQL prints it in pg_policies, from a probe policy created and rolled back."""
    if expression is None:
        return None
    with conn.transaction(force_rollback=True):
        conn.execute(
            sql.SQL("CREATE POLICY readiness_probe ON {} USING ({})").format(sql.Identifier(table), sql.SQL(expression))
        )
        return catalog.policies(conn, [table])["readiness_probe"].using


def set_editable(conn: psycopg.Connection, table: str, wanted: tuple[keys.Key, ...] | None) -> int:
    """UPDATE the editable column of the rows `wanted` (every row the role may, when None) to a new value of its
    type; the rows updated."""
    column = EDITABLE[table]
    query = sql.SQL("UPDATE {} SET {} = %s").format(sql.Identifier(table), sql.Identifier(column))
    params: list[Any] = [factories.fresh_value_of(conn, table, column)]
    if wanted is not None:
        query, params = query + sql.SQL(" WHERE ") + key_list(conn, table, wanted), params + flat(wanted)
    return conn.execute(query, params).rowcount


def set_org(conn: psycopg.Connection, table: str, org_id: Any, wanted: tuple[keys.Key, ...] | None) -> int:
    """UPDATE ... SET org_id = `org_id` on the rows `wanted` (every row the role may, when None)."""
    query = sql.SQL("UPDATE {} SET org_id = %s").format(sql.Identifier(table))
    params: list[Any] = [org_id]
    if wanted is not None:
        query, params = query + sql.SQL(" WHERE ") + key_list(conn, table, wanted), params + flat(wanted)
    return conn.execute(query, params).rowcount


def delete(conn: psycopg.Connection, table: str, wanted: tuple[keys.Key, ...] | None) -> int:
    """DELETE the rows `wanted` (every row the role may, when None: no WHERE, so no SELECT policy applies)."""
    query = sql.SQL("DELETE FROM {}").format(sql.Identifier(table))
    if wanted is None:
        return conn.execute(query).rowcount
    return conn.execute(query + sql.SQL(" WHERE ") + key_list(conn, table, wanted), flat(wanted)).rowcount


def insert_values(conn: psycopg.Connection, table: str, values: dict[str, Any]) -> None:
    """Insert without RETURNING: RETURNING needs SELECT rights on the new row, a different question."""
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        ),
        list(values.values()),
    )  # fmt: skip


def tried(conn: psycopg.Connection, what: Callable[[], object]) -> str:
    """Run `what` in a savepoint: 'refused with <SQLSTATE> <message>', else 'accepted', with the rows it changed
    when it says (an UPDATE's or DELETE's count: 'accepted, 0 rows')."""
    done: list[object] = []
    error = attempt(conn, lambda: done.append(what()))
    if error:
        return f"refused with {error.sqlstate} {error.diag.message_primary}"
    result = done[0] if done else None
    count = result if isinstance(result, int) else getattr(result, "rowcount", -1)
    return f"accepted, {counted(count)}" if isinstance(count, int) and count >= 0 else "accepted"


def short(outcome: str) -> str:
    """'0 rows', 'accepted' or 'refused <SQLSTATE>': an outcome as a cell of the access matrix shows it."""
    return "refused " + outcome.split()[2] if outcome.startswith("refused") else outcome.removeprefix("accepted, ")


def counted(count: int, of: str = "") -> str:
    return f"{count} row{'s' if count != 1 else ''}{of}"


def outsiders(conn: psycopg.Connection, b: Tenant) -> list[tuple[str, str, Callable[[], Any]]]:
    """Who may reach none of organisation A's rows: (who, actor, how to act as them)."""
    orphan = uuid.uuid4()
    return [("a user of organisation B", OTHER, lambda: as_user(conn, b.user_id)),
            ("a user of no organisation", ORPHAN, lambda: as_user(conn, orphan)),
            ("anon", ANON_ACTOR, lambda: acting_as(conn, ANON))]  # fmt: skip


class Rows:
    """Organisation A's rows of a table, read as the owner, to say in words which an actor reached."""

    def __init__(self, conn: psycopg.Connection, table: str, a: Tenant, b: Tenant) -> None:
        self.conn, self.table, self.a, self.b = conn, table, a, b
        self.keys = a.rows[table]
        self.before = leaks.rows_by_key(conn, table, self.keys)
        self.now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]

    def which(self, reached: set[keys.Key] | list[keys.Key]) -> str:
        """'N of organisation A's <table> rows: those with <condition>'."""
        inside = [self.before[key] for key in self.keys if key in reached]
        outside = [self.before[key] for key in self.keys if key not in reached]
        skip = (*keys.columns(self.conn, self.table), "org_id")
        condition = leaks.condition(inside, outside, self.a.names(self.b), self.now, skip)
        every = "every one" if not outside else f"those with {condition}"
        return f"{len(inside)} of organisation A's {len(self.keys)} {self.table} rows ({every})"

    def changed(self) -> list[keys.Key]:
        """A's rows that are gone or differ from what they were."""
        after = leaks.rows_by_key(self.conn, self.table, self.keys)
        return [key for key in self.keys if after.get(key) != self.before[key]]


# --- catalog ---------------------------------------------------------------------------


@pytest.mark.enforces("report.rls-enabled")
@pytest.mark.task(2, 7)  # task 2 and task 7's "RLS can be enabled" both ask for it
@pytest.mark.check("RLS can be enabled")
@pytest.mark.parametrize("table", TABLES)
def test_rls_enabled(migrated: psycopg.Connection, table: str) -> None:
    """Row-level security is enabled on each sync table."""
    assert catalog.rls_enabled(migrated, table), f"RLS is not enabled on {table}: its rows are open to every role"


@pytest.mark.enforces("report.policies")
def test_the_twelve_policies(migrated: psycopg.Connection, causes: Causes, record: Record) -> None:
    """The sync tables carry the report's 12 policies, by name and table; others the migration adds are listed."""
    found = {name: policy.table for name, policy in catalog.policies(migrated, list(SYNC_TABLES)).items()}
    wanted = {name: table for name, (table, _) in expected.POLICIES.items()}
    # A missing policy is its table's cause (readiness.rules.rls), not an issue of its own.
    record.counts_under(rls_cause(tuple(sorted({t for name, t in wanted.items() if found.get(name) != t})), causes.rls))
    extra = {name: table for name, table in found.items() if name not in wanted}
    if extra:
        listed = ", ".join(f"{name} on {table}" for name, table in sorted(extra.items()))
        record.differ("policies beyond the report's twelve", "none", listed)
    present = {name: table for name, table in found.items() if name in wanted}
    assert present == wanted, differences("the report's policies on the sync tables", wanted, present)


@pytest.mark.enforces("report.policy-rule")
@pytest.mark.parametrize("name", POLICIES)
def test_policy_definition(migrated: psycopg.Connection, name: str, record) -> None:
    """Each of the report's policies is a policy FOR its command (permissive or restrictive)."""
    policy = catalog.policies(migrated, list(SYNC_TABLES)).get(name)
    faults = rls.policy_faults(name, policy)
    if policy is not None:
        table = expected.POLICIES[name][0]
        ours = design.POLICIES[name]
        ours = replace(ours, using=normalised(migrated, table, ours.using),
                       with_check=normalised(migrated, table, ours.with_check))  # fmt: skip
        if policy != ours:
            record.differ(f"policy {name}", ours, policy)
    assert faults == [], "; ".join(faults)


@LEAK
@pytest.mark.parametrize("name", POLICIES)
def test_isolation_proven_by_structure(migrated: psycopg.Connection, name: str, record) -> None:
    """What the table's policies decide together for the command of this policy, for anon and signed-in users, lets
    through only rows of the organisations auth.users_extended maps the caller to, or none: every disjunct."""
    table, command = expected.POLICIES[name]
    proof = rls.prove(migrated, table)[command]
    for undecided in proof.undecided:
        record.recommend(Issue("LOW", undecided.message(), f"policy {undecided.policy} on {table}",
                               about=(undecided.policy, table)))  # fmt: skip
    assert proof.leaks == [], "; ".join(leak.message() for leak in proof.leaks)


@pytest.mark.enforces("report.policy-privileges")
@pytest.mark.severity("CRITICAL")
def test_api_roles_hold_what_the_policies_use(
    migrated: psycopg.Connection, causes, privilege_gaps, migration_state, record
) -> None:
    """The API roles hold what they use: service_role the four commands on each sync table, the roles acting on a
    table USAGE on what its policies and triggers name, SELECT on what they read, EXECUTE on what they call; what
    they read no signed-in user reads whole."""
    error = causes.privileges_unread
    assert error is None, f"the privileges 0024's policies and triggers use could not be read: {error}"
    for gap in privilege_gaps:
        where = first_reference(migration_state.migration, gap.needed_by[0].split()[1])
        record.block(Issue("CRITICAL", gap.message, str(where or gap.needed_by[0]), at=where, about=gap.objects),
                     cause=migration_state.cause)
    tables = [f"public.{table}" for table in SYNC_TABLES if catalog.relation_exists(migrated, table)]
    for exposed in privileges.exposures(migrated, tables):
        record.recommend(Issue("MEDIUM", exposed.message, exposed.table, about=(exposed.table,)))
    assert privilege_gaps == [], "; ".join(gap.message for gap in privilege_gaps)


# --- behaviour: SELECT -----------------------------------------------------------------


def seen_by(conn: psycopg.Connection, table: str, wanted: tuple[keys.Key, ...]) -> tuple[set[keys.Key], str]:
    """The keys the current role reads, by every row (no WHERE) and by the keys `wanted` (WHERE): what it saw, and
    a refusal in words ('' when none)."""
    seen: set[keys.Key] = set()
    error = attempt(conn, lambda: seen.update(keys.visible(conn, table)))
    if error is None and wanted:
        query = sql.SQL("SELECT {} FROM {} WHERE ").format(keys.selected(conn, table), sql.Identifier(table))
        error = attempt(conn, lambda: seen.update(tuple(row) for row in conn.execute(
            query + key_list(conn, table, wanted), flat(wanted))))  # fmt: skip
    return seen, f"refused {error.sqlstate}" if error else ""


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_member_sees_only_own_organisation(migrated: psycopg.Connection, two_tenants, table: str, record) -> None:
    """A user of organisation B reads none of organisation A's rows, with or without WHERE, whatever their values;
    A's user reads theirs (all of them as ours, or fewer: granting less is sound)."""
    a, b = two_tenants
    with as_user(migrated, a.user_id):
        own, refusal = seen_by(migrated, table, a.rows[table])
    mine = own & set(a.rows[table])
    observed = refusal or counted(len(mine), f" of their {len(a.rows[table])}")
    record.observe(Observation(table, "SELECT", MEMBER, observed, mine == set(a.rows[table])))
    with as_user(migrated, b.user_id):
        seen, refusal = seen_by(migrated, table, a.rows[table])
    theirs = seen & set(a.rows[table])
    observed = refusal or counted(len(theirs), " of another organisation")
    record.observe(Observation(table, "SELECT", OTHER, observed, bool(theirs)))
    assert not theirs, f"{table}: a user of organisation B read {Rows(migrated, table, a, b).which(theirs)}"


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_isolation_holds_when_users_extended_has_no_rls(
    migrated: psycopg.Connection, two_tenants, table: str, record
) -> None:
    """With auth.users_extended readable whole (the report's Step 2 gives it no RLS), users still read only their
    organisation's rows.

    Our prerequisites restrict auth.users_extended to the caller's own row, which would hide a policy whose
    sub-select forgets to ask who the caller is; here the table is opened for the test, rolled back after it.
    """
    a, b = two_tenants
    migrated.execute("ALTER TABLE auth.users_extended DISABLE ROW LEVEL SECURITY")
    with as_user(migrated, b.user_id):
        seen, refusal = seen_by(migrated, table, a.rows[table])
    theirs = seen & set(a.rows[table])
    observed = refusal or counted(len(theirs), " of another organisation")
    record.observe(Observation(table, "SELECT", OTHER, observed, bool(theirs)))
    assert not theirs, (
        f"{table}: with auth.users_extended readable, a user of organisation B read "
        f"{Rows(migrated, table, a, b).which(theirs)}: a policy's lookup of auth.users_extended does not ask who calls"
    )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_anon_sees_nothing(migrated: psycopg.Connection, two_tenants, table: str, record) -> None:
    """anon reads no row, with or without WHERE (a refusal of the statement reads none either)."""
    a, b = two_tenants
    with acting_as(migrated, ANON):
        seen, refusal = seen_by(migrated, table, a.rows[table])
    record.observe(Observation(table, "SELECT", ANON_ACTOR, refusal or counted(len(seen)), bool(seen)))
    assert not seen & set(a.rows[table]), f"{table}: anon read {Rows(migrated, table, a, b).which(seen)}"
    assert not seen, f"{table}: anon read {len(seen)} rows"


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_user_without_mapping_sees_nothing(migrated: psycopg.Connection, two_tenants, table: str, record) -> None:
    """A signed-in user with no auth.users_extended row belongs to no organisation and reads nothing."""
    a, b = two_tenants
    with as_user(migrated, uuid.uuid4()):
        seen, refusal = seen_by(migrated, table, a.rows[table])
    record.observe(Observation(table, "SELECT", ORPHAN, refusal or counted(len(seen)), bool(seen)))
    assert not seen & set(a.rows[table]), (
        f"{table}: a user of no organisation read {Rows(migrated, table, a, b).which(seen)}"
    )
    assert not seen, f"{table}: a user of no organisation read {len(seen)} rows"


@pytest.mark.enforces("rule.service-role")
@pytest.mark.parametrize("table", TABLES)
def test_service_role_sees_everything(migrated: psycopg.Connection, two_tenants, table: str, record) -> None:
    """service_role bypasses RLS and reads every row of every organisation."""
    a, b = two_tenants
    with acting_as(migrated, SERVICE_ROLE):
        seen = keys.visible(migrated, table)
    every = set(a.rows[table]) | set(b.rows[table])
    observed = "every organisation's rows" if every <= seen else "not every row"
    record.observe(Observation(table, "SELECT", SERVICE, observed, every <= seen))
    assert every <= seen, f"service_role reads {len(seen & every)} of the {len(every)} rows of {table} of A and B"


# --- behaviour: what a user may do with their own organisation's rows (design) ---------------


@pytest.mark.enforces("design.member-access")
@pytest.mark.parametrize("table", TABLES)
def test_members_reach_their_own_rows(migrated: psycopg.Connection, two_tenants, table: str, record) -> None:
    """As ours, a user inserts, updates and deletes their organisation's rows, every one of them."""
    a, b = two_tenants
    withheld = []
    values = factories.domain_values(migrated, table, a)
    with as_user(migrated, a.user_id):
        refused = [row for row in values if tried(migrated, lambda: insert_values(migrated, table, row))  # noqa: B023
                   .startswith("refused")]  # fmt: skip
        updated = tried(migrated, lambda: set_editable(migrated, table, a.rows[table]))
        deleted = tried(migrated, lambda: delete(migrated, table, a.rows[table]))
    observed = f"{len(values) - len(refused)} of {len(values)} accepted"
    record.observe(Observation(table, "INSERT", MEMBER, observed, not refused))
    for command, outcome in (("UPDATE", updated), ("DELETE", deleted)):
        done = outcome == f"accepted, {counted(len(a.rows[table]))}"
        record.observe(Observation(table, command, MEMBER, short(outcome), done))
        if not done:
            withheld.append(f"{command} of all {len(a.rows[table])} of their rows was {outcome}")
    if refused:
        withheld.append(f"INSERT of {len(refused)} of {len(values)} rows over the columns' domains was refused")
    assert withheld == [], (
        f"users cannot do with their organisation's {table} rows what ours lets them: {'; '.join(withheld)}: "
        "intended? (granting less is sound: this never blocks)"
    )


# --- behaviour: INSERT, UPDATE, DELETE by outsiders -------------------------------------


def inserted_by_outsider(conn: psycopg.Connection, table: str, a: Tenant, b: Tenant, acting: Callable[[], Any],
                         actor: str, record) -> str:  # type: ignore[no-untyped-def]  # fmt: skip
    """Each of organisation A's rows over the columns' domains, inserted by an outsider (one statement a row, so a
    refused row hides no accepted one): '' when none was written, else which, in words."""
    values = factories.domain_values(conn, table, a)
    before = keys_of(conn, table, a.org_id) | keys_of(conn, table, b.org_id)
    accepted, refused = [], []
    with acting():
        for row in values:
            outcome = tried(conn, lambda: insert_values(conn, table, row))  # noqa: B023
            (accepted if outcome.startswith("accepted") else refused).append(row)
    written = (keys_of(conn, table, a.org_id) | keys_of(conn, table, b.org_id)) - before
    observed = f"{len(accepted)} of {len(values)} accepted"
    record.observe(Observation(table, "INSERT", actor, observed, bool(accepted or written)))
    if not accepted and not written:
        return ""
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    skip = (*keys.columns(conn, table), "org_id")
    return (f"{len(accepted)} of the {len(values)} rows tried (those with "
            f"{leaks.condition(accepted, refused, a.names(b), now, skip)}), {counted(len(written))} written")


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_insert_into_other_organisation_refused(migrated: psycopg.Connection, two_tenants, table: str, record) -> None:
    """A user of organisation B inserting organisation A's rows, over every column's domain, is refused each time."""
    a, b = two_tenants
    written = inserted_by_outsider(migrated, table, a, b, lambda: as_user(migrated, b.user_id), OTHER, record)
    assert not written, f"{table}: a user of organisation B wrote rows of organisation A: {written}"


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_anon_cannot_insert(migrated: psycopg.Connection, two_tenants, table: str, record) -> None:
    """anon inserting organisation A's rows, over every column's domain, is refused each time."""
    a, b = two_tenants
    written = inserted_by_outsider(migrated, table, a, b, lambda: acting_as(migrated, ANON), ANON_ACTOR, record)
    assert not written, f"{table}: anon wrote rows of organisation A: {written}"


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_update_other_organisation_changes_nothing(
    migrated: psycopg.Connection, two_tenants, table: str, record
) -> None:
    """A user of organisation B and anon change none of organisation A's rows: updating them by their keys, every
    row they may (no WHERE, so no SELECT policy applies), or taking them into B's organisation (both ways)."""
    a, b = two_tenants
    found = Rows(migrated, table, a, b)
    for who, actor, acting in (("a user of organisation B", OTHER, lambda: as_user(migrated, b.user_id)),
                               ("anon", ANON_ACTOR, lambda: acting_as(migrated, ANON))):  # fmt: skip
        outcomes = []
        with acting():
            outcomes.append(tried(migrated, lambda: set_editable(migrated, table, a.rows[table])))
            outcomes.append(tried(migrated, lambda: set_editable(migrated, table, None)))
            outcomes.append(tried(migrated, lambda: set_org(migrated, table, b.org_id, a.rows[table])))
            outcomes.append(tried(migrated, lambda: set_org(migrated, table, b.org_id, None)))  # no SELECT policy
        changed = found.changed()
        observed = "; ".join(dict.fromkeys(short(o) for o in outcomes)) + f", {counted(len(changed), ' of A changed')}"
        record.observe(Observation(table, "UPDATE", actor, observed, bool(changed)))
        assert not changed, f"{table}: {who} changed {found.which(changed)} ({'; '.join(outcomes)})"


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_update_moving_row_to_other_organisation_refused(migrated: psycopg.Connection, two_tenants, table: str) -> None:
    """A user moving each of their organisation's rows into another organisation (UPDATE ... WHERE its key, one
    row a statement, so a refused row hides no accepted one) is refused; every row stays theirs."""
    a, b = two_tenants
    found = Rows(migrated, table, a, b)
    with as_user(migrated, a.user_id):
        for key in a.rows[table]:
            tried(migrated, lambda: set_org(migrated, table, b.org_id, (key,)))  # noqa: B023
    moved = [key for key in a.rows[table] if key in keys_of(migrated, table, b.org_id)]
    assert not moved, f"{table}: a user of organisation A moved into organisation B {found.which(moved)}"


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_update_without_where_cannot_move_rows_to_other_organisation(
    migrated: psycopg.Connection, two_tenants, table: str
) -> None:
    """`UPDATE ... SET org_id = <another organisation>` with no WHERE and no RETURNING (no SELECT policy applies)
    moves none of the user's rows into that organisation."""
    a, b = two_tenants
    found = Rows(migrated, table, a, b)
    with as_user(migrated, a.user_id):
        outcome = tried(migrated, lambda: set_org(migrated, table, b.org_id, None))
    moved = [key for key in a.rows[table] if key in keys_of(migrated, table, b.org_id)]
    assert not moved, (
        f"{table}: `UPDATE {table} SET org_id = <B>` (no WHERE, no RETURNING) by a user of organisation A was "
        f"{outcome}, and moved into organisation B {found.which(moved)}: the UPDATE policy's WITH CHECK lets a row "
        "leave the caller's organisation"
    )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_delete_only_own_rows(migrated: psycopg.Connection, two_tenants, table: str, record) -> None:
    """A user of organisation B and anon delete none of organisation A's rows, by their keys or without WHERE."""
    a, b = two_tenants
    found = Rows(migrated, table, a, b)
    for who, actor, acting in (("a user of organisation B", OTHER, lambda: as_user(migrated, b.user_id)),
                               ("anon", ANON_ACTOR, lambda: acting_as(migrated, ANON))):  # fmt: skip
        with acting():
            by_key = tried(migrated, lambda: delete(migrated, table, a.rows[table]))
            everything = tried(migrated, lambda: delete(migrated, table, None))
        gone = found.changed()
        observed = f"{short(by_key)}; without WHERE: {short(everything)}, {counted(len(gone), ' of A deleted')}"
        record.observe(Observation(table, "DELETE", actor, observed, bool(gone)))
        assert not gone, (
            f"{table}: {who} deleting organisation A's rows (by their keys: {by_key}; without WHERE: {everything}) "
            f"deleted {found.which(gone)}"
        )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_user_without_mapping_cannot_write(migrated: psycopg.Connection, two_tenants, table: str, record) -> None:
    """A signed-in user of no organisation inserting organisation A's rows is refused each time; updating or
    deleting A's rows, by their keys or without WHERE, changes nothing."""
    a, b = two_tenants
    found = Rows(migrated, table, a, b)
    orphan = uuid.uuid4()
    written = inserted_by_outsider(migrated, table, a, b, lambda: as_user(migrated, orphan), ORPHAN, record)
    with as_user(migrated, orphan):
        updated = tried(migrated, lambda: set_editable(migrated, table, a.rows[table]))
        everything = tried(migrated, lambda: set_editable(migrated, table, None))
        deleted = tried(migrated, lambda: delete(migrated, table, a.rows[table]))
        emptied = tried(migrated, lambda: delete(migrated, table, None))
    changed = found.changed()
    after = leaks.rows_by_key(migrated, table, a.rows[table])
    gone = [key for key in changed if key not in after]
    observed = f"{short(updated)}; without WHERE: {short(everything)}"
    record.observe(Observation(table, "UPDATE", ORPHAN, observed, len(changed) > len(gone)))
    observed = f"{short(deleted)}; without WHERE: {short(emptied)}, {counted(len(gone), ' of A deleted')}"
    record.observe(Observation(table, "DELETE", ORPHAN, observed, bool(gone)))
    assert not written, f"{table}: a user of no organisation wrote rows of organisation A: {written}"
    assert not changed, (
        f"{table}: a user of no organisation updating A's rows ({updated}; without WHERE {everything}) and deleting "
        f"them ({deleted}; without WHERE {emptied}) changed {found.which(changed)}"
    )


@pytest.mark.enforces("rule.service-role")
@pytest.mark.parametrize("table", TABLES)
def test_service_role_changes_every_organisation(
    migrated: psycopg.Connection, two_tenants, table: str, record
) -> None:
    """service_role, the backend's role, updates and deletes the rows of any organisation."""
    a, b = two_tenants
    with acting_as(migrated, SERVICE_ROLE):
        updated = set_editable(migrated, table, b.rows[table])
        deleted = delete(migrated, table, a.rows[table])
    record.observe(Observation(table, "UPDATE", SERVICE, counted(updated, " updated"), updated == len(b.rows[table])))
    record.observe(Observation(table, "DELETE", SERVICE, counted(deleted, " deleted"), deleted == len(a.rows[table])))
    assert (updated, deleted) == (len(b.rows[table]), len(a.rows[table])), (
        f"{table}: service_role updated {updated} of organisation B's {len(b.rows[table])} rows and deleted "
        f"{deleted} of organisation A's {len(a.rows[table])}"
    )


@LEAK
@pytest.mark.parametrize("table", TABLES)
def test_upsert_cannot_take_over_other_organisations_row(migrated: psycopg.Connection, two_tenants, table: str) -> None:
    """INSERT ... ON CONFLICT (its key) DO UPDATE by a user of organisation B, aimed at each of organisation A's rows
    (one statement a row), leaves every row as it was."""
    a, b = two_tenants
    found = Rows(migrated, table, a, b)
    key_columns = keys.columns(migrated, table)
    column = EDITABLE[table]
    outcomes = set()
    for key, values in zip(a.rows[table], factories.domain_values(migrated, table, a), strict=False):
        values = {**values, "org_id": b.org_id, **dict(zip(key_columns, key, strict=True)),
                  column: factories.fresh_value_of(migrated, table, column)}  # fmt: skip
        upsert = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({}) ON CONFLICT ({}) "
                         "DO UPDATE SET {} = EXCLUDED.{}, org_id = EXCLUDED.org_id").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)), keys.selected(migrated, table),
            sql.Identifier(column), sql.Identifier(column),
        )  # fmt: skip
        with as_user(migrated, b.user_id):
            outcomes.add(short(tried(migrated, lambda: migrated.execute(upsert, list(values.values())))))  # noqa: B023
    changed = found.changed()
    assert not changed, (
        f"{table}: a user of organisation B upserting onto organisation A's rows (ON CONFLICT DO UPDATE: "
        f"{', '.join(sorted(outcomes))}) changed {found.which(changed)}"
    )


# --- partitions are tables too ---------------------------------------------------------


@LEAK
@pytest.mark.uses("sync_activity_log")
def test_partition_named_directly_does_not_leak(migrated: psycopg.Connection, two_tenants, record) -> None:
    """Naming a partition of sync_activity_log directly shows a user of another organisation, a user of none and
    anon no row of an organisation (which holds rows in every partition)."""
    a, b = two_tenants
    leaked = []
    for partition in catalog.partitions(migrated, "sync_activity_log"):
        query = sql.SQL("SELECT count(*) FROM {} WHERE org_id = %s").format(sql.Identifier(partition))
        held = migrated.execute(query, (a.org_id,)).fetchone()[0]
        for who, actor, acting in outsiders(migrated, b):
            with acting():
                seen: list[int] = []
                error = attempt(migrated, lambda: seen.append(migrated.execute(query, (a.org_id,)).fetchone()[0]))  # noqa: B023
            count = seen[0] if seen else 0
            observed = f"refused {error.sqlstate}" if error else counted(count, f" of A's {held}")
            record.observe(Observation(partition, "SELECT", actor, observed, bool(count)))
            if count:
                leaked.append(f"{partition} ({count} of A's {held} rows, by {who})")
    assert leaked == [], f"organisation A's rows are read through partitions {leaked}"


@LEAK
@pytest.mark.uses("sync_activity_log")
def test_partition_named_directly_refuses_foreign_write(migrated: psycopg.Connection, two_tenants, record) -> None:
    """Inserting a row of an organisation by naming a partition directly is refused, in every partition, for a
    user of another organisation, a user of none and anon."""
    a, b = two_tenants
    key = catalog.partition_key(migrated, "sync_activity_log")
    if key is None or key[0] != "range":
        not_applicable(f"sync_activity_log is partitioned {'by ' + ' on '.join(key) if key else 'not at all'}: the "
                       "direct-write checks pick a partition's rows by the time of its range")  # fmt: skip
    written = []
    for partition, moment in rows.partition_moments(migrated, "sync_activity_log").items():
        try:
            values = factories.new_row(migrated, "sync_activity_log", a.org_id, **{key[1]: moment})
        except rows.Refused:
            continue  # the migration's rules take no row at this partition's first moment
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(partition), sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        )  # fmt: skip
        for who, actor, acting in outsiders(migrated, b):
            with acting():
                outcome = tried(migrated, lambda: migrated.execute(query, list(values.values())))  # noqa: B023
            record.observe(Observation(partition, "INSERT", actor, short(outcome), outcome.startswith("accepted")))
            if outcome.startswith("accepted"):
                written.append(f"{partition} (by {who})")
    assert written == [], f"rows of organisation A are written into partitions {written}"


# --- property: what a user reads is what the model says they may read --------------------

def row_of_domain(axes: list[rows.Axis]) -> st.SearchStrategy[dict[str, Any]]:
    """A row drawn from the columns' domains, a value of each (one strategy per table and session)."""
    key = tuple(id(axis) for axis in axes)  # the axes are read once a session: the same objects each example
    if key not in _STRATEGIES:
        _STRATEGIES[key] = st.fixed_dictionaries({axis.column: st.sampled_from(axis.values) for axis in axes})
    return _STRATEGIES[key]


_STRATEGIES: dict[tuple[int, ...], st.SearchStrategy[dict[str, Any]]] = {}
# A row of each table the migration's rules accept, once a session: each world writes it for another organisation.
_ACCEPTED: dict[tuple[object, ...], dict[str, Any]] = {}
worlds = st.fixed_dictionaries(
    {
        "users": st.lists(st.integers(0, 3), min_size=1, max_size=6),  # each user's organisation index
        "rows": st.lists(st.tuples(st.sampled_from(SYNC_TABLES), st.integers(0, 3)), max_size=12),
        "orphans": st.integers(0, 1),
    }
)


@LEAK
@pytest.mark.uses(*SYNC_TABLES)
# No shrinking: a world that leaks is told by the condition on the rows it reached (readiness.acting.leaks), and
# shrinking one (a database of organisations, users and rows per step) costs a nested run half a minute.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # fmt: skip
@given(world=worlds, data=st.data())
def test_random_worlds_match_the_model(migrated: psycopg.Connection, world: dict, data: st.DataObject) -> None:  # type: ignore[type-arg]
    """In random worlds of organisations, users and rows drawn from every column's domain, each user reads exactly
    the rows of their organisation that they read at all, never another's, and writes none for another."""
    with migrated.transaction(force_rollback=True):
        orgs = [factories.organization(migrated, f"org-{i}") for i in range(4)]
        users = [(factories.user(migrated, orgs[o]), o) for o in world["users"]]
        named = tuple(user for user, _ in users[:3])  # who a drawn row's user column names, when it names one
        users += [(uuid.uuid4(), None) for _ in range(world["orphans"])]
        where = rows.context(migrated, named)
        made: dict[str, list[tuple[keys.Key, int, dict[str, Any]]]] = {table: [] for table in SYNC_TABLES}
        domains = {table: rows.axes(migrated, table) for table in SYNC_TABLES}
        for table, o in world["rows"]:
            drawn = data.draw(row_of_domain(domains[table]), label=table)
            row = rows.admitted(migrated, table, {"org_id": orgs[o]}, drawn, where, domains[table])
            made[table].append((keys.of(migrated, table, row), o, row))
        now = migrated.execute("SELECT now()").fetchone()[0]
        names = {org: f"organisation {i}" for i, org in enumerate(orgs)} | {
            user: f"a user of organisation {o}" for user, o in users if o is not None}  # fmt: skip
        for table in SYNC_TABLES:
            if (catalog.session(migrated), table) not in _ACCEPTED:
                _ACCEPTED[(catalog.session(migrated), table)] = factories.new_row(migrated, table, orgs[0])
        accepted = {table: _ACCEPTED[(catalog.session(migrated), table)] for table in SYNC_TABLES}
        for user_id, org in users:
            who = f"a user of organisation {org}" if org is not None else "a user of no organisation"
            with as_user(migrated, user_id):
                for table in SYNC_TABLES:
                    seen, _ = seen_by(migrated, table, tuple(key for key, _, _ in made[table]))
                    foreign = [(key, row) for key, o, row in made[table] if key in seen and o != org]
                    kept = [row for key, o, row in made[table] if key not in seen and o != org]
                    skip = (*keys.columns(migrated, table), "org_id")
                    assert not foreign, (
                        f"{table}: {who} read {counted(len(foreign))} of other organisations: those with "
                        f"{leaks.condition([row for _, row in foreign], kept, names, now, skip)}"
                    )
                other = orgs[(org + 1) % 4] if org is not None else orgs[0]
                for table in SYNC_TABLES:
                    values = {**accepted[table], "org_id": other}  # a row the migration's rules accept
                    outcome = tried(migrated, lambda: insert_values(migrated, table, values))  # noqa: B023
                    assert outcome.startswith("refused"), (
                        f"{table}: {who} inserting a row of another organisation was accepted"
                    )
