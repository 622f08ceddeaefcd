"""Read the catalog: short named queries, each returning plain tuples to compare with `expected`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from psycopg import Connection
from psycopg.pq import TransactionStatus

from readiness.schema.expected import FUNCTION_NAMES, Column, ForeignKey, Function, Index, Policy, Trigger

RELATION_EXISTS = "SELECT to_regclass(%s) IS NOT NULL"
SCHEMA_EXISTS = "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %s)"

ENUM_LABELS = """
SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
WHERE t.typname = %s AND t.typnamespace = 'public'::regnamespace ORDER BY e.enumsortorder
"""

COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""

# NOT NULL columns without a default, identity or generation: what an INSERT must give; enum labels in order.
REQUIRED_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod),
       ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = a.atttypid ORDER BY e.enumsortorder)
FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
  AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
ORDER BY a.attnum
"""

ENUM_TYPED_COLUMNS = """
SELECT c.relname, a.attname, t.typname
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
WHERE t.typtype = 'e' AND t.typname = ANY(%s) AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
"""

PRIMARY_KEY = """
SELECT array_agg(a.attname ORDER BY k.ord)
FROM pg_constraint c CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
WHERE c.conrelid = %s::regclass AND c.contype = 'p'
"""

# confdeltype: a no action, r restrict, c cascade, n set null, d set default
FOREIGN_KEYS_SQL = """
SELECT (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
        FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
       r.relnamespace::regnamespace::text || '.' || r.relname,
       CASE c.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE'
                          WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END
FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND c.conparentid = 0
"""

PARTITION_KEY = """
SELECT CASE p.partstrat WHEN 'r' THEN 'range' WHEN 'l' THEN 'list' WHEN 'h' THEN 'hash' END,
       pg_get_partkeydef(p.partrelid)
FROM pg_partitioned_table p WHERE p.partrelid = %s::regclass
"""

INDEXES_SQL = """
SELECT ci.relname, ct.relname,
       array(SELECT pg_get_indexdef(i.indexrelid, k + 1, true)
                    || CASE WHEN i.indoption[k] & 1 = 1 THEN ' DESC' ELSE '' END
             FROM generate_series(0, i.indnkeyatts::int - 1) k ORDER BY k),
       pg_get_expr(i.indpred, i.indrelid), i.indisunique, am.amname
FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class ct ON ct.oid = i.indrelid
JOIN pg_am am ON am.oid = ci.relam
WHERE ct.relname = ANY(%s) AND ct.relnamespace = 'public'::regnamespace AND NOT i.indisprimary
"""

# An index that CREATE INDEX CONCURRENTLY left unfinished, on a table or any of its partitions.
INVALID_INDEXES = """
SELECT ci.relname FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
WHERE ci.relnamespace = 'public'::regnamespace AND NOT (i.indisvalid AND i.indisready)
"""

# The index of the partitioned table that a partition's index belongs to (itself if none).
INDEX_ROOT = """
SELECT coalesce(pg_partition_root(c.oid), c.oid)::regclass::text
FROM pg_class c WHERE c.relname = %s AND c.relkind IN ('i', 'I') ORDER BY c.oid LIMIT 1
"""

RLS_ENABLED = "SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass"

POLICIES_SQL = """
SELECT policyname, tablename, cmd, roles::text[], permissive = 'PERMISSIVE', qual, with_check
FROM pg_policies WHERE schemaname = 'public' AND tablename = ANY(%s)
"""

PARTITIONS = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = %s::regclass ORDER BY c.relname
"""


def qualified(table: str) -> str:
    """A table named as the report names it (sync_progress) is public's, whatever the session's search_path."""
    return table if "." in table else f"public.{table}"


def scalar(conn: Connection, query: str, *params: object) -> object:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


def relation_exists(conn: Connection, name: str) -> bool:
    return bool(scalar(conn, RELATION_EXISTS, name))


def schema_exists(conn: Connection, name: str) -> bool:
    return bool(scalar(conn, SCHEMA_EXISTS, name))


def enum_labels(conn: Connection, name: str) -> tuple[str, ...]:
    return tuple(row[0] for row in conn.execute(ENUM_LABELS, (name,)))


# A table's columns and key, read once per session: the checks ask for them thousands of times a run, and
# only a SQL file applied in the session changes them (readiness.schema.apply forgets this session's entries).
_TABLES: dict[tuple[object, ...], object] = {}


def session(conn: Connection) -> tuple[object, ...]:
    """Which database session `conn` is: what is read once per session is keyed by it."""
    return (conn.info.host, conn.info.port, conn.info.dbname, conn.info.backend_pid)


def forget(conn: Connection) -> None:
    """Drop what this session read of its tables' columns and keys (after DDL)."""
    current = session(conn)
    for key in [key for key in _TABLES if key[:4] == current]:
        del _TABLES[key]


