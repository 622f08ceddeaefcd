"""Task 3, Index Performance Validation: the indexes exactly, then proven by plans on a busy tenant's volume.

The plans run on a database loaded once per run (--volume activity-log rows, 100 organisations),
acting as an authenticated user through RLS where the query is a user's, as service_role where it
is the scheduler's. Timings go to the sign-off's Measurements table, never into assertions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from readiness.acting.auth import acting_as, as_user
from readiness.acting.factories import SYNC_TABLES
from readiness.databases import volume_cluster
from readiness.schema import catalog, design, expected
from readiness.schema.expected import SERVICE_ROLE
from readiness.verdicts import Issue, not_applicable

pytestmark = [pytest.mark.readiness, pytest.mark.task(3)]

TABLES = list(SYNC_TABLES)
# Each marked as used by its check: a missing index is one blocking issue, not one per check (readiness.rules.causes).
REPORT_INDEXES = [pytest.param(name, marks=pytest.mark.uses(name)) for name in sorted(expected.INDEXES)]
# Functions called per row show in pg_stat_xact_user_functions (the volume's server is ours: we may track them).
FUNCTION_CALLS = "SELECT funcid::regproc::text, calls FROM pg_stat_xact_user_functions"

# --- catalog ---------------------------------------------------------------------------


@pytest.mark.enforces("report.indexes")
@pytest.mark.parametrize("name", REPORT_INDEXES)
def test_index_definition(migrated: psycopg.Connection, name: str) -> None:
    """Each of the report's 15 indexes has its table, columns in order, sort directions, predicate and method."""
    found = catalog.indexes(migrated, TABLES).get(name)
    assert found == expected.INDEXES[name], f"index {name}: expected {expected.INDEXES[name]}, found {found}"


@pytest.mark.enforces("report.indexes")
@pytest.mark.existence("indexes")
def test_report_indexes_all_there(migrated: psycopg.Connection, record) -> None:
    """The report's 15 indexes are all there; others (ours adds two for user FKs) are listed, not blocking."""
    found = catalog.indexes(migrated, TABLES)
    if set(found) != set(design.ALL_INDEXES):
        record.differ(
            "indexes of the sync tables",
            ", ".join(sorted(set(design.ALL_INDEXES) - set(found))) + " (beyond the report's 15)",
            ", ".join(sorted(set(found) - set(design.ALL_INDEXES))) or "only the report's 15",
        )
    missing = sorted(set(expected.INDEXES) - set(found))
    assert missing == [], f"the report's indexes missing: {', '.join(missing)}"


@pytest.mark.enforces("rule.indexes-valid")
def test_every_index_valid(migrated: psycopg.Connection) -> None:
    """Every index of the schema, on every partition, is valid and ready."""
    assert catalog.invalid_indexes(migrated) == [], f"invalid indexes: {catalog.invalid_indexes(migrated)}"


# --- plans on volume --------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A query an index exists for, and who runs it."""

    index: str
    purpose: str
    sql: str  # placeholders: %(org)s %(user)s %(sync)s %(job)s %(key)s %(since)s %(until)s
    role: str = "authenticated"  # through RLS as a user of the organisation; or service_role
    bounded_in_time: bool = False  # partitions outside [since, until) must be pruned


