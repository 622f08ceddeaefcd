"""A busy tenant's volume, generated inside the server: organisations, users and sync rows.

ORGS organisations with USERS_PER_ORG users each; per organisation 100 previews (1 in 62
expired) and 500 progress rows (5 % still running); `log_rows` activity-log rows spread over
the last 12 months, so every dated partition holds some, with entity types as skewed as a
shop's (40 % products, 2 % suppliers, 1 % categories, no attributes). Two connections load the log in
parallel, one half each.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from psycopg import sql

from readiness.schema import catalog, column_roles
from readiness.schema.expected import Column

ORGS = 100
USERS_PER_ORG = 5
PREVIEWS_PER_ORG = 100
PROGRESS_PER_ORG = 500

TENANTS = """
INSERT INTO organization (name, slug)
SELECT 'volume ' || o, 'volume-' || o FROM generate_series(1, %(orgs)s::int) o;
"""
USERS = """
INSERT INTO auth.users_extended (id, org_id, email)
SELECT gen_random_uuid(), o.id, 'user' || u || '@' || o.slug || '.test'
FROM organization o CROSS JOIN generate_series(1, %(users)s::int) u WHERE o.slug LIKE 'volume-%%';
"""
# Row g goes to user g %% user_count as that user's r-th row (r = g / user_count); the kinds of a
# user's rows follow r, so every user (and organisation) gets every kind, whatever its place n.
# Each insert names the columns the report names and the roles it needs (readiness.schema.column_roles); every
# other NOT NULL column without a default is filled from its type, so any design of 0024 loads.
PREVIEW_VALUES = {
    "org_id": "u.org_id",
    "sync_type": "(enum_range(NULL::sync_type))[1 + r %% 4]",
    "cache_key": "CASE WHEN r %% 2 = 0 THEN {series} END",  # of the column's type (series_value)
    "computed_by": "u.id",
    "computed_at": "now() - make_interval(mins => 61 + g %% 600)",  # before any expiry below: computed, then expired
    # 1 in 62 expired; the others valid for 8 days, so the cached volume (reloaded weekly) keeps that ratio
    "expires_at": "CASE WHEN g %% 62 = 61 THEN now() - make_interval(mins => 1 + g %% 60)"
    " ELSE now() + make_interval(days => 8) END",
}
PREVIEW_ROWS = """
FROM generate_series(0, %(previews)s::int - 1) g
CROSS JOIN LATERAL (SELECT g / %(user_count)s AS r) AS per_user
JOIN volume_users u ON u.n = g %% %(user_count)s
"""
PROGRESS_VALUES = {
    "org_id": "u.org_id",
    "sync_id": "{series}",
    "job_id": "{series}",
    "entity_type": "(enum_range(NULL::sync_entity_type))[1 + r %% 8]",
    "status": "CASE WHEN r %% 20 = 0 THEN 'in_progress' ELSE 'completed' END::sync_status_type",
    "total": "1000",
    "processed": "900",
    "failed": "g %% 10",
    "started_at": "now() - make_interval(hours => g %% 8000)",
    "completed_at": "CASE WHEN r %% 20 <> 0 THEN now() - make_interval(hours => g %% 8000) + interval '5 minutes' END",
    "initiated_by": "u.id",
}
# The column roles (readiness.schema.column_roles) the volume's rows name, beside the columns the report names.
ROLES_NEEDED = (("sync_progress", "status"), ("sync_progress", "total"), ("sync_progress", "processed"))
PROGRESS_ROWS = PREVIEW_ROWS.replace("%(previews)s", "%(progress)s")
LOG_VALUES = {
    "org_id": "p.org_id",
    "sync_id": "p.sync_id",  # the progress row's, when both tables type it alike (else a series of its own)
    "user_id": "p.initiated_by",
    "action": "(enum_range(NULL::sync_action))[1 + g %% 8]",
    "entity_type": "CASE WHEN g %% 100 < 40 THEN 'product' WHEN g %% 100 < 70 THEN 'order'"
    " WHEN g %% 100 < 85 THEN 'customer' WHEN g %% 100 < 93 THEN 'inventory' WHEN g %% 100 < 97 THEN 'invoice'"
    " WHEN g %% 100 < 99 THEN 'supplier' ELSE 'category' END::sync_entity_type",
    "status": "(enum_range(NULL::sync_status_type))[1 + g %% 8]",
    "created_at": "now() - make_interval(secs => (g * 31.5)::int %% 31536000)",
}
ORDERED_UUID = "('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid"  # appends to the key
LOG_ROWS = """
FROM generate_series(%(first)s::int, %(last)s::int) g
JOIN volume_syncs p ON p.n = g %% %(sync_count)s
"""
# A log without a default partition takes only the times its ranges cover: its rows are spread over the ranges
# that lie in the last year (the part of each that does), one range after another.
PARTITION_RANGES = r"""
CREATE TABLE volume_partitions AS
SELECT row_number() OVER (ORDER BY lo) - 1 AS n, lo, extract(epoch FROM hi - lo)::bigint AS span
FROM (SELECT greatest(lo, now() - interval '365 days') AS lo, least(hi, now()) AS hi
      FROM (SELECT substring(b FROM 'FROM \(''([^'']+)''\)')::timestamptz AS lo,
                   substring(b FROM 'TO \(''([^'']+)''\)')::timestamptz AS hi
            FROM (SELECT pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_inherits i JOIN pg_class c
                  ON c.oid = i.inhrelid WHERE i.inhparent = 'sync_activity_log'::regclass) AS bounds
            WHERE b <> 'DEFAULT') AS ranges) AS clipped
