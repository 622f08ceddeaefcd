"""What 0024's tables, policies and trigger functions need the API roles to hold, what they lack, what they expose.

A policy's expression runs as the calling role: every table it reads, function it calls and schema it names
must be that role's to use (a SECURITY DEFINER function in between acts as its owner), or each query of the
table fails with "permission denied". So does a trigger's function, as the role whose statement fires it.
On Supabase, tables made in `auth` get no default privileges: the report's Step 2 makes auth.users_extended
without a grant, and then every signed-in user's query of a sync table fails. Each missing privilege is one
Gap, with the GRANT that closes it; the checks it breaks are BLOCKED by it (readiness.plugin.outcomes). So are the
tables' own privileges: service_role acts on each sync table by the four commands the report gives a policy each
(a table deployed by a role the schema's default privileges do not cover has none).

What the policies read is also what each caller may read: a table they read (auth.users_extended) that every
signed-in user can read whole, with no row level security or a policy that ignores the caller, is exposed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql

from readiness.rules import reach
from readiness.rules.reach import Need
from readiness.schema import catalog
from readiness.schema.expected import API_ROLES, AUTHENTICATED, SERVICE_ROLE

# The backend acts on every sync table by the four commands; what anon and authenticated hold of them is the
# migration's to give (less is sound: report.isolation is an upper bound), and what they hold decides what they need.
USERS = (SERVICE_ROLE,)
COMMANDS = {"r": ("SELECT",), "a": ("INSERT",), "w": ("UPDATE",), "d": ("DELETE",), "*": ("SELECT", "INSERT",
            "UPDATE", "DELETE")}  # fmt: skip

# The API roles that exist, and whether RLS applies to them (a BYPASSRLS role is never subject to a policy).
ROLE_BYPASS_SQL = "SELECT rolname, rolbypassrls FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname"
# The policies of `tables`: to whom they apply (a role, a role it is a member of, or PUBLIC) and their expressions.
POLICY_GRANTEES_SQL = """
SELECT p.polname, c.oid::regclass::text, p.polcmd::text, pg_get_expr(p.polqual, p.polrelid),
       pg_get_expr(p.polwithcheck, p.polrelid), p.polroles
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.oid = ANY(%s::regclass[]) ORDER BY c.oid::regclass::text, p.polname
"""
APPLIES_TO = "SELECT 0 = ANY(%s::oid[]) OR EXISTS (SELECT FROM unnest(%s::oid[]) r WHERE pg_has_role(%s, r, 'MEMBER'))"
TRIGGERS = """
SELECT t.tgname, c.oid::regclass::text, n.nspname, p.proname, t.tgtype
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE c.oid = ANY(%s::regclass[]) AND NOT t.tgisinternal ORDER BY 2, 1
"""
TRIGGER_EVENTS = {4: "INSERT", 16: "UPDATE", 8: "DELETE"}  # pg_trigger.tgtype bits
CAN = "SELECT has_table_privilege(%s, %s::regclass, %s)"
HOLDS = {
    "schema": "SELECT has_schema_privilege(%s, %s, %s)",
    "function": "SELECT has_function_privilege(%s, %s, %s)",
    "table": "SELECT CASE WHEN %s = 'DELETE' THEN has_table_privilege(%s, c.oid, 'DELETE') "
    "ELSE has_any_column_privilege(%s, c.oid, %s) END "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
}
EXPOSURE = """
SELECT c.relrowsecurity, ARRAY(SELECT a.attname::text FROM pg_attribute a
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       (SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
        AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s
"""
PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")
PRIVILEGE_ORDER = ("USAGE", "EXECUTE", "SELECT", "INSERT", "UPDATE", "DELETE")
GRANT_KINDS = {"schema": "SCHEMA", "function": "FUNCTION", "table": "TABLE"}


@dataclass(frozen=True)
class Gap:
    """Privileges an API role lacks on objects of one kind, that 0024's policies, triggers or users need it to hold:
    one issue, one GRANT."""

    role: str
    kind: str  # schema, table, function
    privileges: tuple[str, ...]
    names: tuple[str, ...]  # schema; schema.table; schema.function(argument types)
    needed_by: tuple[str, ...]  # "policy p on public.t", "trigger g on public.t (function f)", ...
    tables: tuple[str, ...]  # the tables whose checks it breaks (unqualified, as the checks name them)

    @property
    def objects(self) -> tuple[str, ...]:
        """The objects as PostgreSQL names them refusing them: users_extended, auth, uid."""
        return tuple(name.split("(")[0].split(".")[-1] for name in self.names)

    @property
    def grant(self) -> str:
        names = ", ".join(name if self.kind == "function" else _quoted(name) for name in self.names)
        return f"GRANT {', '.join(self.privileges)} ON {GRANT_KINDS[self.kind]} {names} TO {self.role};"

    @property
    def message(self) -> str:
        kind = self.kind if len(self.names) == 1 else f"{self.kind}s"
        return (
            f"{self.role} lacks {', '.join(self.privileges)} on {kind} {', '.join(self.names)}, which "
            f"{_users(self.needed_by)} use as the calling role: every {self.role} query of {', '.join(self.tables)} "
            f'that needs it fails with "permission denied for {self.kind} {self.objects[0]}". Fix: {self.grant}'
        )


@dataclass(frozen=True)
class Exposure:
    """A table the policies read that every signed-in user can read whole."""

    table: str
    columns: tuple[str, ...]
    why: str
    self_column: str | None  # its single-column primary key, the user's id in a self policy

    @property
    def message(self) -> str:
        own = self.self_column or "id"
        return (
            f"{self.table}, which 0024's policies read, can be read whole by every signed-in user ({self.why}): "
            f"each one can read every row's {', '.join(self.columns)}. Fix: ALTER TABLE {_quoted(self.table)} ENABLE "
            f"ROW LEVEL SECURITY; CREATE POLICY {self.table.split('.')[-1]}_select_own ON {_quoted(self.table)} FOR "
            f"SELECT TO {AUTHENTICATED} USING ({own} = (SELECT auth.uid())); or read it in the policies through a "
            f"SECURITY DEFINER function and REVOKE SELECT ON {_quoted(self.table)} FROM {AUTHENTICATED}"
        )


def _quoted(name: str) -> str:
    """schema.table as SQL, each part quoted only where PostgreSQL needs it."""
    return ".".join(part if PLAIN.fullmatch(part) else sql.Identifier(part).as_string() for part in name.split("."))


def _users(needed_by: tuple[str, ...]) -> str:
    """'the policies a, b on public.t; trigger g on public.t (function f)': policies grouped by their table."""
    by_table: dict[str, list[str]] = {}
    others = []
    for user in needed_by:
        kind, name, _, table = (user.split(" ", 3) + ["", ""])[:4]
        if kind == "policy":
            by_table.setdefault(table, []).append(name)
        else:
            others.append(user)
    grouped = [f"the {'policies' if len(n) > 1 else 'policy'} {', '.join(n)} on {t}" for t, n in by_table.items()]
    return "; ".join(grouped + others)


def _holds(conn: psycopg.Connection, role: str, need: Need) -> bool:
    if need.kind == "table":
        schema, table = need.name.split(".", 1)
        row = conn.execute(HOLDS["table"], (need.privilege, role, role, need.privilege, schema, table)).fetchone()
        return bool(row and row[0])
    return bool(catalog.scalar(conn, HOLDS[need.kind], role, need.name, need.privilege))


def _acting(conn: psycopg.Connection, table: str, roles: dict[str, bool], commands: tuple[str, ...]) -> list[str]:
    """The API roles that can run one of `commands` on `table` (so fire what it runs as them)."""
    return [role for role in roles if any(catalog.scalar(conn, CAN, role, table, command) for command in commands)]


def needs(conn: psycopg.Connection, tables: list[str]) -> dict[tuple[str, Need], tuple[set[str], set[str]]]:
    """(role, need) -> (what needs it, the tables whose checks it breaks), for the policies, triggers and users of
    `tables` (schema-qualified)."""
    roles = dict(conn.execute(ROLE_BYPASS_SQL, (list(API_ROLES),)).fetchall())
    found: dict[tuple[str, Need], tuple[set[str], set[str]]] = {}

    def add(role: str, wanted: set[Need], by: str, table: str) -> None:
        for need in wanted:
            users, broken = found.setdefault((role, need), (set(), set()))
            users.add(by)
            broken.add(table.split(".")[-1])

    with catalog.qualified_names(conn):
        policies = conn.execute(POLICY_GRANTEES_SQL, (tables,)).fetchall()
        for name, table, command, using, check, applies in policies:
            subject = [role for role, bypass in roles.items() if not bypass]
            for role in _acting(conn, table, dict.fromkeys(subject, False), COMMANDS[command]):
                if catalog.scalar(conn, APPLIES_TO, applies, applies, role):
                    wanted = reach.expression(conn, using).needs | reach.expression(conn, check).needs
                    add(role, wanted, f"policy {name} on {table}", table)
        for table in tables:  # the report's policies, a command each: its users act on the table by all four
            for role in (role for role in USERS if role in roles):
                wanted = {Need("schema", table.split(".")[0], "USAGE")}
                wanted |= {Need("table", table, command) for command in COMMANDS["*"]}
                add(role, wanted, f"its users acting on {table} (the report's policies, one per command)", table)
        for name, table, schema, function, kind in conn.execute(TRIGGERS, (tables,)).fetchall():
            events = tuple(event for bit, event in TRIGGER_EVENTS.items() if kind & bit)
            wanted = reach.trigger_function(conn, schema, function).needs
            for role in _acting(conn, table, roles, events):
                add(role, wanted, f"trigger {name} on {table} (function {schema}.{function})", table)
    return found


def gaps(conn: psycopg.Connection, tables: list[str]) -> list[Gap]:
    """What the API roles lack that the policies, triggers and users of `tables` need them to hold: a Gap per role,
    kind of object and set of privileges (so one GRANT closes it)."""
    per_object: dict[tuple[str, str, str], tuple[list[str], set[str], set[str]]] = {}
    for (role, need), (users, broken) in sorted(needs(conn, tables).items()):
        if not _holds(conn, role, need):
            privileges, all_users, all_broken = per_object.setdefault((role, need.kind, need.name), ([], set(), set()))
            privileges.append(need.privilege)
            all_users.update(users)
            all_broken.update(broken)
    grouped: dict[tuple[str, str, tuple[str, ...]], tuple[list[str], set[str], set[str]]] = {}
    for (role, kind, name), (privileges, users, broken) in per_object.items():
        ordered = tuple(sorted(privileges, key=PRIVILEGE_ORDER.index))
        names, all_users, all_broken = grouped.setdefault((role, kind, ordered), ([], set(), set()))
        names.append(name)
        all_users.update(users)
        all_broken.update(broken)
    return [
        Gap(role, kind, privileges, tuple(names), tuple(sorted(users)), tuple(sorted(broken)))
        for (role, kind, privileges), (names, users, broken) in grouped.items()
    ]


def exposures(conn: psycopg.Connection, tables: list[str]) -> list[Exposure]:
    """The tables the policies of `tables` read as a signed-in user that every signed-in user can read whole."""
    read = sorted(
        need.name
        for (role, need) in needs(conn, tables)
        if role == AUTHENTICATED and need.kind == "table" and need.name not in tables
        and _holds(conn, AUTHENTICATED, Need("table", need.name, "SELECT"))
    )  # fmt: skip
    found = []
    with catalog.qualified_names(conn):
        for table in dict.fromkeys(read):
            schema, name = table.split(".", 1)
            row = conn.execute(EXPOSURE, (schema, name)).fetchone()
            if row is None:
                continue
            secured, columns, key = row
            why = None if secured else "it has no row level security"
            if secured:
                for policy, _, command, using, _, applies in conn.execute(POLICY_GRANTEES_SQL, ([table],)).fetchall():
                    reads = command in ("r", "*") and catalog.scalar(conn, APPLIES_TO, applies, applies, AUTHENTICATED)
                    if reads and not reach.expression(conn, using).caller:
                        why = f"its policy {policy} lets every signed-in user read every row"
            if why:
                found.append(Exposure(table, tuple(columns), f"{AUTHENTICATED} holds SELECT and {why}", key))
    return found