LOG_COLUMNS = "org_id, action, status, created_at"  # the report's columns: the key columns are the migration's
QUERIES = [
    Query("idx_sync_activity_log_org_created", "an organisation's latest activity",
          f"SELECT {LOG_COLUMNS} FROM sync_activity_log WHERE org_id = %(org)s ORDER BY created_at DESC LIMIT 50"),
    Query("idx_sync_activity_log_org_created", "an organisation's activity of the last 7 days",
          f"SELECT {LOG_COLUMNS} FROM sync_activity_log WHERE org_id = %(org)s"
          " AND created_at >= %(since)s AND created_at < %(until)s ORDER BY created_at DESC", bounded_in_time=True),
    Query("idx_sync_activity_log_user", "a user's latest actions",
          f"SELECT {LOG_COLUMNS} FROM sync_activity_log WHERE user_id = %(user)s ORDER BY created_at DESC LIMIT 50"),
    # An enum equality is not leakproof, so through RLS it is filtered after the policy and cannot
    # be an index condition: the entity indexes serve the backend (test_enum_filter_through_rls).
    Query("idx_sync_activity_log_entity", "an organisation's latest supplier syncs (2 % of its log)",
          f"SELECT {LOG_COLUMNS} FROM sync_activity_log WHERE org_id = %(org)s AND entity_type = 'supplier'"
          " ORDER BY created_at DESC LIMIT 50", SERVICE_ROLE),
    Query("idx_sync_activity_log_action", "latest error recoveries, all organisations",
          f"SELECT {LOG_COLUMNS} FROM sync_activity_log WHERE action = 'error_recovery'"
          " ORDER BY created_at DESC LIMIT 50", SERVICE_ROLE),
    Query("idx_sync_activity_log_status", "latest failures, all organisations",
          f"SELECT {LOG_COLUMNS} FROM sync_activity_log WHERE status = 'failed' ORDER BY created_at DESC LIMIT 50",
          SERVICE_ROLE),
    Query("idx_sync_activity_log_sync_id", "a sync's history",
          f"SELECT {LOG_COLUMNS} FROM sync_activity_log WHERE sync_id = %(sync)s ORDER BY created_at DESC"),
    Query("idx_sync_progress_active", "an organisation's running jobs",
          "SELECT org_id, updated_at FROM sync_progress WHERE org_id = %(org)s AND completed_at IS NULL"
          " ORDER BY updated_at DESC"),
    Query("idx_sync_progress_updated", "an organisation's recently updated jobs",
          "SELECT org_id, updated_at FROM sync_progress WHERE org_id = %(org)s ORDER BY updated_at DESC LIMIT 20"),
    Query("idx_sync_progress_org_job", "a job by its id",
          "SELECT job_id, started_at FROM sync_progress WHERE org_id = %(org)s AND job_id = %(job)s"),
    Query("idx_sync_progress_org_sync", "a sync's progress",
          "SELECT sync_id, started_at FROM sync_progress WHERE org_id = %(org)s AND sync_id = %(sync)s"),
    Query("idx_sync_progress_entity", "an organisation's latest product syncs",
          "SELECT org_id, started_at FROM sync_progress WHERE org_id = %(org)s AND entity_type = 'product'"
          " ORDER BY started_at DESC LIMIT 20", SERVICE_ROLE),
    Query("idx_sync_progress_initiated_by", "a deleted user's jobs (ON DELETE SET NULL)",
          "SELECT org_id FROM sync_progress WHERE initiated_by = %(user)s", SERVICE_ROLE),
    Query("idx_sync_preview_cache_org_type", "an organisation's Odoo previews",
          "SELECT org_id, cache_key FROM sync_preview_cache WHERE org_id = %(org)s AND sync_type = 'odoo'"),
    Query("idx_sync_preview_cache_key", "a preview by its cache key",
          "SELECT org_id, computed_at FROM sync_preview_cache WHERE cache_key = %(key)s"),
    Query("idx_sync_preview_cache_expires", "expired previews, for auto_cleanup_preview_cache()",
          "SELECT org_id FROM sync_preview_cache WHERE expires_at < now()", SERVICE_ROLE),
    Query("idx_sync_preview_cache_computed", "latest previews, all organisations",
          "SELECT org_id, computed_at FROM sync_preview_cache ORDER BY computed_at DESC LIMIT 20", SERVICE_ROLE),
    Query("idx_sync_preview_cache_computed_by", "a deleted user's previews (ON DELETE SET NULL)",
          "SELECT org_id FROM sync_preview_cache WHERE computed_by = %(user)s", SERVICE_ROLE),
]  # fmt: skip


def using_their_indexes(queries: list[Query], name: Callable[[Query], str] = lambda q: q.purpose) -> list[Any]:
    """`queries` as parameters, each marked as using its index and its table: BLOCKED, not failed, when 0024
    lacks the index; counted under the table's issue when its RLS breaks the report's rule (readiness.rules.causes).
    A query for an index of our design only enforces our design."""
    return [
        pytest.param(
            query,
            id=name(query),
            marks=[
                pytest.mark.uses(query.index, design.ALL_INDEXES[query.index].table),
                pytest.mark.enforces(
                    "report.index-performance" if query.index in expected.INDEXES else "design.indexes"
                ),
            ],
        )  # fmt: skip
        for query in queries
    ]


