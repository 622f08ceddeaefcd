"""A snapshot of every kind of object a migration can create, to diff before and after.

Each kind maps to a set of one-line descriptions, so a diff names the leftover object
exactly: schemas, extensions, types, relations with their RLS flags and grants, columns,
constraints, indexes, functions with their settings and grants, triggers, and policies, in every
schema but the system's own: whatever a migration makes anywhere must go with its rollback.
"""

from __future__ import annotations

import re

from psycopg import Connection, sql

# The system's schemas (and each session's temporary ones): nothing a migration makes lives there.
SYSTEM_SCHEMAS = ["pg_catalog", "information_schema", "pg_toast"]
USER_SCHEMA = (
    "(n.nspname <> ALL(%(system)s) AND n.nspname NOT LIKE 'pg\\_temp\\_%%'"
    " AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%')"
)

QUERIES = {
    "schemas": """
        SELECT n.nspname || ' api=' || API(n.nspacl, 'n', n.nspowner)
        FROM pg_namespace n WHERE USER_SCHEMA
    """,
    "extensions": """
        SELECT e.extname || ' ' || e.extversion || ' in ' || n.nspname
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE true
    """,
    "types": """
        SELECT n.nspname || '.' || t.typname || ' ' || t.typtype::text || ' '
               || coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                            FROM pg_enum e WHERE e.enumtypid = t.oid), '')
               || ' api=' || API(t.typacl, 'T', t.typowner)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE USER_SCHEMA AND t.typtype IN ('e', 'd', 'r', 'm')
    """,
    "relations": """
        SELECT n.nspname || '.' || c.relname || ' kind=' || c.relkind::text || ' rls=' || c.relrowsecurity
               || ' force=' || c.relforcerowsecurity
               || ' api=' || API(c.relacl, CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END, c.relowner)
               || coalesce(' bound=' || pg_get_expr(c.relpartbound, c.oid), '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE USER_SCHEMA AND c.relkind <> 't'
    """,
    "columns": """
        SELECT n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
               || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE USER_SCHEMA AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
    """,
    "constraints": """
        SELECT n.nspname || '.' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE USER_SCHEMA
    """,
    "indexes": """
        SELECT pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE USER_SCHEMA
    """,
    "functions": """
        SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') returns '
               || pg_get_function_result(p.oid) || ' secdef=' || p.prosecdef || ' volatile=' || p.provolatile::text
               || ' config=' || coalesce(p.proconfig::text, '') || ' api=' || API(p.proacl, 'f', p.proowner)
               || ' body=' || md5(p.prosrc)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE USER_SCHEMA
    """,
    "triggers": """
        SELECT pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE USER_SCHEMA AND NOT t.tgisinternal
    """,
    "policies": """
        SELECT schemaname || '.' || tablename || ' ' || policyname || ' ' || permissive || ' ' || cmd
               || ' to=' || roles::text || ' using=' || coalesce(qual, '') || ' check=' || coalesce(with_check, '')
        FROM pg_policies WHERE schemaname <> ALL(%(system)s)
    """,
}

# What the API roles (anon, authenticated, service_role) may do with an object, from its ACL (or its kind's default
# when it has none): the privileges that matter to the gate, the same whoever deployed it, granted them, or
# verifies it (the owner's own entry, and every grantor, name that role).
API = (
    "(SELECT coalesce(string_agg(r.rolname || ':' || coalesce((SELECT string_agg(DISTINCT a.privilege_type, '+' "
    'ORDER BY a.privilege_type) FROM aclexplode(coalesce({acl}, acldefault(({kind})::"char", {owner}))) a '
    "WHERE a.grantee IN (r.oid, 0)), ''), ',' ORDER BY r.rolname), '') FROM pg_roles r "
    "WHERE r.rolname = ANY (ARRAY['anon', 'authenticated', 'service_role']))"
)

Snapshot = dict[str, frozenset[str]]


def acls(query: str) -> str:
    """The query with each API(acl, kind, owner) printed as API says."""
    return re.sub(
        r"API\(([\w.]+), (.+?), ([\w.]+)\)",
        lambda m: API.format(acl=m.group(1), kind=m.group(2), owner=m.group(3)),
        query,
    )


def take(conn: Connection) -> Snapshot:
    """Every object of every schema but the system's, by kind."""
    params = {"system": SYSTEM_SCHEMAS}
    return {
        kind: frozenset(row[0] for row in conn.execute(acls(query.replace("USER_SCHEMA", USER_SCHEMA)), params))
        for kind, query in QUERIES.items()
    }


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """'+ kind: object' for what `after` adds, '- kind: object' for what it lost; empty when identical."""
    lines = []
    for kind in QUERIES:
        lines += [f"- {kind}: {item}" for item in sorted(before[kind] - after[kind])]
        lines += [f"+ {kind}: {item}" for item in sorted(after[kind] - before[kind])]
    return lines


def fingerprint(conn: Connection, table: str) -> tuple[int, str]:
    """Row count and an md5 of every row's text: equal fingerprints mean the same rows."""
    schema, _, name = table.rpartition(".")
    query = sql.SQL("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {} t").format(
        sql.Identifier(schema or "public", name)
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0], row[1]
