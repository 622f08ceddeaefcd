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
PREVIEWS = """
INSERT INTO sync_preview_cache (org_id, sync_type, entity_type, cache_key, computed_by, computed_at, expires_at)
SELECT u.org_id, (enum_range(NULL::sync_type))[1 + r %% 4], (enum_range(NULL::sync_entity_type))[1 + r %% 8],
       CASE WHEN r %% 2 = 0 THEN 'key-' || g END, u.id,
       now() - make_interval(mins => g %% 600),
       -- 1 in 62 expired; the others valid for 8 days, so the cached volume (reloaded weekly) keeps that ratio
       CASE WHEN g %% 62 = 61 THEN now() - make_interval(mins => 1 + g %% 60) ELSE now() + make_interval(days => 8) END
FROM generate_series(0, %(previews)s::int - 1) g
CROSS JOIN LATERAL (SELECT g / %(user_count)s AS r) AS per_user
JOIN volume_users u ON u.n = g %% %(user_count)s;
"""
PROGRESS = """
INSERT INTO sync_progress (org_id, sync_id, job_id, sync_type, entity_type, status, total_items, processed_items,
                           failed_items, started_at, completed_at, initiated_by)
SELECT u.org_id, gen_random_uuid(), 'job-' || g, (enum_range(NULL::sync_type))[1 + r %% 4],
       (enum_range(NULL::sync_entity_type))[1 + r %% 8],
       CASE WHEN r %% 20 = 0 THEN 'in_progress' ELSE 'completed' END::sync_status_type, 1000, 900, g %% 10,
       now() - make_interval(hours => g %% 8000), CASE WHEN r %% 20 <> 0 THEN now() - make_interval(hours => g %% 8000)
                                                       + interval '5 minutes' END, u.id
FROM generate_series(0, %(progress)s::int - 1) g
CROSS JOIN LATERAL (SELECT g / %(user_count)s AS r) AS per_user
JOIN volume_users u ON u.n = g %% %(user_count)s;
"""
USER_INDEX = """
CREATE TABLE volume_users AS
SELECT row_number() OVER (ORDER BY u.id) - 1 AS n, u.id, u.org_id
FROM auth.users_extended u JOIN organization o ON o.id = u.org_id WHERE o.slug LIKE 'volume-%%';
CREATE UNIQUE INDEX ON volume_users (n);
"""
# Each log row belongs to a sync of the volume: its organisation and the user who ran it.
SYNC_INDEX = """
CREATE TABLE volume_syncs AS
SELECT row_number() OVER (ORDER BY id) - 1 AS n, sync_id, org_id, initiated_by FROM sync_progress;
CREATE UNIQUE INDEX ON volume_syncs (n);
"""
LOG = """
INSERT INTO sync_activity_log (id, org_id, sync_id, user_id, action, entity_type, status, message, created_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, -- ordered ids: appends to the key
       p.org_id, p.sync_id, p.initiated_by, (enum_range(NULL::sync_action))[1 + g %% 8],
       CASE WHEN g %% 100 < 40 THEN 'product' WHEN g %% 100 < 70 THEN 'order' WHEN g %% 100 < 85 THEN 'customer'
            WHEN g %% 100 < 93 THEN 'inventory' WHEN g %% 100 < 97 THEN 'invoice' WHEN g %% 100 < 99 THEN 'supplier'
            ELSE 'category' END::sync_entity_type,
       (enum_range(NULL::sync_status_type))[1 + g %% 8],
       'batch ' || g, now() - make_interval(secs => (g * 31.5)::int %% 31536000)
FROM generate_series(%(first)s::int, %(last)s::int) g
JOIN volume_syncs p ON p.n = g %% %(sync_count)s;
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
CLEAN_UP = "DROP TABLE volume_users, volume_syncs; ANALYZE;"


def load(conninfo: str, log_rows: int, connect) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Load the volume into the migrated database at `conninfo`; return seconds per step."""
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
        conn.execute(UNLOGGED_PARTITIONS)
        conn.execute("SET LOCAL session_replication_role = replica")  # generated consistent: skip FK checks
        for step in (TENANTS, USERS, USER_INDEX, PREVIEWS, PROGRESS, SYNC_INDEX):
            conn.execute(step, params)  # type: ignore[arg-type]
        conn.commit()
    timings["tenants, previews and progress"] = time.perf_counter() - started
    halves = [(0, log_rows // 2 - 1), (log_rows // 2, log_rows - 1)]

    def load_half(bounds: tuple[int, int]) -> None:
        with connect(conninfo) as conn:
            # The rows are generated consistent with their keys: skip the per-row FK triggers.
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(LOG, {"first": bounds[0], "last": bounds[1], "sync_count": sync_count})

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
