"""Linter rules for task 7: sessions in the migration's way, its lock footprint, Supabase's splinter rules.

The session check is a pure catalog read: it takes no lock a production session could hold, so it
never waits. The lock footprint runs the migration in the caller's transaction. A splinter rule
returns findings, one string per problem naming the object and what to do; the rules read all of
schema `public` (the schema Supabase's API exposes), so a caller separates the findings 0024 brings
from those already there by running a rule before and after it. Rules printing expressions call
pg_get_expr(), which takes ACCESS SHARE on the table: under lock_timeout they fail, never hang.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pglast
from pglast import ast
from psycopg import Connection

from readiness.catalog import qualified_names

# --- sessions in the way: locks held and transactions left open ------------------------

# Longer than this, an open transaction is a finding even if it holds no lock on the objects.
LONG_TRANSACTION = timedelta(minutes=5)

# Every other client session of this database holding or awaiting a lock on one of the
# relations (partitions included), or idle in a transaction, or in one open too long. Catalog
# reads only: to_regclass() and pg_inherits lock nothing (pg_partition_tree() would lock the
# partitions, and wait on the very session it should report).
# Autovacuum is left out (it cancels itself when DDL waits on it) unless it runs to prevent
# wraparound, which it does not cancel.
SESSIONS_IN_THE_WAY = """
WITH RECURSIVE touched(relid) AS (  -- the named relations and their partitions, read from pg_inherits
    SELECT to_regclass(n.name)::oid FROM unnest(%(relations)s::text[]) AS n(name)
    UNION SELECT i.inhrelid FROM pg_inherits i JOIN touched t ON i.inhparent = t.relid
)
SELECT a.pid, l.mode, l.relation::regclass::text, coalesce(l.granted, true), a.state,
       clock_timestamp() - a.xact_start
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'relation' AND l.relation IN (SELECT relid FROM touched)
WHERE a.pid <> pg_backend_pid() AND a.pid <> ALL(%(ours)s::int[]) AND a.datname = current_database()
  AND NOT (pg_blocking_pids(a.pid) && %(ours)s::int[])  -- waiting on the run itself: the run's lock moment
  AND (a.backend_type = 'client backend' OR a.query LIKE '%%to prevent wraparound%%')
  AND (l.pid IS NOT NULL OR a.state LIKE 'idle in transaction%%' OR clock_timestamp() - a.xact_start > %(long)s)
