"""A busy tenant's volume, generated inside the server: organisations, users and sync rows.

ORGS organisations with USERS_PER_ORG users each; per organisation 100 previews (a third
expired) and 500 progress rows (5 % still running); `log_rows` activity-log rows spread over
the last 12 months, so every dated partition holds some. Two connections load the log in
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
SELECT 'volume ' || o, 'volume-' || o FROM generate_series(1, %(orgs)s) o;
"""
USERS = """
INSERT INTO auth.users_extended (id, org_id, email)
SELECT gen_random_uuid(), o.id, 'user' || u || '@' || o.slug || '.test'
FROM organization o CROSS JOIN generate_series(1, %(users)s) u WHERE o.slug LIKE 'volume-%%';
"""
PREVIEWS = """
INSERT INTO sync_preview_cache (org_id, sync_type, entity_type, cache_key, computed_by, computed_at, expires_at)
SELECT u.org_id, (enum_range(NULL::sync_type))[1 + g %% 4], (enum_range(NULL::sync_entity_type))[1 + g %% 8],
       CASE WHEN g %% 2 = 0 THEN 'key-' || g END, u.id,
       now() - make_interval(mins => g %% 600), now() + make_interval(mins => 60 - g %% 90)
FROM generate_series(0, %(previews)s - 1) g
JOIN volume_users u ON u.n = g %% %(user_count)s;
"""
PROGRESS = """
INSERT INTO sync_progress (org_id, sync_id, job_id, sync_type, entity_type, status, total_items, processed_items,
                           failed_items, started_at, completed_at, initiated_by)
SELECT u.org_id, gen_random_uuid(), 'job-' || g, (enum_range(NULL::sync_type))[1 + g %% 4],
       (enum_range(NULL::sync_entity_type))[1 + g %% 8],
       CASE WHEN g %% 20 = 0 THEN 'in_progress' ELSE 'completed' END::sync_status_type, 1000, 900, g %% 10,
       now() - make_interval(hours => g %% 8000), CASE WHEN g %% 20 <> 0 THEN now() - make_interval(hours => g %% 8000)
                                                       + interval '5 minutes' END, u.id
FROM generate_series(0, %(progress)s - 1) g
JOIN volume_users u ON u.n = g %% %(user_count)s;
"""
USER_INDEX = """
CREATE TABLE volume_users AS
SELECT row_number() OVER (ORDER BY u.id) - 1 AS n, u.id, u.org_id
FROM auth.users_extended u JOIN organization o ON o.id = u.org_id WHERE o.slug LIKE 'volume-%%';
CREATE UNIQUE INDEX ON volume_users (n);
"""
LOG = """
INSERT INTO sync_activity_log (org_id, sync_id, user_id, action, entity_type, status, message, created_at)
SELECT u.org_id, p.sync_id, u.id, (enum_range(NULL::sync_action))[1 + g %% 8],
       (enum_range(NULL::sync_entity_type))[1 + g %% 8], (enum_range(NULL::sync_status_type))[1 + g %% 8],
       'batch ' || g, now() - make_interval(secs => (g * 31.5)::int %% 31536000)
FROM generate_series(%(first)s, %(last)s) g
JOIN volume_users u ON u.n = g %% %(user_count)s
JOIN volume_syncs p ON p.n = g %% %(sync_count)s;
"""
SYNC_INDEX = """
CREATE TABLE volume_syncs AS SELECT row_number() OVER (ORDER BY id) - 1 AS n, sync_id FROM sync_progress;
CREATE UNIQUE INDEX ON volume_syncs (n);
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
        for step in (TENANTS, USERS, USER_INDEX, PREVIEWS, PROGRESS, SYNC_INDEX):
            conn.execute(step, params)  # type: ignore[arg-type]
        conn.commit()
    timings["tenants, previews and progress"] = time.perf_counter() - started
    halves = [(0, log_rows // 2 - 1), (log_rows // 2, log_rows - 1)]

    def load_half(bounds: tuple[int, int]) -> None:
        with connect(conninfo) as conn:
            conn.execute(
                LOG, {"first": bounds[0], "last": bounds[1], "user_count": user_count, "sync_count": sync_count}
            )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(load_half, halves))
    timings[f"{log_rows:,} activity-log rows"] = time.perf_counter() - started
    started = time.perf_counter()
    with connect(conninfo, autocommit=True) as conn:
        conn.execute(CLEAN_UP)
    timings["analyze"] = time.perf_counter() - started
    return timings