@pytest.fixture(scope="module")
def tenant_of_volume(volume_connection: psycopg.Connection) -> dict[str, Any]:
    """Ids of one volume organisation: a user, a sync with log rows, a job and a cache key."""
    conn = volume_connection
    volume_cluster.enter(conn)  # released by the rollback below
    org, user = conn.execute(
        "SELECT o.id, u.id FROM organization o JOIN auth.users_extended u ON u.org_id = o.id"
        " WHERE o.slug = 'volume-1' ORDER BY u.id LIMIT 1"
    ).fetchone()
    sync, job = conn.execute(
        "SELECT p.sync_id, p.job_id FROM sync_progress p WHERE p.org_id = %s"
        " AND EXISTS (SELECT FROM sync_activity_log l WHERE l.sync_id = p.sync_id) LIMIT 1",
        (org,),
    ).fetchone()
    key = conn.execute(
        "SELECT cache_key FROM sync_preview_cache WHERE org_id = %s AND cache_key IS NOT NULL LIMIT 1", (org,)
    ).fetchone()[0]
    now = conn.execute("SELECT now()").fetchone()[0]
    conn.rollback()
    return {"org": org, "user": user, "sync": sync, "job": job, "key": key,
            "since": now - timedelta(days=7), "until": now + timedelta(minutes=1)}  # fmt: skip


def explain(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, FORMAT JSON) with the values bound client-side, so the planner sees them as a query would."""
    cursor = psycopg.ClientCursor(conn)
    return cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, params).fetchone()[0][0]  # type: ignore[operator]


def nodes(plan: dict[str, Any], inside: str | None = None) -> list[tuple[dict[str, Any], str | None]]:
    """Every plan node with the relationship (InitPlan/SubPlan) of its nearest sub-plan ancestor."""
    relationship = plan.get("Parent Relationship")
    inside = relationship if relationship in ("InitPlan", "SubPlan") else inside
    found = [(plan, inside)]
    for child in plan.get("Plans", []):
        found += nodes(child, inside)
    return found


def indexes_used(conn: psycopg.Connection, plan: dict[str, Any]) -> set[str]:
    """The indexes a plan scans, each partition's index named by the partitioned index it belongs to."""
    names = {node["Index Name"] for node, _ in nodes(plan) if "Index Name" in node}
    return {catalog.index_root(conn, name) for name in names}


def run_as(conn: psycopg.Connection, query: Query, params: dict[str, Any]) -> dict[str, Any]:
    who = as_user(conn, params["user"]) if query.role == "authenticated" else acting_as(conn, query.role)
    with who:
        return explain(conn, query.sql, params)


@pytest.mark.parametrize("query", using_their_indexes(QUERIES, lambda q: f"{q.index}: {q.purpose}"))
def test_query_uses_its_index(
    volume_db: psycopg.Connection, tenant_of_volume: dict[str, Any], query: Query, record
) -> None:
    """On the volume, each query runs on the index it exists for, through RLS where a user runs it."""
    if query.index not in expected.INDEXES and query.index not in catalog.indexes(volume_db, TABLES):
        not_applicable(f"{query.index} is our design's, beyond the report: this migration has no such index")
    result = run_as(volume_db, query, tenant_of_volume)
    used = indexes_used(volume_db, result["Plan"])
    owner = explain(volume_db, query.sql, tenant_of_volume)
    record.measure(
        f"{query.purpose} ({query.index})",
        f"{result['Execution Time']:.2f} ms as {query.role} / {owner['Execution Time']:.2f} ms as owner, no RLS",
    )
    assert query.index in used, (
        f"{query.purpose}: expected a scan of {query.index}, the plan uses {sorted(used) or 'no index'}:\n"
        + json.dumps(result["Plan"], indent=1)[:3000]
    )


@pytest.mark.enforces("rule.plans")
@pytest.mark.parametrize("query", using_their_indexes([q for q in QUERIES if q.role == "authenticated"]))
def test_org_filter_evaluated_once(
    volume_db: psycopg.Connection, tenant_of_volume: dict[str, Any], query: Query
) -> None:
    """The policy's lookup of the caller is evaluated once per scan (an InitPlan, a hashed sub-plan), not per row:
    measured by the loops of its sub-plans and the calls of the functions it reaches."""
    volume_db.execute("SET LOCAL track_functions = 'all'")
    calls_before = dict(volume_db.execute(FUNCTION_CALLS).fetchall())  # pending counts of earlier transactions too
    plan = run_as(volume_db, query, tenant_of_volume)["Plan"]
    all_nodes = nodes(plan)
    # A hashed sub-plan is built once per partition scanned; per row it would run once per row examined.
    scans = sum(1 for node, inside in all_nodes if inside is None and "Relation Name" in node)
    repeated = [
        f"{node['Node Type']} ({node.get('Parent Relationship')}) ran {node['Actual Loops']} times for {scans} scans"
        for node, inside in all_nodes
        if inside is not None and node["Actual Loops"] > scans
    ]
    assert repeated == [], f"{query.purpose}: sub-plans of the policy re-run per row: {repeated}"
    calls = {name: n - calls_before.get(name, 0) for name, n in volume_db.execute(FUNCTION_CALLS)}
    called = {name: n for name, n in calls.items() if n > scans + 1}
    assert called == {}, f"{query.purpose}: functions the policy calls run per row ({scans} scans): {called}"
    # auth.uid() is SQL, inlined where it is called: per row it shows as the JWT read in a scan's filter.
    per_row = [
        node["Filter"]
        for node, inside in all_nodes
        if inside is None and ("current_setting(" in node.get("Filter", "") or "auth." in node.get("Filter", ""))
    ]
    assert per_row == [], f"{query.purpose}: the caller's JWT read per row in {per_row}: wrap it as (SELECT auth.uid())"