ORDER BY a.pid, l.relation::regclass::text, l.mode
"""
# pg_stat_activity is read once per transaction and kept: drop that copy to see the sessions now.
CLEAR_STATS_SNAPSHOT = "SELECT pg_stat_clear_snapshot()"


@dataclass(frozen=True)
class SessionFinding:
    """Another session holding (or awaiting) a lock on a relation the migration needs, or a transaction left open."""

    pid: int
    mode: str | None  # pg_locks.mode, None for an open transaction holding no lock on the relations
    relation: str | None
    granted: bool
    state: str | None  # pg_stat_activity.state
    age: timedelta | None  # how long its transaction has been open

    def __str__(self) -> str:
        what = (
            f"{'holds' if self.granted else 'waits for'} {self.mode} on {self.relation}"
            if self.relation
            else "has a transaction open"
        )
        return f"pid {self.pid} {what} ({self.state}, transaction open for {self.age})"


def sessions_in_the_way(
    conn: Connection, relations: list[str], ours: Collection[int] = (), long_transaction: timedelta = LONG_TRANSACTION
) -> list[SessionFinding]:
    """Other sessions (not this one, nor the suite's `ours`) that would make the migration wait on `relations`
    (missing ones are skipped), or hold a transaction open.

    Reads pg_locks and pg_stat_activity only; pg_terminate_backend() or waiting them out is the DBA's call.
    """
    conn.execute(CLEAR_STATS_SNAPSHOT)
    params = {"relations": relations, "ours": [*ours, conn.info.backend_pid], "long": long_transaction}
    rows = conn.execute(SESSIONS_IN_THE_WAY, params)
    return [SessionFinding(*row) for row in rows]


# --- lock footprint (as the tool "eugene" traces it) ------------------------------------

# The user relations (not the system catalogs) existing now, with their storage file.
USER_RELATIONS = """
SELECT c.oid::int8, c.oid::regclass::text, c.relkind::text, c.relfilenode::int8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%'
"""

# The relation locks this session holds in this database.
OWN_RELATION_LOCKS = """
SELECT l.relation::int8, l.mode FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""

# pg_locks modes, weakest first.
LOCK_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
TABLE_KINDS = {"r": "table", "p": "partitioned table", "m": "materialized view"}
STORAGE_KINDS = ("r", "m")  # tables with a file of their own: a rewrite gives them a new one


@dataclass(frozen=True)
class Footprint:
    """What running a migration did to the relations that existed before it, inside its transaction."""

    locks: dict[str, tuple[str, ...]]  # pre-existing relation -> the lock modes taken on it, weakest first
    kinds: dict[str, str]  # pre-existing relation -> pg_class.relkind
    rewritten: tuple[str, ...]  # pre-existing tables whose relfilenode changed
    masked: tuple[str, ...] = ()  # relations the transaction held locks on before: those modes are not seen

    def __str__(self) -> str:
        found = ", ".join(f"{name}: {'+'.join(m)}" for name, m in self.locks.items()) or "no pre-existing relation"
        masked = f" (modes held before it, by the rollback run first, are not seen on {', '.join(self.masked)})"
        return found + (masked if self.masked else "")

    def blocks_writes(self) -> list[str]:
        """The pre-existing relations locked in a mode that conflicts with ROW EXCLUSIVE: writes to them wait."""
        return [
            name for name, modes in self.locks.items() if set(modes) & set(LOCK_MODES[LOCK_MODES.index("ShareLock") :])
        ]

    def access_exclusive(self) -> list[str]:
        """The pre-existing relations locked ACCESS EXCLUSIVE: every read of them waits until COMMIT."""
        return [name for name, modes in self.locks.items() if "AccessExclusiveLock" in modes]


def lock_footprint(conn: Connection, run: Callable[[], object]) -> Footprint:
    """Call `run` (a migration applied in `conn`'s open transaction) and trace its locks on pre-existing relations.

    The locks are read back from pg_locks for this backend before the transaction ends. A mode the
    transaction held before (on a deployed 0024, its rollback runs first) cannot be told from the
    migration's own: such relations are listed as masked.
    """
    before = {oid: (name, kind, filenode) for oid, name, kind, filenode in conn.execute(USER_RELATIONS)}
    held_before = set(conn.execute(OWN_RELATION_LOCKS).fetchall())
    run()
    after = {oid: filenode for oid, _, _, filenode in conn.execute(USER_RELATIONS)}
    held: dict[str, set[str]] = {}
    for oid, mode in conn.execute(OWN_RELATION_LOCKS):
        if oid in before and (oid, mode) not in held_before:
            held.setdefault(before[oid][0], set()).add(mode)
    rewritten = tuple(
        sorted(
            name
            for oid, (name, kind, filenode) in before.items()
            if kind in STORAGE_KINDS and oid in after and after[oid] != filenode
        )
    )
    return Footprint(
        locks={name: tuple(sorted(modes, key=LOCK_MODES.index)) for name, modes in sorted(held.items())},
        kinds={name: kind for name, kind, _ in before.values()},
        rewritten=rewritten,
        masked=tuple(sorted({before[oid][0] for oid, _ in held_before if oid in before})),
    )


# --- Supabase linter (splinter) rules ---------------------------------------------------

Rule = Callable[[Connection], list[str]]
API_ROLES = ("anon", "authenticated")  # the roles PostgREST runs requests as, subject to RLS
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


def rls_disabled_in_public(conn: Connection) -> list[str]:
    """Tables of public, partitions included, that anon or authenticated hold a privilege on, without RLS."""
    return [
        f"{table}: RLS disabled while {' and '.join(roles)} hold privileges on it, every row is open to the API: "
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY (or REVOKE ALL ON {table} FROM anon, authenticated)"
        for table, roles in conn.execute(RLS_DISABLED_IN_PUBLIC, (list(API_ROLES), ANY_TABLE_PRIVILEGE))
    ]


def policy_exists_rls_disabled(conn: Connection) -> list[str]:
    """Tables of public with policies while RLS is disabled: the policies are not applied."""
    return [
        f"{table}: policies {', '.join(names)} exist but RLS is disabled, so none applies: "
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"
        for table, names in conn.execute(POLICY_EXISTS_RLS_DISABLED)
    ]


def rls_enabled_no_policy(conn: Connection) -> list[str]:
    """Tables of public (not partitions) with RLS enabled and no policy: every API request is refused."""
    return [
        f"{table}: RLS is enabled with no policy, so the API roles reach no row: create its policies"
        for (table,) in conn.execute(RLS_ENABLED_NO_POLICY)
    ]


def multiple_permissive_policies(conn: Connection) -> list[str]:
    """Tables with more than one permissive policy for the same role and command."""
    return [
        f"{table}: {len(names)} permissive policies for {role} {command} ({', '.join(names)}), each evaluated "
        "for every row: merge them into one policy, or make the extra ones RESTRICTIVE"
        for table, role, command, names in conn.execute(MULTIPLE_PERMISSIVE_POLICIES, (list(API_ROLES),))
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


def auth_rls_initplan(conn: Connection) -> list[str]:
    """Policies calling auth.uid(), auth.jwt() or auth.role() per row instead of once, as (SELECT auth.uid())."""
    findings = []
    with qualified_names(conn):  # auth.uid() prints as uid() when auth is on the session's search_path
        rows = conn.execute(POLICY_EXPRESSIONS).fetchall()
    for table, name, using, with_check in rows:
        for clause, expression in (("USING", using), ("WITH CHECK", with_check)):
            for call in per_row_auth_calls(expression):
                findings.append(
                    f"{table}: policy {name} calls {call} in {clause} once per row: write (SELECT {call}) "
                    "so it is evaluated once per statement"
                )
    return findings


def function_search_path_mutable(conn: Connection) -> list[str]:
    """Functions of public without a pinned search_path."""
    return [
        f"{function}: search_path is not pinned, the function resolves names in its caller's path: "
        f"ALTER FUNCTION {function} SET search_path = ''"
        for (function,) in conn.execute(FUNCTION_SEARCH_PATH_MUTABLE)
    ]


def _security_definer_executable(conn: Connection, role: str) -> list[str]:
    return [
        f"{function}: SECURITY DEFINER and executable by {role}, who can call it through the API with its "
        f"owner's rights: REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC, {role}"
        for (function,) in conn.execute(SECURITY_DEFINER_EXECUTABLE, (role,))
    ]


def anon_security_definer_function_executable(conn: Connection) -> list[str]:
    """SECURITY DEFINER functions of public that anon may execute."""
    return _security_definer_executable(conn, "anon")


def authenticated_security_definer_function_executable(conn: Connection) -> list[str]:
    """SECURITY DEFINER functions of public that authenticated may execute."""
    return _security_definer_executable(conn, "authenticated")


def unindexed_foreign_keys(conn: Connection) -> list[str]:
    """Foreign keys whose columns are not the leading columns of an index of their table."""
    return [
        f"{table}: foreign key {name} ({columns}) -> {referenced} has no index leading with its columns, so "
        f"deleting a row of {referenced} scans {table}: CREATE INDEX ON {table} ({columns})"
        for table, name, columns, referenced in conn.execute(UNINDEXED_FOREIGN_KEYS)
    ]


def duplicate_index(conn: Connection) -> list[str]:
    """Sets of indexes of one table identical in key, operator classes, directions, expressions and predicate."""
    return [
        f"{table}: indexes {', '.join(names)} are identical, each write maintains them all: drop all but one"
        for table, names in conn.execute(DUPLICATE_INDEX)
    ]


def rls_policy_always_true(conn: Connection) -> list[str]:
    """Permissive INSERT/UPDATE/DELETE/ALL policies whose USING or WITH CHECK is just true."""
    return [
        f"{table}: policy {name} ({command}) has {clauses}: every row may be written by its roles; "
        "restrict it to the caller's organisation"
        for table, name, command, clauses in conn.execute(POLICY_ALWAYS_TRUE)
    ]


RULES: dict[str, Rule] = {
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


def new_findings(rule: Rule, after: Connection, existing: Collection[str]) -> list[str]:
    """What `rule` finds on `after` (0024 applied) that was not `existing` before it."""
    return [finding for finding in rule(after) if finding not in existing]
