"""The report's RLS rule for a sync table, and the proof from the policies' structure that it keeps tenants apart.

Report, section 2: the 12 policies, a policy for each table and command ("Type"). Section 6, 4: "User can only
access records for their org_id", an upper bound, and the Root Cause Analysis: the policies decide by the user-org
mapping auth.users_extended and auth.uid(). So: RLS is on; each named policy exists on its table FOR its command
(permissive or restrictive: what they decide together is what counts); and for each command and each API role
subject to RLS, the table's policies combined as PostgreSQL combines them (permissive OR-ed, restrictive AND-ed) let
through only rows whose org_id the mapping gives the caller, or none (readiness.rules.pinning). Granting less
is never a fault. A table that breaks the rule makes its isolation checks fail: those failures have one cause, the
table's, and the sign-off reports it once (readiness.rules.causes), naming each condition that opens rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from readiness.rules import pinning
from readiness.rules.pinning import BY_CLAIMS, FALSE, OPEN, PINNED, UNDECIDED, Condition, Disjunct
from readiness.schema import catalog, expected
from readiness.schema.expected import ANON, AUTHENTICATED, Policy
from readiness.verdicts import Cause

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
POLCMD = {"SELECT": "r", "INSERT": "a", "UPDATE": "w", "DELETE": "d"}
# What decides a command, and what each part lets a role do to rows it passes.
PARTS = {"SELECT": ("USING",), "INSERT": ("WITH CHECK",), "UPDATE": ("USING", "WITH CHECK"), "DELETE": ("USING",)}
DOES = {
    ("SELECT", "USING"): "read every organisation's rows",
    ("DELETE", "USING"): "delete every organisation's rows",
    ("UPDATE", "USING"): "update every organisation's rows",
    ("UPDATE", "WITH CHECK"): "write rows into any organisation by UPDATE",
    ("INSERT", "WITH CHECK"): "insert rows for any organisation",
}
WHO = {
    frozenset({AUTHENTICATED}): "any signed-in user",
    frozenset({ANON}): "anon",
    frozenset({ANON, AUTHENTICATED}): "anyone, signed in or not,",
}
# The policies of a table, names qualified, with the API roles subject to RLS each applies to (by PUBLIC, by name
# or through membership) and whether each role holds each command's privilege on the table.
POLICIES_BY_ROLE_SQL = """
SELECT p.polname, p.polcmd::text, p.polpermissive, pg_get_expr(p.polqual, p.polrelid),
       pg_get_expr(p.polwithcheck, p.polrelid),
       ARRAY(SELECT r.rolname::text FROM pg_roles r WHERE r.rolname = ANY(%(roles)s) AND NOT r.rolbypassrls
             AND (0 = ANY(p.polroles)
                  OR EXISTS (SELECT FROM unnest(p.polroles) g WHERE pg_has_role(r.oid, g, 'MEMBER'))) ORDER BY 1)
FROM pg_policy p WHERE p.polrelid = %(table)s::regclass ORDER BY p.polname
"""
PRIVILEGED = "SELECT has_table_privilege(%s, %s::regclass, %s)"


@dataclass(frozen=True)
class Finding:
    """A disjunct of a policy that lets a role through to rows the report keeps from it (or might: undecided)."""

    policy: str
    command: str
    part: str
    conditions: tuple[Condition, ...]
    kind: str  # OPEN, BY_CLAIMS or UNDECIDED
    roles: frozenset[str] = frozenset()

    def message(self) -> str:
        who = WHO.get(self.roles, " and ".join(sorted(self.roles)))
        where = " AND ".join(condition.text for condition in self.conditions if condition.kind != FALSE)
        rows = DOES[(self.command, self.part)] + (f" where {where}" if where else "")
        if self.kind == UNDECIDED:
            return (f"{self.policy}: whether its {self.part} ({where}) keeps {who} to their organisation's rows cannot "
                    "be read from its structure; the behaviour checks over every row's domain decide it")  # fmt: skip
        if self.kind == BY_CLAIMS:
            return (f"{self.policy} lets {who} {rows}: it pins org_id otherwise than by the organisations "
                    "auth.users_extended maps the caller to, which the report's policies decide by")  # fmt: skip
        return f"{self.policy} lets {who} {rows}"


@dataclass
class Proof:
    """What the structure of a table's policies shows for one command: leaks, and what it cannot decide."""

    leaks: list[Finding] = field(default_factory=list)
    undecided: list[Finding] = field(default_factory=list)


def policy_faults(name: str, policy: Policy | None) -> list[str]:
    """How the report's policy `name` breaks the rule of its existence: [] when it is a policy FOR its command."""
    if policy is None:
        return [f"policy {name} does not exist"]
    command = expected.POLICIES[name][1]
    if policy.command != command:
        return [f"policy {name}: expected a policy FOR {command} (the report's Type), found FOR {policy.command}"]
    return []


