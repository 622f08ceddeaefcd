"""Supabase's splinter rules for task 7 (sessions in the way and the lock footprint: readiness.rules.locks).

A splinter rule returns findings, one per problem: in words naming the object and what to do, with the objects it
is about (their names as the catalog prints them, a function's without its arguments); the rules read all of
schema `public` (the schema Supabase's API exposes), so a caller separates the findings 0024 brings
from those already there by running a rule before and after it. Rules printing expressions call
pg_get_expr(), which takes ACCESS SHARE on the table: under lock_timeout they fail, never hang.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

import pglast
from pglast import ast
from psycopg import Connection

from readiness.schema.catalog import qualified_names

# --- Supabase linter (splinter) rules ---------------------------------------------------



@dataclass(frozen=True, order=True)
class LintFinding:
    """One problem a rule found: what it is and what to do, and the objects it is about."""

    text: str
    about: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.text


def _named(*objects: str) -> tuple[str, ...]:
    """Objects as a finding is about them: a function without its arguments (f(uuid) -> f)."""
    return tuple(name.split("(")[0] for name in objects)


LintRule = Callable[[Connection], list[LintFinding]]
RLS_ROLES = ("anon", "authenticated")  # the roles PostgREST runs requests as, subject to RLS
ANY_TABLE_PRIVILEGE = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"

# 0013 rls_disabled_in_public: a table (a partition too: it can be named directly) the API
# roles hold a privilege on, without RLS.
RLS_DISABLED_IN_PUBLIC = """
SELECT c.oid::regclass::text, array_agg(r.role ORDER BY r.role)
FROM pg_class c CROSS JOIN (SELECT rolname::text FROM pg_roles WHERE rolname = ANY(%s::text[])) AS r(role)
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
  AND has_table_privilege(r.role, c.oid, %s)
GROUP BY c.oid ORDER BY 1
"""

# 0007 policy_exists_rls_disabled: policies written, but not applied.
POLICY_EXISTS_RLS_DISABLED = """
SELECT c.oid::regclass::text, array_agg(p.polname::text ORDER BY p.polname)
FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
WHERE c.relnamespace = 'public'::regnamespace AND NOT c.relrowsecurity
GROUP BY c.oid ORDER BY 1
"""

# 0008 rls_enabled_no_policy: every API request refused. Partitions are left out: they are
# meant to be reached through their parent, whose policies apply, and closed when named.
RLS_ENABLED_NO_POLICY = """
SELECT c.oid::regclass::text
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity
  AND NOT c.relispartition AND NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid)
ORDER BY 1
"""

# 0006 multiple_permissive_policies: permissive policies are OR-ed, each evaluated for every
# row. A policy TO PUBLIC counts for each API role; FOR ALL counts for each command.
MULTIPLE_PERMISSIVE_POLICIES = """
WITH permissive AS (
    SELECT p.polrelid, p.polname,
           CASE p.polcmd WHEN 'r' THEN '{SELECT}'::text[] WHEN 'a' THEN '{INSERT}' WHEN 'w' THEN '{UPDATE}'
                         WHEN 'd' THEN '{DELETE}' ELSE '{SELECT,INSERT,UPDATE,DELETE}' END AS commands,
           CASE WHEN 0::oid = ANY(p.polroles) THEN %s::text[]
                ELSE ARRAY(SELECT rolname::text FROM pg_roles WHERE oid = ANY(p.polroles)) END AS roles
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
    WHERE c.relnamespace = 'public'::regnamespace AND p.polpermissive
)
SELECT p.polrelid::regclass::text, r.role, cmd.command, array_agg(p.polname::text ORDER BY p.polname)
FROM permissive p CROSS JOIN unnest(p.roles) AS r(role) CROSS JOIN unnest(p.commands) AS cmd(command)
GROUP BY 1, 2, 3 HAVING count(*) > 1 ORDER BY 1, 2, 3
"""

POLICY_EXPRESSIONS = """
SELECT c.oid::regclass::text, p.polname::text,
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1, 2
"""
AUTH_FUNCTIONS = {("auth", "uid"), ("auth", "jwt"), ("auth", "role")}

# 0011 function_search_path_mutable: a function without SET search_path resolves names in
# its caller's path; extensions' functions are theirs to fix.
FUNCTION_SEARCH_PATH_MUTABLE = """
SELECT p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT FROM unnest(coalesce(p.proconfig, '{}')) AS s(setting) WHERE s.setting LIKE 'search_path=%')
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1
"""

# 0028 / 0029: a SECURITY DEFINER function in the exposed schema the role may call (RPC).
SECURITY_DEFINER_EXECUTABLE = """
SELECT p.oid::regprocedure::text
FROM pg_proc p
CROSS JOIN (SELECT rolname FROM pg_roles WHERE rolname = %s) AS r  -- none on a database without the role
WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef AND has_function_privilege(r.rolname, p.oid, 'EXECUTE')
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1
"""

# 0001 unindexed_foreign_keys: no valid index of the table leads with the key's columns (in
# any order), so each delete or key update of the referenced row scans the table. Partitions'
# clones of a parent's key are covered by the parent's partitioned index.
UNINDEXED_FOREIGN_KEYS = """
SELECT k.conrelid::regclass::text, k.conname::text,
       (SELECT string_agg(a.attname, ', ' ORDER BY o.ord) FROM unnest(k.conkey) WITH ORDINALITY AS o(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = o.attnum),
       k.confrelid::regclass::text
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE c.relnamespace = 'public'::regnamespace AND k.contype = 'f' AND k.conparentid = 0
  AND NOT EXISTS (
      SELECT FROM pg_index i
      WHERE i.indrelid = k.conrelid AND i.indisvalid
        AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] @> k.conkey
        AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] <@ k.conkey)