def read_once(conn: Connection, what: str, table: str, read):  # type: ignore[no-untyped-def]
    """What `read` returns of `table`, read once per session (forgotten after DDL, by forget)."""
    key = (*session(conn), what, table)
    if key not in _TABLES:
        _TABLES[key] = read()
    return _TABLES[key]


def columns(conn: Connection, table: str) -> dict[str, Column]:
    return dict(read_once(conn, "columns", table, lambda: {
        name: Column(typ, nullable, default)
        for name, typ, nullable, default in conn.execute(COLUMNS, (qualified(table),))
    }))  # fmt: skip


@dataclass(frozen=True)
class Required:
    """A column an INSERT must give a value for."""

    name: str
    type: str  # format_type()
    labels: tuple[str, ...]  # an enum's labels in order; empty for other types


def type_length(type_name: str) -> int | None:
    """The length limit format_type() prints for a character type ('character varying(64)' -> 64), else None."""
    if not type_name.startswith(("character", "bit")) or "(" not in type_name:
        return None
    return int(type_name.split("(")[1].split(")")[0])


def required_columns(conn: Connection, table: str) -> list[Required]:
    return list(read_once(conn, "required", table, lambda: [
        Required(name, typ, tuple(labels)) for name, typ, labels in conn.execute(REQUIRED_COLUMNS, (qualified(table),))
    ]))  # fmt: skip


def enum_typed_columns(conn: Connection, enums: list[str]) -> set[tuple[str, str, str]]:
    return {tuple(row) for row in conn.execute(ENUM_TYPED_COLUMNS, (enums,))}  # type: ignore[misc]


def primary_key(conn: Connection, table: str) -> tuple[str, ...]:
    return read_once(conn, "key", table, lambda: tuple(scalar(conn, PRIMARY_KEY, qualified(table)) or ()))  # type: ignore[no-any-return]


def foreign_keys(conn: Connection, table: str) -> frozenset[ForeignKey]:
    return frozenset(ForeignKey(*row) for row in conn.execute(FOREIGN_KEYS_SQL, (qualified(table),)))


def indexes(conn: Connection, tables: list[str]) -> dict[str, Index]:
    """Index name -> its definition, for the non-primary-key indexes of `tables` (partitioned parents included)."""
    return {
        name: Index(table, tuple(columns), predicate, unique, method)
        for name, table, columns, predicate, unique, method in conn.execute(INDEXES_SQL, (tables,))
    }


def invalid_indexes(conn: Connection) -> list[str]:
    return [row[0] for row in conn.execute(INVALID_INDEXES)]


def index_root(conn: Connection, name: str) -> str:
    return str(scalar(conn, INDEX_ROOT, name))


def rls_enabled(conn: Connection, table: str) -> bool:
    return bool(scalar(conn, RLS_ENABLED, qualified(table)))


@contextmanager
def qualified_names(conn: Connection) -> Iterator[None]:
    """Expressions printed with every name schema-qualified (search_path ''), whatever the session's search_path:
    with auth on it, PostgreSQL prints auth.uid() as uid(). Local to the caller's transaction."""
    previous = scalar(conn, "SELECT current_setting('search_path')")
    conn.execute("SELECT set_config('search_path', '', true)")
    try:
        yield
    finally:
        if conn.info.transaction_status != TransactionStatus.INERROR:
            conn.execute("SELECT set_config('search_path', %s, true)", (previous,))


def policies(conn: Connection, tables: list[str]) -> dict[str, Policy]:
    """Policy name -> the policy on one of `tables`, its expressions as PostgreSQL prints them, names qualified."""
    with qualified_names(conn):
        rows = conn.execute(POLICIES_SQL, (tables,)).fetchall()
    return {
        name: Policy(table, cmd, tuple(sorted(roles)), permissive, qual, check)
        for name, table, cmd, roles, permissive, qual, check in rows
    }


def partition_key(conn: Connection, table: str) -> tuple[str, str] | None:
    row = conn.execute(PARTITION_KEY, (qualified(table),)).fetchone()
    return (row[0], row[1].split("(", 1)[1].rstrip(")").strip()) if row else None