def prove(conn: psycopg.Connection, table: str) -> dict[str, Proof]:
    """Command -> what the structure of `table`'s policies proves of it, for every API role subject to RLS; read once
    a session (a SQL file applied in it forgets it)."""
    return dict(catalog.read_once(conn, "proof", table, lambda: _prove(conn, table)))


def _prove(conn: psycopg.Connection, table: str) -> dict[str, Proof]:
    with catalog.qualified_names(conn):
        qualified = catalog.qualified(table)
        rows = conn.execute(POLICIES_BY_ROLE_SQL, {"roles": [ANON, AUTHENTICATED], "table": qualified}).fetchall()
        reader = pinning.Reader(conn, qualified)
        read: dict[str | None, list[Disjunct] | None] = {}

        def disjuncts(text: str | None) -> list[Disjunct] | None:
            if text not in read:
                read[text] = reader.disjuncts(text)
            return read[text]

        proofs = {}
        for command in COMMANDS:
            found: dict[tuple[str, str, tuple[str, ...], str], Finding] = {}
            for part in PARTS[command]:
                for role in (ANON, AUTHENTICATED):
                    if not catalog.scalar(conn, PRIVILEGED, role, qualified, command):
                        continue  # PostgreSQL refuses the command to the role whatever the policies say
                    applying = [row for row in rows if row[1] in (POLCMD[command], "*") and role in row[5]]
                    for finding in _judge(command, part, role, applying, disjuncts):
                        key = (finding.policy, part, tuple(c.text for c in finding.conditions), finding.kind)
                        roles = found[key].roles if key in found else frozenset()
                        found[key] = Finding(finding.policy, command, part, finding.conditions, finding.kind,
                                             roles | {role})  # fmt: skip
            proofs[command] = Proof([f for f in found.values() if f.kind in (OPEN, BY_CLAIMS)],
                                    [f for f in found.values() if f.kind == UNDECIDED])  # fmt: skip
    return proofs


def _expression(row: tuple, part: str) -> str | None:  # type: ignore[type-arg]
    """A policy's expression for `part`: WITH CHECK falls back on USING (FOR ALL and FOR UPDATE do so)."""
    using, check = row[3], row[4]
    return using if part == "USING" else check if check is not None else using


def _judge(command: str, part: str, role: str, applying: list, disjuncts) -> list[Finding]:  # type: ignore[no-untyped-def,type-arg]
    """The findings of one command's part for one role: each permissive disjunct, AND-ed with the most open
    disjunct of every restrictive policy, that no condition keeps to the caller's organisations."""
    restrictive = [disjuncts(_expression(row, part)) for row in applying if not row[2]]
    restrictive = [found for found in restrictive if found is not None]  # no expression: no restriction
    if any(all(pinning.verdict(d) in (PINNED, FALSE) for d in found) for found in restrictive):
        return []  # one restrictive policy keeps every row to the caller's organisations
    widest = [min(found, key=lambda d: RANK[pinning.verdict(d)]) for found in restrictive]
    findings = []
    for row in applying:
        if not row[2]:
            continue
        for disjunct in disjuncts(_expression(row, part)) or []:  # none: the policy grants nothing here
            combined = disjunct + tuple(c for d in widest for c in d)
            kind = pinning.verdict(combined)
            if kind in (OPEN, BY_CLAIMS, UNDECIDED):
                findings.append(Finding(row[0], command, part, combined, kind))
    return findings


RANK = {OPEN: 0, BY_CLAIMS: 1, UNDECIDED: 2, PINNED: 3, FALSE: 4}


def faults(conn: psycopg.Connection, tables: list[str]) -> dict[str, list[Cause]]:
    """Each of `tables` whose RLS breaks the rule, with how (and the table or policy each fault is about): RLS off,
    a named policy missing or for another command, a condition of its policies that opens rows to a role the report
    keeps them from."""
    policies = catalog.policies(conn, tables)
    found: dict[str, list[Cause]] = {}
    for table in tables:
        broken = [] if catalog.rls_enabled(conn, table) else [Cause(f"RLS is not enabled on {table}", (table,))]
        for name, (of_table, _) in sorted(expected.POLICIES.items()):
            if of_table == table:
                broken += [Cause(fault, (name,)) for fault in policy_faults(name, policies.get(name))]
        leaks = [leak for proof in prove(conn, table).values() for leak in proof.leaks]
        broken += [Cause(leak.message(), (leak.policy,)) for leak in leaks]
        if broken:
            found[table] = broken
    return found