ORDER BY 1, 2
"""

# 0009 duplicate_index: same table, method, key columns, operator classes, collations,
# directions, expressions and predicate. Partitions repeat their parent's indexes: left out.
DUPLICATE_INDEX = """
SELECT c.oid::regclass::text, array_agg(i.indexrelid::regclass::text ORDER BY i.indexrelid::regclass::text)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid
WHERE c.relnamespace = 'public'::regnamespace AND NOT c.relispartition
GROUP BY c.oid, x.relam, i.indkey::text, i.indclass::text, i.indcollation::text, i.indoption::text,
         coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_get_expr(i.indpred, i.indrelid), '')
HAVING count(*) > 1 ORDER BY 1
"""

# 0024 rls_policy_always_true: a permissive policy that lets every row be written.
POLICY_ALWAYS_TRUE = """
SELECT c.oid::regclass::text, p.polname::text,
       CASE p.polcmd WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
       concat_ws(' and ', CASE WHEN pg_get_expr(p.polqual, p.polrelid) = 'true' THEN 'USING (true)' END,
                          CASE WHEN pg_get_expr(p.polwithcheck, p.polrelid) = 'true' THEN 'WITH CHECK (true)' END)
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = 'public'::regnamespace AND p.polpermissive AND p.polcmd IN ('a', 'w', 'd', '*')
  AND (pg_get_expr(p.polqual, p.polrelid) = 'true' OR pg_get_expr(p.polwithcheck, p.polrelid) = 'true')