def partitions(conn: Connection, table: str) -> dict[str, str]:
    """Partition name -> its bound as PostgreSQL prints it (FOR VALUES ... or DEFAULT)."""
    return dict(conn.execute(PARTITIONS, (qualified(table),)).fetchall())  # type: ignore[arg-type]


# --- functions and triggers (task 4) ---------------------------------------------------

FUNCTION_DEFINITIONS = """
SELECT p.proname, pg_get_function_result(p.oid), l.lanname,
       CASE p.provolatile WHEN 'v' THEN 'VOLATILE' WHEN 's' THEN 'STABLE' WHEN 'i' THEN 'IMMUTABLE' END,
       p.prosecdef, coalesce(p.proconfig, '{}'), pg_get_function_identity_arguments(p.oid)
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY(%s)
ORDER BY p.proname, pg_get_function_identity_arguments(p.oid)
"""

# tgtype bits (pg_trigger.h): 1 ROW, 2 BEFORE, 4 INSERT, 8 DELETE, 16 UPDATE, 32 TRUNCATE, 64 INSTEAD
USER_TRIGGERS = """
SELECT t.tgname, t.tgrelid::regclass::text,
       CASE WHEN t.tgtype & 2 <> 0 THEN 'BEFORE' WHEN t.tgtype & 64 <> 0 THEN 'INSTEAD OF' ELSE 'AFTER' END,
       array_remove(ARRAY[CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' END,
                          CASE WHEN t.tgtype & 16 <> 0 THEN 'UPDATE' END,
                          CASE WHEN t.tgtype & 8 <> 0 THEN 'DELETE' END,
                          CASE WHEN t.tgtype & 32 <> 0 THEN 'TRUNCATE' END], NULL),
       p.pronamespace::regnamespace::text || '.' || p.proname,
       CASE WHEN t.tgtype & 1 <> 0 THEN 'ROW' ELSE 'STATEMENT' END,
       t.tgenabled::text
FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal
"""


def functions(conn: Connection, names: tuple[str, ...] = FUNCTION_NAMES) -> dict[str, Function]:
    """Function name -> the function of that name in schema public, for the expected names by default.

    An overload of the same name would replace another here: its arguments show in the Function.
    """
    return {
        name: Function(returns, language, volatility, definer, tuple(config), arguments)
        for name, returns, language, volatility, definer, config, arguments in conn.execute(
            FUNCTION_DEFINITIONS, (list(names),)
        )
    }


def triggers(conn: Connection, table: str) -> dict[str, Trigger]:
    """Trigger name -> the user (not internal) trigger on `table`, its tgtype decoded."""
    return {
        name: Trigger(relation, timing, frozenset(events), function, level, enabled)
        for name, relation, timing, events, function, level, enabled in conn.execute(USER_TRIGGERS, (qualified(table),))
    }


# The timeouts a role's sessions start with: set on the role in this database, on the role, or on the database.
ROLE_TIMEOUTS = """
SELECT split_part(setting, '=', 1), substr(setting, strpos(setting, '=') + 1),
       CASE WHEN s.setrole = 0 THEN 'database' WHEN s.setdatabase = 0 THEN 'role' ELSE 'role in database' END
FROM pg_db_role_setting s CROSS JOIN LATERAL unnest(s.setconfig) AS setting
WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
  AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = %s))
  AND split_part(setting, '=', 1) IN ('lock_timeout', 'statement_timeout')
ORDER BY CASE WHEN s.setrole = 0 THEN 3 WHEN s.setdatabase = 0 THEN 2 ELSE 1 END DESC
"""
SET_BY = {
    "role in database": "on the role {role} in database {db} (ALTER ROLE {role} IN DATABASE {db} SET {name})",
    "role": "on the role {role} that deploys 0024 (ALTER ROLE {role} SET {name})",
    "database": "on the database {db} (ALTER DATABASE {db} SET {name})",
}


def role_timeouts(conn: Connection, role: str) -> dict[str, tuple[str, str]]:
    """lock_timeout and statement_timeout as `role`'s sessions start with them (the most specific setting wins):
    setting -> (value, where it is set). A timeout of 0 (none) is left out."""
    found: dict[str, tuple[str, str]] = {}
    database = conn.info.dbname
    for name, value, scope in conn.execute(ROLE_TIMEOUTS, (role,)).fetchall():
        found[name] = (value, SET_BY[scope].format(role=role, db=database, name=name))  # least specific first
    return {name: setting for name, setting in found.items() if setting[0].strip() not in ("0", "0ms", "0s")}