WHERE hi > lo;
CREATE UNIQUE INDEX ON volume_partitions (n);
"""
RANGED_LOG_ROWS = LOG_ROWS + "JOIN volume_partitions vp ON vp.n = g %% (SELECT count(*) FROM volume_partitions)\n"
RANGED_CREATED_AT = "vp.lo + make_interval(secs => ((g * 31.5)::bigint %% vp.span)::double precision)"
NEEDS_RANGES = """
SELECT p.partstrat = 'r' AND pg_get_partkeydef(p.partrelid) = 'RANGE (created_at)'
       AND NOT EXISTS (SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                       WHERE i.inhparent = p.partrelid AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT')
FROM pg_partitioned_table p WHERE p.partrelid = 'sync_activity_log'::regclass
"""
FILLERS = {  # a value of each type for a NOT NULL column the volume does not name
    "text": "'volume'", "character varying": "'volume'", "uuid": "gen_random_uuid()", "jsonb": "'{}'::jsonb",
    "json": "'{}'::json", "smallint": "0", "integer": "0", "bigint": "0", "numeric": "0", "real": "0",
    "double precision": "0", "boolean": "false", "timestamp with time zone": "now()", "date": "current_date",
    "timestamp without time zone": "localtimestamp", "interval": "interval '0'", "bytea": "''::bytea",
}  # fmt: skip
# A distinct value per row g of the series, of the column's type: the report leaves job_id's, sync_id's and
# cache_key's types to the migration.
SERIES = {
    "text": "'{name}-' || g", "character varying": "'{name}-' || g", "uuid": "md5('{name}' || g)::uuid",
    "smallint": "(g %% 32000)::smallint", "integer": "g", "bigint": "g::bigint", "numeric": "g::numeric",
    "bytea": "convert_to('{name}-' || g, 'UTF8')",
}  # fmt: skip


def series_value(name: str, type_name: str) -> str:
    """A SQL expression of the row number g giving a distinct value of `type_name` per row."""
    base = type_name.split("(")[0]
    if base not in SERIES:
        raise ValueError(f"the volume cannot make distinct values of {type_name} for {name}")
    return SERIES[base].format(name=name)


def typed(conn, table: str, values: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """`values` with {series} filled by a distinct value of each column's own type."""
    found = catalog.columns(conn, table)
    return {
        column: expression.replace("{series}", series_value(column, found[column].type))
        if "{series}" in expression
        else expression
        for column, expression in values.items()
    }


def insert(conn, table: str, values: dict[str, str], rows: str) -> sql.Composed:  # type: ignore[no-untyped-def]
    """INSERT INTO `table` the `values` (column -> SQL expression over `rows`), and a filler for every other
    NOT NULL column without a default."""
    given = dict(values)
    for column in catalog.required_columns(conn, table):
        if column.name in given:
            continue
        if column.labels:
            given[column.name] = sql.Literal(column.labels[0]).as_string(conn) + f"::{column.type}"
        elif column.type.split("(")[0] in FILLERS:
            given[column.name] = FILLERS[column.type.split("(")[0]]
        else:
            raise ValueError(f"the volume cannot fill {table}.{column.name} ({column.type}, NOT NULL, no default)")
    return sql.SQL("INSERT INTO {} ({}) SELECT {} {}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, given)),
        sql.SQL(", ").join(sql.SQL(expression) for expression in given.values()),  # type: ignore[arg-type]
        sql.SQL(rows),  # type: ignore[arg-type]
    )


def by_role(columns: column_roles.Columns, table: str, values: dict[str, str]) -> dict[str, str]:
    """`values` keyed by role, keyed by the migration's column for each role instead."""
    named: dict[str, str] = {}
    for role, value in values.items():
        column = columns.get(table, role) if (table, role) in columns.resolved else role
        if column is None and columns.resolved[(table, role)].role.optional:
            continue  # a count of our design this migration does not keep
        if column is None:
            raise ValueError(f"the volume needs the column role {table}.{role}: {columns.resolved[(table, role)].how}")
        named[column] = value
    return named


USER_INDEX = """
CREATE TABLE volume_users AS
SELECT row_number() OVER (ORDER BY u.id) - 1 AS n, u.id, u.org_id
FROM auth.users_extended u JOIN organization o ON o.id = u.org_id WHERE o.slug LIKE 'volume-%%';
CREATE UNIQUE INDEX ON volume_users (n);
"""
# Each log row belongs to a sync of the volume: its organisation and the user who ran it.
SYNC_INDEX = """
CREATE TABLE volume_syncs AS
SELECT row_number() OVER (ORDER BY {key}) - 1 AS n, sync_id, org_id, initiated_by FROM sync_progress;
CREATE UNIQUE INDEX ON volume_syncs (n);
"""
# This database only serves plans: without WAL for the log's partitions the load is faster,
# and the planner sees the same tables, indexes and statistics.
UNLOGGED_PARTITIONS = """
DO $$
DECLARE partition regclass;
BEGIN
    FOR partition IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'sync_activity_log'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET UNLOGGED', partition);
    END LOOP;
END
$$;
"""
LOG_SECONDARY_INDEXES = """
SELECT pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid = 'sync_activity_log'::regclass AND NOT indisprimary ORDER BY indexrelid
"""
DROP_LOG_SECONDARY_INDEXES = """
DO $$
DECLARE index_name regclass;
BEGIN
    FOR index_name IN SELECT indexrelid::regclass FROM pg_index
                      WHERE indrelid = 'sync_activity_log'::regclass AND NOT indisprimary LOOP
        EXECUTE format('DROP INDEX %s', index_name);
    END LOOP;
END
$$;
"""
CLEAN_UP = "DROP TABLE volume_users, volume_syncs; DROP TABLE IF EXISTS volume_partitions; ANALYZE;"


def load(conninfo: str, log_rows: int, connect, overrides: dict | None = None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Load the volume into the migrated database at `conninfo`; return seconds per step.

    `overrides`: the --columns file's roles, for the columns the report does not name.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    user_count, sync_count = ORGS * USERS_PER_ORG, ORGS * PROGRESS_PER_ORG
    params = {
        "orgs": ORGS,
        "users": USERS_PER_ORG,
        "user_count": user_count,
        "previews": ORGS * PREVIEWS_PER_ORG,
        "progress": sync_count,
    }
    with connect(conninfo) as conn:
        columns = column_roles.resolve(conn, overrides or {})
        log_values = by_role(columns, "sync_activity_log", LOG_VALUES)
        log_types, progress_types = catalog.columns(conn, "sync_activity_log"), catalog.columns(conn, "sync_progress")
        same = log_types["sync_id"].type == progress_types["sync_id"].type
        log_values["sync_id"] = "p.sync_id" if same else series_value("sync_id", log_types["sync_id"].type)
        if log_types.get("id", Column("", True)).type == "uuid" and not log_types["id"].nullable:
            log_values["id"] = ORDERED_UUID
        previews = insert(
            conn,
            "sync_preview_cache",
            typed(conn, "sync_preview_cache", by_role(columns, "sync_preview_cache", PREVIEW_VALUES)),
            PREVIEW_ROWS,
        )
        progress = insert(
            conn, "sync_progress", typed(conn, "sync_progress", by_role(columns, "sync_progress", PROGRESS_VALUES)),
            PROGRESS_ROWS,
        )  # fmt: skip
        ranged = bool(catalog.scalar(conn, NEEDS_RANGES))
        if ranged:
            log_values["created_at"] = RANGED_CREATED_AT
        log = insert(conn, "sync_activity_log", log_values, RANGED_LOG_ROWS if ranged else LOG_ROWS)
        syncs = sql.SQL(SYNC_INDEX).format(key=sql.SQL(", ").join(
            map(sql.Identifier, catalog.primary_key(conn, "sync_progress") or ("sync_id",))))  # fmt: skip
        conn.execute(UNLOGGED_PARTITIONS)
        conn.execute("SET LOCAL session_replication_role = replica")  # generated consistent: skip FK checks
        for step in (TENANTS, USERS, USER_INDEX, previews, progress, syncs, *([PARTITION_RANGES] if ranged else [])):
            conn.execute(step, params)  # type: ignore[arg-type]
        conn.commit()
    timings["tenants, previews and progress"] = time.perf_counter() - started
    halves = [(0, log_rows // 2 - 1), (log_rows // 2, log_rows - 1)]

    def load_half(bounds: tuple[int, int]) -> None:
        with connect(conninfo) as conn:
            # The rows are generated consistent with their keys: skip the per-row FK triggers.
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(log, {"first": bounds[0], "last": bounds[1], "sync_count": sync_count})

    # Building the log's secondary indexes once after the load is about twice as fast as keeping
    # them up to date row by row; they are rebuilt from their own definitions, unchanged.
    with connect(conninfo) as conn:
        # pg_get_indexdef() says ON ONLY for a partitioned index; rebuilt ON the table, it covers every partition
        definitions = [row[0].replace(" ON ONLY ", " ON ", 1) for row in conn.execute(LOG_SECONDARY_INDEXES)]
        conn.execute(DROP_LOG_SECONDARY_INDEXES)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(load_half, halves))
    timings[f"{log_rows:,} activity-log rows"] = time.perf_counter() - started

    def build(definition: str) -> None:
        with connect(conninfo) as conn:
            conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            conn.execute(definition)  # type: ignore[arg-type]  # read back from pg_get_indexdef()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(build, definitions))
    timings[f"{len(definitions)} activity-log indexes rebuilt"] = time.perf_counter() - started
    started = time.perf_counter()
    with connect(conninfo, autocommit=True) as conn:
        conn.execute(CLEAN_UP)
    timings["analyze"] = time.perf_counter() - started
    return timings