ORDER BY 1, 2
"""


def rls_disabled_in_public(conn: Connection) -> list[LintFinding]:
    """Tables of public, partitions included, that anon or authenticated hold a privilege on, without RLS."""
    return [
        LintFinding(
            f"{table}: RLS disabled while {' and '.join(roles)} hold privileges on it, every row is open to the API: "
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY (or REVOKE ALL ON {table} FROM anon, authenticated)",
            (table,),
        )
        for table, roles in conn.execute(RLS_DISABLED_IN_PUBLIC, (list(RLS_ROLES), ANY_TABLE_PRIVILEGE))
    ]


def policy_exists_rls_disabled(conn: Connection) -> list[LintFinding]:
    """Tables of public with policies while RLS is disabled: the policies are not applied."""
    return [
        LintFinding(
            f"{table}: policies {', '.join(names)} exist but RLS is disabled, so none applies: "
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            (table, *names),
        )
        for table, names in conn.execute(POLICY_EXISTS_RLS_DISABLED)
    ]


def rls_enabled_no_policy(conn: Connection) -> list[LintFinding]:
    """Tables of public (not partitions) with RLS enabled and no policy: every API request is refused."""
    return [
        LintFinding(f"{table}: RLS is enabled with no policy, so the API roles reach no row: create its policies",
                    (table,))  # fmt: skip
        for (table,) in conn.execute(RLS_ENABLED_NO_POLICY)
    ]


def multiple_permissive_policies(conn: Connection) -> list[LintFinding]:
    """Tables with more than one permissive policy for the same role and command."""
    return [
        LintFinding(
            f"{table}: {len(names)} permissive policies for {role} {command} ({', '.join(names)}), each evaluated "
            "for every row: merge them into one policy, or make the extra ones RESTRICTIVE",
            (table, *names),
        )
        for table, role, command, names in conn.execute(MULTIPLE_PERMISSIVE_POLICIES, (list(RLS_ROLES),))
    ]


def _walk(node: object, once: bool = False) -> Iterator[tuple[tuple[str, ...], bool]]:
    """(function name, evaluated once) for every function call in a pglast tree.

    A call is evaluated once per statement when it sits in the target list of a SELECT without
    FROM, `(SELECT auth.uid())`: PostgreSQL plans that as an InitPlan, and all inside it with it.
    """
    if isinstance(node, (tuple, list)):
        for item in node:
            yield from _walk(item, once)
        return
    if not isinstance(node, ast.Node):
        return
    if isinstance(node, ast.FuncCall):
        yield tuple(part.sval for part in node.funcname), once
    for attribute in node.__slots__:
        value = getattr(node, attribute)
        bare_select = isinstance(node, ast.SelectStmt) and attribute == "targetList" and not node.fromClause
        yield from _walk(value, once or bare_select)


def per_row_auth_calls(expression: str | None) -> list[str]:
    """The auth.uid()/auth.jwt()/auth.role() calls of a policy expression not wrapped as (SELECT ...)."""
    if not expression:
        return []
    (statement,) = pglast.parse_sql(f"SELECT {expression}")
    calls = _walk(statement.stmt.targetList)  # the wrapper SELECT is not an InitPlan: start outside it
    return sorted({".".join(name) + "()" for name, once in calls if name in AUTH_FUNCTIONS and not once})


def auth_rls_initplan(conn: Connection) -> list[LintFinding]:
    """Policies calling auth.uid(), auth.jwt() or auth.role() per row instead of once, as (SELECT auth.uid())."""
    findings = []
    with qualified_names(conn):  # auth.uid() prints as uid() when auth is on the session's search_path
        rows = conn.execute(POLICY_EXPRESSIONS).fetchall()
    for table, name, using, with_check in rows:
        for clause, expression in (("USING", using), ("WITH CHECK", with_check)):
            for call in per_row_auth_calls(expression):
                findings.append(LintFinding(
                    f"{table}: policy {name} calls {call} in {clause} once per row: write (SELECT {call}) "
                    "so it is evaluated once per statement",
                    (table, name),
                ))  # fmt: skip
    return findings


def function_search_path_mutable(conn: Connection) -> list[LintFinding]:
    """Functions of public without a pinned search_path."""
    return [
        LintFinding(
            f"{function}: search_path is not pinned, the function resolves names in its caller's path: "
            f"ALTER FUNCTION {function} SET search_path = ''",
            _named(function),
        )
        for (function,) in conn.execute(FUNCTION_SEARCH_PATH_MUTABLE)
    ]


def _security_definer_executable(conn: Connection, role: str) -> list[LintFinding]:
    return [
        LintFinding(
            f"{function}: SECURITY DEFINER and executable by {role}, who can call it through the API with its "
            f"owner's rights: REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC, {role}",
            _named(function),
        )
        for (function,) in conn.execute(SECURITY_DEFINER_EXECUTABLE, (role,))
    ]


def anon_security_definer_function_executable(conn: Connection) -> list[LintFinding]:
    """SECURITY DEFINER functions of public that anon may execute."""
    return _security_definer_executable(conn, "anon")


def authenticated_security_definer_function_executable(conn: Connection) -> list[LintFinding]:
    """SECURITY DEFINER functions of public that authenticated may execute."""
    return _security_definer_executable(conn, "authenticated")


def unindexed_foreign_keys(conn: Connection) -> list[LintFinding]:
    """Foreign keys whose columns are not the leading columns of an index of their table."""
    return [
        LintFinding(
            f"{table}: foreign key {name} ({columns}) -> {referenced} has no index leading with its columns, so "
            f"deleting a row of {referenced} scans {table}: CREATE INDEX ON {table} ({columns})",
            (table, name),
        )
        for table, name, columns, referenced in conn.execute(UNINDEXED_FOREIGN_KEYS)
    ]


def duplicate_index(conn: Connection) -> list[LintFinding]:
    """Sets of indexes of one table identical in key, operator classes, directions, expressions and predicate."""
    return [
        LintFinding(f"{table}: indexes {', '.join(names)} are identical, each write maintains them all: drop all "
                    "but one", (table, *names))  # fmt: skip
        for table, names in conn.execute(DUPLICATE_INDEX)
    ]


def rls_policy_always_true(conn: Connection) -> list[LintFinding]:
    """Permissive INSERT/UPDATE/DELETE/ALL policies whose USING or WITH CHECK is just true."""
    return [
        LintFinding(
            f"{table}: policy {name} ({command}) has {clauses}: every row may be written by its roles; "
            "restrict it to the caller's organisation",
            (table, name),
        )
        for table, name, command, clauses in conn.execute(POLICY_ALWAYS_TRUE)
    ]


RULES: dict[str, LintRule] = {
    rule.__name__: rule
    for rule in (
        rls_disabled_in_public,
        policy_exists_rls_disabled,
        rls_enabled_no_policy,
        multiple_permissive_policies,
        auth_rls_initplan,
        function_search_path_mutable,
        anon_security_definer_function_executable,
        authenticated_security_definer_function_executable,
        unindexed_foreign_keys,
        duplicate_index,
        rls_policy_always_true,
    )
}


def new_findings(rule: LintRule, after: Connection, existing: Collection[LintFinding]) -> list[LintFinding]:
    """What `rule` finds on `after` (0024 applied) that was not `existing` before it."""
    return [finding for finding in rule(after) if finding not in existing]