WINDOW_PARTITIONS = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
       coalesce(lo.v < %(until)s AND hi.v > %(since)s, true)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
LEFT JOIN LATERAL (SELECT NULLIF(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \\(''([^'']+)''\\)'),
                                 '')::timestamptz) AS lo(v) ON true
LEFT JOIN LATERAL (SELECT NULLIF(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)'),
                                 '')::timestamptz) AS hi(v) ON true
WHERE i.inhparent = 'sync_activity_log'::regclass
"""


@pytest.mark.enforces("rule.plans")
@pytest.mark.parametrize("query", using_their_indexes([q for q in QUERIES if q.bounded_in_time]))
def test_time_bound_prunes_partitions(
    volume_db: psycopg.Connection, tenant_of_volume: dict[str, Any], query: Query
) -> None:
    """A query bounded to the last 7 days scans only the partitions whose bounds reach into those days."""
    key = catalog.partition_key(volume_db, "sync_activity_log")
    if key != ("range", "created_at"):
        not_applicable(f"sync_activity_log is not partitioned by range on created_at ({key}): nothing to prune by time")
    plan = run_as(volume_db, query, tenant_of_volume)["Plan"]
    scanned = {node["Relation Name"] for node, inside in nodes(plan) if inside is None and "Relation Name" in node}
    rows = volume_db.execute(WINDOW_PARTITIONS, tenant_of_volume).fetchall()
    ranged = {name for name, default, overlaps in rows if overlaps and not default}
    reachable = ranged | {name for name, default, _ in rows if default}
    assert scanned and scanned <= reachable, (
        f"{query.purpose}: scans {sorted(scanned)}; of {len(rows)} partitions only {sorted(reachable)} can hold "
        "the last 7 days"
    )


ENUM_FILTERED = [q for q in QUERIES if q.index in ("idx_sync_activity_log_entity", "idx_sync_progress_entity")]


@pytest.mark.parametrize("query", using_their_indexes(ENUM_FILTERED))
def test_enum_filter_through_rls(
    volume_db: psycopg.Connection, tenant_of_volume: dict[str, Any], query: Query, record
) -> None:
    """Through RLS an enum filter is applied after the policy (enum equality is not leakproof): measured, reported."""
    leakproof = volume_db.execute("SELECT proleakproof FROM pg_proc WHERE proname = 'enum_eq'").fetchone()[0]
    assert leakproof is False, "enum_eq is leakproof on this server: run these queries as users in QUERIES again"
    with as_user(volume_db, tenant_of_volume["user"]):
        result = explain(volume_db, query.sql, tenant_of_volume)
    used = indexes_used(volume_db, result["Plan"])
    record.measure(
        f"{query.purpose} as a user through RLS",
        f"{result['Execution Time']:.2f} ms, on {', '.join(sorted(used))}: the enum filter runs after the policy",
    )
    assert used & {"idx_sync_activity_log_org_created", "idx_sync_progress_updated", query.index}, (
        f"{query.purpose}: through RLS the plan scans no index of the organisation: {sorted(used)}"
    )


# --- plans on a deployed target -----------------------------------------------------------

TENANT_ON_TARGET = """
SELECT l.org_id, (SELECT u.id FROM auth.users_extended u WHERE u.org_id = l.org_id ORDER BY u.id LIMIT 1)
FROM sync_activity_log l GROUP BY l.org_id ORDER BY count(*) DESC LIMIT 1
"""
# What planning as the target's users needs of the connecting role: reading the tables, becoming the API roles.
CANNOT_PLAN = """
SELECT string_agg(what, ', ') FROM (
    SELECT 'SELECT on ' || t AS what FROM unnest(%s::text[]) t WHERE NOT has_table_privilege(t, 'SELECT')
    UNION ALL SELECT 'SET ROLE to ' || r FROM unnest(%s::text[]) r WHERE NOT pg_has_role(r, 'SET')
) lacking
"""
PROVEN_FROM = 100_000  # rows from which the ephemeral volume's plans are those of production (NESTED_VOLUME)


def estimated_rows(conn: psycopg.Connection, table: str) -> int:
    """The planner's estimate of a table's rows (its partitions' for the log), from the target's statistics."""
    query = sql.SQL("EXPLAIN (FORMAT JSON) SELECT FROM {}").format(sql.Identifier(table))
    return int(conn.execute(query).fetchone()[0][0]["Plan"]["Plan Rows"])  # type: ignore[index]


def explain_on_target(conn: psycopg.Connection, query: Query, params: dict[str, Any], analyze: bool) -> dict[str, Any]:
    """EXPLAIN on the target's statistics; with ANALYZE (it reads the tenant's rows) only when asked."""
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    who = as_user(conn, params["user"]) if query.role == "authenticated" else acting_as(conn, query.role)
    with who:
        cursor = psycopg.ClientCursor(conn)
        return cursor.execute(f"EXPLAIN ({options}) " + query.sql, params).fetchone()[0][0]  # type: ignore[index]


@pytest.mark.enforces("design.deployed-plans")  # informational: the verdict on plans is the volume's
def test_plans_on_the_deployed_target(
    readonly_db: psycopg.Connection, migration_state, pytestconfig: pytest.Config, record
) -> None:
    """On a target where 0024 is deployed, each dashboard query is planned on the target's own rows and
    statistics, through RLS as a user of its busiest organisation; a large table planned without its index is a
    recommendation (stale statistics?). The verdict on plans is the ephemeral volume's."""
    if migration_state.held is None or migration_state.held.state != "present":
        not_applicable("0024's tables are new here: their plans are proven on the ephemeral volume")
    tables = [*(f"public.{table}" for table in TABLES), "auth.users_extended"]
    lacking = readonly_db.execute(CANNOT_PLAN, (tables, sorted({query.role for query in QUERIES}))).fetchone()[0]
    if lacking:
        not_applicable(
            f"not planned on the target: its role {readonly_db.info.user} lacks {lacking} (the verdict on plans is the "
            "ephemeral volume's); verify as the role that deployed 0024 to see the target's own plans"
        )
    tenant = readonly_db.execute(TENANT_ON_TARGET).fetchone()
    if tenant is None or tenant[1] is None:
        not_applicable("the deployed activity log has no organisation with a user and rows to plan for")
    org, user = tenant
    sync, job = readonly_db.execute(
        "SELECT sync_id, job_id FROM sync_progress WHERE org_id = %s LIMIT 1", (org,)
    ).fetchone() or (None, None)
    key = (readonly_db.execute(
        "SELECT cache_key FROM sync_preview_cache WHERE org_id = %s AND cache_key IS NOT NULL LIMIT 1", (org,)
    ).fetchone() or (None,))[0]  # fmt: skip
    now = readonly_db.execute("SELECT now()").fetchone()[0]
    params = {"org": org, "user": user, "sync": sync, "job": job, "key": key,
              "since": now - timedelta(days=7), "until": now + timedelta(minutes=1)}  # fmt: skip
    analyze = pytestconfig.getoption("explain_analyze")
    rows = {table: estimated_rows(readonly_db, table) for table in TABLES}
    present = catalog.indexes(readonly_db, TABLES)
    for query in QUERIES:
        if query.index not in present:
            continue  # its absence is test_report_indexes_all_there's finding
        lacking = [name for name, value in params.items() if value is None and f"%({name})s" in query.sql]
        if lacking:
            record.measure(f"on the target: {query.purpose} ({query.index})",
                           f"not planned: no {lacking[0]} to ask for")  # fmt: skip
            continue
        result = explain_on_target(readonly_db, query, params, analyze)
        used = sorted(indexes_used(readonly_db, result["Plan"])) or ["no index"]
        timing = f", {result['Execution Time']:.2f} ms" if analyze else ""
        record.measure(f"on the target: {query.purpose} ({query.index})",
                      f"{', '.join(used)}; est. {result['Plan']['Plan Rows']} rows{timing}")  # fmt: skip
        table = query.sql.split(" FROM ")[1].split()[0]
        if rows[table] >= PROVEN_FROM and query.index not in used:
            record.recommend(Issue(
                "MEDIUM", f"on the target, {query.purpose} is planned without {query.index} ({', '.join(used)}) on "
                f"{rows[table]:,} rows of {table}: ANALYZE it, then look again", "the target",
                about=(query.index, table),
            ))  # fmt: skip
