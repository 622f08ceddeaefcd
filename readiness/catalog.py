"""Read the catalog: short named queries, each returning plain tuples to compare with `expected`."""

from __future__ import annotations

from psycopg import Connection

from readiness.expected import Column, ForeignKey

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
FOREIGN_KEYS = """
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

PARTITIONS = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = %s::regclass ORDER BY c.relname
"""


def scalar(conn: Connection, query: str, *params: object) -> object:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


def relation_exists(conn: Connection, name: str) -> bool:
    return bool(scalar(conn, RELATION_EXISTS, name))


def schema_exists(conn: Connection, name: str) -> bool:
    return bool(scalar(conn, SCHEMA_EXISTS, name))


def enum_labels(conn: Connection, name: str) -> tuple[str, ...]:
    return tuple(row[0] for row in conn.execute(ENUM_LABELS, (name,)))


def columns(conn: Connection, table: str) -> dict[str, Column]:
    return {name: Column(typ, nullable, default) for name, typ, nullable, default in conn.execute(COLUMNS, (table,))}


def enum_typed_columns(conn: Connection, enums: list[str]) -> set[tuple[str, str, str]]:
    return {tuple(row) for row in conn.execute(ENUM_TYPED_COLUMNS, (enums,))}  # type: ignore[misc]


def primary_key(conn: Connection, table: str) -> tuple[str, ...]:
    return tuple(scalar(conn, PRIMARY_KEY, table) or ())  # type: ignore[arg-type]


def foreign_keys(conn: Connection, table: str) -> frozenset[ForeignKey]:
    return frozenset(ForeignKey(*row) for row in conn.execute(FOREIGN_KEYS, (table,)))


def partition_key(conn: Connection, table: str) -> tuple[str, str] | None:
    row = conn.execute(PARTITION_KEY, (table,)).fetchone()
    return (row[0], row[1].split("(", 1)[1].rstrip(")").strip()) if row else None


def partitions(conn: Connection, table: str) -> dict[str, str]:
    """Partition name -> its bound as PostgreSQL prints it (FOR VALUES ... or DEFAULT)."""
    return dict(conn.execute(PARTITIONS, (table,)).fetchall())  # type: ignore[arg-type]
