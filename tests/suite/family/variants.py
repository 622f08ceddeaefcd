"""Migration 0024 (sync preview cache, sync progress, sync activity log) as a family.

The readiness report for 0024 binds some things and leaves others open.  What it
binds is a constant of this module (enum labels, table and index names, function
and policy names); what it leaves open is a field of `Choices`.  `migration()`
and `rollback()` turn one set of choices into the two SQL files.

Every variant is meant to be sound on its own:

* tenants are isolated by RLS on the three tables, and the partitions of the
  activity log (tables of their own, reachable by name) are closed to the API
  roles; TRUNCATE, which RLS does not govern, is revoked;
* SECURITY DEFINER functions pin search_path and are executable only where
  that is harmless;
* the BEFORE triggers do not read each other's output, so their firing order
  (trigger names, dimension `trigger_order`) cannot change the result;
* foreign keys to organization / auth.users_extended are added last, so the
  SHARE ROW EXCLUSIVE locks they take on those tables are held only for the
  tail of the transaction, under lock_timeout and statement_timeout.

Only the standard library is used; nothing from outside reaches the SQL, every
identifier and literal below is a constant of this module.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from textwrap import dedent

# ---------------------------------------------------------------------------
# What the report binds
# ---------------------------------------------------------------------------

ENUMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sync_type", ("woocommerce", "odoo", "shopify", "custom")),
    ("sync_action", (
        "preview_delta", "sync_start", "sync_complete", "batch_process",
        "error_recovery", "manual_trigger", "scheduled_run", "partial_resume",
    )),
    ("sync_entity_type", (
        "customer", "product", "order", "invoice",
        "supplier", "inventory", "category", "attribute",
    )),
    ("sync_status_type", (
        "pending", "in_progress", "completed", "completed_with_errors",
        "failed", "cancelled", "paused", "timeout",
    )),
)

# A job in one of these states has finished: completed_at is due, the audit
# trail records it.  'paused' is not among them: a paused job may resume.
FINISHED_STATUSES = ("completed", "completed_with_errors", "failed", "cancelled", "timeout")

# Creation order; the rollback drops in the reverse order.
TABLES = ("sync_preview_cache", "sync_progress", "sync_activity_log")

# (name, table, key, predicate) exactly as the report writes them.
INDEXES: tuple[tuple[str, str, str, str | None], ...] = (
    ("idx_sync_preview_cache_org_type", "sync_preview_cache", "org_id, sync_type", None),
    ("idx_sync_preview_cache_expires", "sync_preview_cache", "expires_at", None),
    ("idx_sync_preview_cache_computed", "sync_preview_cache", "computed_at DESC", None),
    ("idx_sync_preview_cache_key", "sync_preview_cache", "cache_key", "cache_key IS NOT NULL"),
    ("idx_sync_progress_org_job", "sync_progress", "org_id, job_id", None),
    ("idx_sync_progress_org_sync", "sync_progress", "org_id, sync_id", None),
    ("idx_sync_progress_active", "sync_progress", "org_id, updated_at DESC", "completed_at IS NULL"),
    ("idx_sync_progress_updated", "sync_progress", "org_id, updated_at DESC", None),
    ("idx_sync_progress_entity", "sync_progress", "org_id, entity_type, started_at DESC", None),
    ("idx_sync_activity_log_org_created", "sync_activity_log", "org_id, created_at DESC", None),
    ("idx_sync_activity_log_user", "sync_activity_log", "user_id, created_at DESC", None),
    ("idx_sync_activity_log_entity", "sync_activity_log", "org_id, entity_type, created_at DESC", None),
    ("idx_sync_activity_log_action", "sync_activity_log", "action, created_at DESC", None),
    ("idx_sync_activity_log_status", "sync_activity_log", "status, created_at DESC", None),
    ("idx_sync_activity_log_sync_id", "sync_activity_log", "sync_id, created_at DESC", None),
)

# Policy names are <prefix>_<command>, one permissive policy per table and command.
POLICY_PREFIX = {
    "sync_preview_cache": "preview_cache",
    "sync_progress": "sync_progress",
    "sync_activity_log": "sync_activity_log",
}
COMMANDS = ("select", "insert", "update", "delete")

# The report's five functions, in the order its rollback drops them.
FN_AUDIT = "auto_log_sync_activity_on_progress_change"
FN_TIMESTAMP = "update_sync_progress_timestamp"
FN_TOTALS = "validate_sync_progress_totals"
FN_ELAPSED = "update_sync_progress_elapsed"
FN_CLEANUP = "auto_cleanup_preview_cache"
FUNCTIONS = (FN_AUDIT, FN_TIMESTAMP, FN_TOTALS, FN_ELAPSED, FN_CLEANUP)

# Helper schema of the `helper` policy shape.  Its own name rather than the
# `private` of Supabase's docs: projects often have a `private` schema already,
# and the rollback may only drop what 0024 created.
HELPER_SCHEMA = "sync_private"
HELPER_FUNCTION = "user_org_ids"

# Identity columns own a sequence named <table>_<column>_seq.
IDENTITY_SEQUENCES = tuple(f"{table}_id_seq" for table in TABLES)

# ---------------------------------------------------------------------------
# What the report leaves open
# ---------------------------------------------------------------------------

# The first value of each dimension is its default.
ALLOWED: dict[str, tuple[str, ...]] = {
    "pk_type": ("uuid", "identity"),
    "job_id_type": ("text", "uuid", "bigint"),
    "sync_id_type": ("uuid", "bigint"),
    "policy_shape": ("in_subquery", "exists", "helper"),
    "policy_roles": ("authenticated", "public"),
    "elapsed_unit": ("seconds", "milliseconds", "interval"),
    "counter_model": ("nested", "disjoint"),
    "updated_at_clock": ("now", "clock_timestamp", "moddatetime"),
    "audit_mode": ("finish", "status_change"),
    "completed_at_owner": ("trigger", "application"),
    "trigger_order": ("report", "validate_first", "timestamp_first"),
    "partitioning": ("monthly_default", "quarterly", "yearly_default"),
    "naming": ("verbose", "compact"),
}


@dataclass(frozen=True)
class Choices:
    """One value per open dimension; see ALLOWED for the values.

    pk_type            own primary key of each sync table: uuid DEFAULT
                       gen_random_uuid(), or bigint GENERATED ALWAYS AS IDENTITY.
    job_id_type        sync_progress.job_id: text, uuid or bigint.
    sync_id_type       sync_id of sync_progress and sync_activity_log.
    policy_shape       tenant predicate: org_id IN (subquery), EXISTS (...), or
                       org_id IN (SELECT sync_private.user_org_ids()).
    policy_roles       policies TO authenticated or TO public.  TO public makes
                       anon evaluate the predicate too, which only the helper
                       lets it do (anon may not read auth.users_extended), so
                       `public` requires `helper`.
    elapsed_unit       numeric seconds, bigint milliseconds, or interval.
    counter_model      nested: failed <= processed <= total (total NULL =
                       unknown); disjoint: done + errored <= expected.
    updated_at_clock   now(), clock_timestamp(), or a generic moddatetime-like
                       body (NEW.updated_at = CURRENT_TIMESTAMP).
    audit_mode         audit row when a job finishes, or on every status change.
    completed_at_owner the elapsed trigger stamps/clears completed_at, or the
                       application sets it and no trigger touches it.
    trigger_order      names of the triggers, hence their firing order.
    partitioning       sync_activity_log by range on created_at: monthly with
                       a default partition, quarterly without one (12 months
                       back, 3 ahead), yearly with a default partition.
    naming             vocabulary of the counter, elapsed, speed and status
                       columns of sync_progress.
    """

    pk_type: str = "uuid"
    job_id_type: str = "text"
    sync_id_type: str = "uuid"
    policy_shape: str = "in_subquery"
    policy_roles: str = "authenticated"
    elapsed_unit: str = "seconds"
    counter_model: str = "nested"
    updated_at_clock: str = "now"
    audit_mode: str = "finish"
    completed_at_owner: str = "trigger"
    trigger_order: str = "report"
    partitioning: str = "monthly_default"
    naming: str = "verbose"

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value not in ALLOWED[field.name]:
                raise ValueError(f"{field.name}={value!r}; allowed: {ALLOWED[field.name]}")
        if self.policy_roles == "public" and self.policy_shape != "helper":
            raise ValueError("policies TO public need policy_shape='helper': with an inline "
                             "lookup anon would hit 'permission denied' on auth.users_extended")


# ---------------------------------------------------------------------------
# Names that follow from the choices
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressNames:
    """Columns of sync_progress that play the roles the family is checked by."""

    status: str
    total: str
    processed: str
    failed: str
    elapsed: str
    speed: str

    def roles(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def progress_names(c: Choices) -> ProgressNames:
    verbose = c.naming == "verbose"
    if c.counter_model == "nested":
        counters = ("total_items", "processed_items", "failed_items") if verbose \
            else ("items_total", "items_processed", "items_failed")
    else:
        counters = ("expected_items", "done_items", "errored_items") if verbose \
            else ("expected", "done", "errored")
    elapsed = {
        ("seconds", True): "elapsed_seconds", ("seconds", False): "duration_s",
        ("milliseconds", True): "elapsed_ms", ("milliseconds", False): "duration_ms",
        ("interval", True): "elapsed", ("interval", False): "duration",
    }[(c.elapsed_unit, verbose)]
    if not verbose:
        speed = "throughput"
    elif c.elapsed_unit == "milliseconds":
        speed = "items_per_ms"
    else:
        speed = "items_per_second"
    return ProgressNames(
        status="status" if verbose else "state",
        total=counters[0], processed=counters[1], failed=counters[2],
        elapsed=elapsed, speed=speed,
    )


# Trigger names per order.  PostgreSQL fires triggers of the same event and
# timing in name order; the audit trigger is the only AFTER trigger.
TRIGGER_NAMES: dict[str, dict[str, str]] = {
    # The report's names (its rollback): elapsed, timestamp, totals.
    "report": {
        "elapsed": "sync_progress_update_elapsed",
        "timestamp": "sync_progress_update_timestamp",
        "totals": "sync_progress_validate_totals",
        "audit": "sync_progress_log_completion",
    },
    # Refuse bad counts before anything is computed from them.
    "validate_first": {
        "totals": "sync_progress_10_validate_totals",
        "elapsed": "sync_progress_20_update_elapsed",
        "timestamp": "sync_progress_30_update_timestamp",
        "audit": "sync_progress_90_log_activity",
    },
    # timestamp, totals, elapsed.
    "timestamp_first": {
        "timestamp": "trg_sync_progress_a_touch_updated_at",
        "totals": "trg_sync_progress_b_check_totals",
        "elapsed": "trg_sync_progress_c_compute_elapsed",
        "audit": "trg_sync_progress_z_audit",
    },
}


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _block(text: str) -> str:
    """A dedented SQL block, ending in exactly one newline."""
    return dedent(text).strip("\n") + "\n"


FINISHED_SQL = _sql_list(FINISHED_STATUSES)

# ---------------------------------------------------------------------------
# Migration sections
# ---------------------------------------------------------------------------


def _header(c: Choices) -> str:
    described = "".join(f"--   {f.name:<19} {getattr(c, f.name)}\n" for f in fields(c))
    return (
        "-- Migration 0024: sync preview cache, sync progress and sync activity log.\n"
        "--\n"
        "-- Generated by tests/suite/family/variants.py with these choices:\n"
        + described
        + _block("""
            --
            -- Requires the prerequisites (organization, auth.users_extended, auth.uid())
            -- and migration 0023.  Runs as one transaction; rollback: its companion file.
            BEGIN;

            -- The foreign keys lock organization and auth.users_extended (SHARE ROW
            -- EXCLUSIVE) until COMMIT: give up rather than queue behind, and in front
            -- of, the traffic on those tables.
            SET LOCAL lock_timeout = '5s';
            SET LOCAL statement_timeout = '60s';
        """)
    )


def _enums() -> str:
    out = ["-- Enum types, labels in the report's order."]
    for name, labels in ENUMS:
        out.append(f"CREATE TYPE public.{name} AS ENUM ({_sql_list(labels)});")
    return "\n".join(out) + "\n"


def _pk_column(c: Choices) -> str:
    if c.pk_type == "uuid":
        return "id uuid NOT NULL DEFAULT gen_random_uuid()"
    return "id bigint GENERATED ALWAYS AS IDENTITY"


def _job_id_column(c: Choices) -> str:
    # A uuid or text job id can be made up by the database; a bigint one is
    # the id of the application's job queue and must be given.
    return {
        "text": "job_id text NOT NULL DEFAULT gen_random_uuid()::text",
        "uuid": "job_id uuid NOT NULL DEFAULT gen_random_uuid()",
        "bigint": "job_id bigint NOT NULL",
    }[c.job_id_type]


def _sync_id_column(c: Choices, *, required: bool = True) -> str:
    """sync_id of a job is required; on a log row it is optional (not every
    activity, e.g. a preview, belongs to a sync run).  Same type in both."""
    if not required:
        return f"sync_id {c.sync_id_type}"
    return {
        "uuid": "sync_id uuid NOT NULL DEFAULT gen_random_uuid()",
        "bigint": "sync_id bigint NOT NULL",
    }[c.sync_id_type]


def _counter_columns(c: Choices) -> str:
    n = progress_names(c)
    if c.counter_model == "nested":
        return dedent(f"""\
            {n.total} integer,
            {n.processed} integer NOT NULL DEFAULT 0,
            {n.failed} integer NOT NULL DEFAULT 0,""")
    return dedent(f"""\
        {n.total} integer NOT NULL DEFAULT 0,
        {n.processed} integer NOT NULL DEFAULT 0,
        {n.failed} integer NOT NULL DEFAULT 0,""")


def _counter_checks(c: Choices) -> str:
    """CHECK constraints mirror the validation trigger: they still hold when
    triggers are disabled (session_replication_role = replica)."""
    n = progress_names(c)
    if c.counter_model == "nested":
        return dedent(f"""\
            CONSTRAINT sync_progress_counts_non_negative
                CHECK ({n.processed} >= 0 AND {n.failed} >= 0 AND ({n.total} IS NULL OR {n.total} >= 0)),
            CONSTRAINT sync_progress_failed_within_processed CHECK ({n.failed} <= {n.processed}),
            CONSTRAINT sync_progress_processed_within_total
                CHECK ({n.total} IS NULL OR {n.processed} <= {n.total})""")
    return dedent(f"""\
        CONSTRAINT sync_progress_counts_non_negative
            CHECK ({n.total} >= 0 AND {n.processed} >= 0 AND {n.failed} >= 0),
        CONSTRAINT sync_progress_counts_within_expected
            CHECK ({n.processed}::bigint + {n.failed} <= {n.total})""")


def _elapsed_columns(c: Choices) -> str:
    n = progress_names(c)
    elapsed_type = {"seconds": "numeric", "milliseconds": "bigint", "interval": "interval"}[c.elapsed_unit]
    return f"{n.elapsed} {elapsed_type},\n{n.speed} numeric,"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _tables(c: Choices) -> str:
    n = progress_names(c)
    pk = _pk_column(c)
    # Foreign keys come at the end of the file (see _foreign_keys).
    preview = _block(f"""
        -- Previews of what a sync would change, cached per organisation.
        CREATE TABLE public.sync_preview_cache (
            {pk},
            org_id uuid NOT NULL,
            computed_by uuid,
            sync_type public.sync_type NOT NULL,
            entity_type public.sync_entity_type,
            cache_key text,
            delta jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            computed_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL DEFAULT now() + interval '15 minutes',
            CONSTRAINT sync_preview_cache_pkey PRIMARY KEY (id)
        );
    """)
    progress = (
        "-- One row per job and entity type; the triggers below keep its timing honest.\n"
        "CREATE TABLE public.sync_progress (\n"
        + _indent("\n".join([
            f"{pk},",
            "org_id uuid NOT NULL,",
            "initiated_by uuid,",
            _job_id_column(c) + ",",
            _sync_id_column(c) + ",",
            "entity_type public.sync_entity_type NOT NULL,",
            f"{n.status} public.sync_status_type NOT NULL DEFAULT 'pending',",
            _counter_columns(c),
            _elapsed_columns(c),
            "started_at timestamptz NOT NULL DEFAULT now(),",
            "updated_at timestamptz NOT NULL DEFAULT now(),",
            "completed_at timestamptz,",
            "error_message text,",
            "metadata jsonb NOT NULL DEFAULT '{}'::jsonb,",
            "CONSTRAINT sync_progress_pkey PRIMARY KEY (id),",
            _counter_checks(c),
        ]))
        + "\n);\n"
    )
    log = _block(f"""
        -- Audit trail, partitioned by created_at; the key includes the partition key.
        CREATE TABLE public.sync_activity_log (
            {pk},
            org_id uuid NOT NULL,
            user_id uuid,
            {_sync_id_column(c, required=False)},
            action public.sync_action NOT NULL,
            entity_type public.sync_entity_type,
            status public.sync_status_type,
            message text,
            details jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT sync_activity_log_pkey PRIMARY KEY (id, created_at)
        ) PARTITION BY RANGE (created_at);
    """)
    return "\n".join([preview, progress, log])


def _comments(c: Choices) -> str:
    n = progress_names(c)
    unit = {
        "seconds": ("seconds (numeric)", "items per second"),
        "milliseconds": ("milliseconds", "items per millisecond"),
        "interval": ("an interval", "items per second"),
    }[c.elapsed_unit]
    completed_by = ("set by the trigger when the job reaches a finished status, cleared on resume"
                    if c.completed_at_owner == "trigger"
                    else "set by the application; no trigger writes it")
    return _block(f"""
        COMMENT ON TABLE public.sync_preview_cache IS
            'Cached sync previews per organisation; expired rows are removed by auto_cleanup_preview_cache().';
        COMMENT ON TABLE public.sync_progress IS
            'Progress of sync jobs per organisation; timing columns are maintained by triggers.';
        COMMENT ON TABLE public.sync_activity_log IS
            'Audit trail of sync activity per organisation, partitioned by created_at.';
        COMMENT ON COLUMN public.sync_progress.{n.elapsed} IS
            'Time from started_at to completed_at (to now while unfinished), in {unit[0]}.';
        COMMENT ON COLUMN public.sync_progress.{n.speed} IS
            '{n.processed} per unit of {n.elapsed}: {unit[1]}; NULL while no time has elapsed.';
        COMMENT ON COLUMN public.sync_progress.completed_at IS '{completed_by}.';
    """)


# Partition layouts: (step in months, months back, months ahead, default?,
# date_trunc field, partition name suffix format).
PARTITION_LAYOUTS = {
    "monthly_default": (1, 3, 3, True, "month", '"y"YYYY"m"MM'),
    # No default partition: every row must land in a range, so cover the past
    # year and the coming quarter.
    "quarterly": (3, 12, 3, False, "quarter", '"y"YYYY"q"Q'),
    "yearly_default": (12, 12, 12, True, "year", '"y"YYYY'),
}


def _partitions(c: Choices) -> str:
    step, back, ahead, with_default, unit, suffix = PARTITION_LAYOUTS[c.partitioning]
    # Bounds are computed at apply time, in UTC calendar arithmetic on
    # timestamp without time zone (so DST cannot shift a bound), and converted
    # back to instants for the timestamptz partition key.
    ranges = _block(f"""
        -- Partitions from {back} months back to {ahead} months ahead of the day 0024 is applied.
        DO $$
        DECLARE
            lo timestamp := date_trunc('{unit}', (now() AT TIME ZONE 'UTC') - interval '{back} months');
            stop timestamp := date_trunc('{unit}', (now() AT TIME ZONE 'UTC') + interval '{ahead} months')
                              + interval '{step} months';
        BEGIN
            WHILE lo < stop LOOP
                EXECUTE format(
                    'CREATE TABLE public.%I PARTITION OF public.sync_activity_log FOR VALUES FROM (%L) TO (%L)',
                    'sync_activity_log_' || to_char(lo, '{suffix}'),
                    lo AT TIME ZONE 'UTC',
                    (lo + interval '{step} months') AT TIME ZONE 'UTC');
                lo := lo + interval '{step} months';
            END LOOP;
        END
        $$;
    """)
    default = ("CREATE TABLE public.sync_activity_log_default PARTITION OF public.sync_activity_log DEFAULT;\n"
               if with_default else "")
    return ranges + default


def _harden_partitions() -> str:
    # Named directly, a partition is checked against its own grants and RLS,
    # not the parent's policies; the default privileges of schema public gave
    # anon and authenticated ALL on it.  Close it to them (service_role, which
    # bypasses RLS anyway, keeps its grant), and enable RLS without policies as
    # a second barrier.  Partitions added later must get the same treatment.
    return _block("""
        -- Partitions are reachable only through sync_activity_log (and its policies).
        DO $$
        DECLARE
            part regclass;
        BEGIN
            FOR part IN
                SELECT inhrelid::regclass FROM pg_catalog.pg_inherits
                WHERE inhparent = 'public.sync_activity_log'::regclass
            LOOP
                EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
                EXECUTE format('REVOKE ALL ON TABLE %s FROM anon, authenticated', part);
            END LOOP;
        END
        $$;
    """)


def _indexes() -> str:
    out = ["-- The report's indexes; on the partitioned log they cascade to every partition."]
    for name, table, key, predicate in INDEXES:
        where = f" WHERE {predicate}" if predicate else ""
        out.append(f"CREATE INDEX {name} ON public.{table} ({key}){where};")
    return "\n".join(out) + "\n"


def _fn_cleanup() -> str:
    # SECURITY DEFINER so that a scheduler role removes the expired previews of
    # every organisation whatever its own RLS; that is also why anon and
    # authenticated may not execute it (the grants section).
    return _block(f"""
        -- Manual / scheduled: delete expired previews of every organisation, nothing else.
        CREATE FUNCTION public.{FN_CLEANUP}()
        RETURNS integer
        LANGUAGE plpgsql
        SECURITY DEFINER
        SET search_path = ''
        AS $$
        DECLARE
            removed integer;
        BEGIN
            DELETE FROM public.sync_preview_cache WHERE expires_at < now();
            GET DIAGNOSTICS removed = ROW_COUNT;
            RETURN removed;
        END
        $$;
    """)


def _completed_at_logic(c: Choices) -> str:
    s = progress_names(c).status
    if c.completed_at_owner == "application":
        return "-- completed_at belongs to the application: read here, never written.\n"
    # Stamped here, in the same function that reads it, so no other trigger's
    # position in the firing order matters.  A job that stays finished keeps
    # its first completion time whatever the UPDATE wrote.
    return dedent(f"""\
        -- completed_at belongs to this trigger: stamped on finishing, kept while
        -- finished, cleared on resume, whatever the statement wrote.
        IF NEW.{s} IN ({FINISHED_SQL}) THEN
            IF TG_OP = 'UPDATE' AND OLD.{s} IN ({FINISHED_SQL}) AND OLD.completed_at IS NOT NULL THEN
                NEW.completed_at := OLD.completed_at;
            ELSE
                NEW.completed_at := now();
            END IF;
        ELSE
            NEW.completed_at := NULL;  -- running, paused, pending or resumed
        END IF;
    """)


def _elapsed_logic(c: Choices) -> tuple[str, str]:
    """(declarations, statements) computing elapsed and speed from
    started_at .. coalesce(completed_at, now())."""
    n = progress_names(c)
    span = "coalesce(NEW.completed_at, now()) - NEW.started_at"
    if c.elapsed_unit == "seconds":
        return ("    secs numeric;\n", dedent(f"""\
            secs := greatest(extract(epoch FROM {span}), 0);
            NEW.{n.elapsed} := secs;
            NEW.{n.speed} := CASE WHEN secs > 0 THEN NEW.{n.processed} / secs END;
        """))
    if c.elapsed_unit == "milliseconds":
        return ("    ms bigint;\n", dedent(f"""\
            ms := greatest(floor(extract(epoch FROM {span}) * 1000), 0)::bigint;
            NEW.{n.elapsed} := ms;
            NEW.{n.speed} := CASE WHEN ms > 0 THEN NEW.{n.processed}::numeric / ms END;
        """))
    return ("    span interval;\n    secs numeric;\n", dedent(f"""\
        span := greatest({span}, interval '0');
        secs := extract(epoch FROM span);
        NEW.{n.elapsed} := span;
        NEW.{n.speed} := CASE WHEN secs > 0 THEN NEW.{n.processed} / secs END;
    """))


def _plpgsql_body(declare: str, statements: str) -> str:
    body = _indent(statements.rstrip("\n"))
    decl = f"DECLARE\n{declare}" if declare else ""
    return f"{decl}BEGIN\n{body}\nEND"


def _fn_elapsed(c: Choices) -> str:
    declare, statements = _elapsed_logic(c)
    body = _plpgsql_body(declare, _completed_at_logic(c) + statements + "RETURN NEW;\n")
    return (
        "-- BEFORE INSERT OR UPDATE: elapsed runs from started_at to completion, or to\n"
        "-- now while the job is unfinished; speed is processed items per unit of it.\n"
        f"CREATE FUNCTION public.{FN_ELAPSED}()\n"
        "RETURNS trigger\n"
        "LANGUAGE plpgsql\n"
        "SET search_path = ''\n"
        f"AS $$\n{body}\n$$;\n"
    )


def _refuse(message: str, *args: str) -> str:
    """A RAISE that reports as a CHECK violation would (SQLSTATE 23514)."""
    params = "".join(f", NEW.{a}" for a in args)
    return (f"RAISE EXCEPTION USING ERRCODE = 'check_violation',\n"
            f"    MESSAGE = format('sync_progress: {message}'{params});")


def _fn_totals(c: Choices) -> str:
    n = progress_names(c)
    if c.counter_model == "nested":
        rules = [
            (f"NEW.{n.processed} < 0 OR NEW.{n.failed} < 0 OR NEW.{n.total} < 0",
             _refuse("negative count (total %s, processed %s, failed %s)", n.total, n.processed, n.failed)),
            (f"NEW.{n.failed} > NEW.{n.processed}",
             _refuse("%s failed items exceed %s processed", n.failed, n.processed)),
            # A NULL total (unknown yet) bounds nothing: the comparison is NULL.
            (f"NEW.{n.processed} > NEW.{n.total}",
             _refuse("%s processed items exceed the total of %s", n.processed, n.total)),
        ]
    else:
        rules = [
            (f"NEW.{n.total} < 0 OR NEW.{n.processed} < 0 OR NEW.{n.failed} < 0",
             _refuse("negative count (expected %s, done %s, errored %s)", n.total, n.processed, n.failed)),
            (f"NEW.{n.processed}::bigint + NEW.{n.failed} > NEW.{n.total}",
             _refuse("%s done + %s errored exceed the %s expected", n.processed, n.failed, n.total)),
        ]
    checks = "".join(f"IF {cond} THEN\n{_indent(action)}\nEND IF;\n" for cond, action in rules)
    return (
        "-- BEFORE INSERT OR UPDATE: refuse negative counts and more processed than total.\n"
        "-- It reads only the counters, which no other trigger writes.\n"
        f"CREATE FUNCTION public.{FN_TOTALS}()\n"
        "RETURNS trigger\n"
        "LANGUAGE plpgsql\n"
        "SET search_path = ''\n"
        f"AS $$\n{_plpgsql_body('', checks + 'RETURN NEW;')}\n$$;\n"
    )


def _fn_timestamp(c: Choices) -> str:
    statement, why = {
        "now": ("NEW.updated_at := now();",
                "the transaction's time, as the column default uses"),
        "clock_timestamp": ("NEW.updated_at := clock_timestamp();",
                            "the wall-clock time of the statement, so updates within one transaction differ"),
        "moddatetime": ("NEW.updated_at = CURRENT_TIMESTAMP;",
                        "generic, moddatetime-like: it names no column but updated_at"),
    }[c.updated_at_clock]
    return (
        f"-- BEFORE UPDATE: updated_at is the time of the update whatever the UPDATE wrote;\n"
        f"-- {why}.\n"
        f"CREATE FUNCTION public.{FN_TIMESTAMP}()\n"
        "RETURNS trigger\n"
        "LANGUAGE plpgsql\n"
        "SET search_path = ''\n"
        f"AS $$\nBEGIN\n    {statement}\n    RETURN NEW;\nEND\n$$;\n"
    )


def _audit_action(c: Choices) -> str:
    s = progress_names(c).status
    if c.audit_mode == "finish":
        return dedent("""\
            IF NOT just_finished THEN
                RETURN NULL;
            END IF;
            v_action := 'sync_complete';
        """)
    return dedent(f"""\
        IF just_finished THEN
            v_action := 'sync_complete';
        ELSIF OLD.{s} IS NOT DISTINCT FROM NEW.{s} THEN
            RETURN NULL;
        ELSIF NEW.{s} = 'in_progress' THEN
            v_action := CASE OLD.{s}
                            WHEN 'pending' THEN 'sync_start'::public.sync_action
                            WHEN 'paused' THEN 'partial_resume'::public.sync_action
                            ELSE 'error_recovery'::public.sync_action  -- restarted after failing/finishing
                        END;
        ELSIF NEW.{s} = 'paused' THEN
            v_action := 'manual_trigger';
        ELSIF NEW.{s} = 'pending' THEN
            v_action := 'scheduled_run';  -- queued again
        ELSE
            v_action := 'sync_complete';  -- one finished status to another
        END IF;
    """)


def _fn_audit(c: Choices) -> str:
    n = progress_names(c)
    s = n.status
    statements = _audit_action(c) + dedent(f"""\
        -- user_id only if the caller has a users_extended row (service_role
        -- and scheduler calls have none), so the foreign key always holds.
        INSERT INTO public.sync_activity_log
            (org_id, user_id, sync_id, action, entity_type, status, message, details)
        VALUES (
            NEW.org_id,
            (SELECT ue.id FROM auth.users_extended ue WHERE ue.id = auth.uid()),
            NEW.sync_id,
            v_action,
            NEW.entity_type,
            NEW.{s},
            format('sync job %s: %s -> %s', NEW.job_id, OLD.{s}, NEW.{s}),
            jsonb_build_object(
                'progress_id', NEW.id,
                'job_id', NEW.job_id,
                'previous_status', OLD.{s},
                'status', NEW.{s},
                'total', NEW.{n.total},
                'processed', NEW.{n.processed},
                'failed', NEW.{n.failed},
                'elapsed', NEW.{n.elapsed},
                'started_at', NEW.started_at,
                'completed_at', NEW.completed_at));
        RETURN NULL;
    """)
    declare = (
        "    -- A job finishes when it enters a finished status, or when the\n"
        "    -- application stamps completed_at.\n"
        "    just_finished constant boolean :=\n"
        f"        (NEW.{s} IN ({FINISHED_SQL}) AND OLD.{s} NOT IN ({FINISHED_SQL}))\n"
        "        OR (OLD.completed_at IS NULL AND NEW.completed_at IS NOT NULL);\n"
        "    v_action public.sync_action;\n"
    )
    what = "a job finishes" if c.audit_mode == "finish" else "a job's status changes or it finishes"
    # SECURITY DEFINER: the audit row is written whoever finished the job and
    # whatever their own rights on the log; it carries the job's org_id, which
    # the UPDATE policy has just checked to be the caller's.
    return (
        f"-- AFTER UPDATE: an audit row, in the job's organisation, when {what}.\n"
        f"CREATE FUNCTION public.{FN_AUDIT}()\n"
        "RETURNS trigger\n"
        "LANGUAGE plpgsql\n"
        "SECURITY DEFINER\n"
        "SET search_path = ''\n"
        f"AS $$\n{_plpgsql_body(declare, statements)}\n$$;\n"
    )


def _helper(c: Choices) -> str:
    if c.policy_shape != "helper":
        return ""
    grantees = "anon, authenticated" if c.policy_roles == "public" else "authenticated"
    return _block(f"""
        -- The caller's organisations, for the policies.  SECURITY DEFINER: one
        -- lookup per statement, independent of the RLS and grants on
        -- auth.users_extended.  Its own schema keeps it out of the API.  Harmless
        -- to execute: it returns only the caller's own organisations.
        CREATE SCHEMA {HELPER_SCHEMA};
        COMMENT ON SCHEMA {HELPER_SCHEMA} IS 'Helpers of migration 0024, not exposed through the API.';

        CREATE FUNCTION {HELPER_SCHEMA}.{HELPER_FUNCTION}()
        RETURNS SETOF uuid
        LANGUAGE sql
        STABLE
        SECURITY DEFINER
        SET search_path = ''
        AS $$
            SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())
        $$;

        REVOKE ALL ON FUNCTION {HELPER_SCHEMA}.{HELPER_FUNCTION}() FROM PUBLIC;
        GRANT USAGE ON SCHEMA {HELPER_SCHEMA} TO {grantees};
        GRANT EXECUTE ON FUNCTION {HELPER_SCHEMA}.{HELPER_FUNCTION}() TO {grantees};
    """)


def _functions(c: Choices) -> str:
    return "\n".join([_fn_cleanup(), _fn_elapsed(c), _fn_totals(c), _fn_timestamp(c), _fn_audit(c)])


def _triggers(c: Choices) -> str:
    t = TRIGGER_NAMES[c.trigger_order]
    s = progress_names(c).status
    before = {
        "elapsed": f"CREATE TRIGGER {t['elapsed']}\n    BEFORE INSERT OR UPDATE ON public.sync_progress\n"
                   f"    FOR EACH ROW EXECUTE FUNCTION public.{FN_ELAPSED}();",
        "totals": f"CREATE TRIGGER {t['totals']}\n    BEFORE INSERT OR UPDATE ON public.sync_progress\n"
                  f"    FOR EACH ROW EXECUTE FUNCTION public.{FN_TOTALS}();",
        "timestamp": f"CREATE TRIGGER {t['timestamp']}\n    BEFORE UPDATE ON public.sync_progress\n"
                     f"    FOR EACH ROW EXECUTE FUNCTION public.{FN_TIMESTAMP}();",
    }
    # Written in firing (name) order, which is what the reader wants to see.
    ordered = sorted(before, key=lambda role: t[role])
    audit = (f"CREATE TRIGGER {t['audit']}\n    AFTER UPDATE ON public.sync_progress\n    FOR EACH ROW\n"
             f"    WHEN (OLD.{s} IS DISTINCT FROM NEW.{s} OR OLD.completed_at IS DISTINCT FROM NEW.completed_at)\n"
             f"    EXECUTE FUNCTION public.{FN_AUDIT}();")
    return ("-- BEFORE triggers fire in name order: " + ", ".join(ordered) + ".\n"
            + "\n".join(before[role] for role in ordered) + "\n" + audit + "\n")


def tenant_predicate(c: Choices, table: str) -> str:
    """The caller may touch a row only if it belongs to one of their organisations."""
    if c.policy_shape == "in_subquery":
        return "org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid()))"
    if c.policy_shape == "exists":
        return ("EXISTS (SELECT 1 FROM auth.users_extended ue "
                f"WHERE ue.id = (SELECT auth.uid()) AND ue.org_id = {table}.org_id)")
    return f"org_id IN (SELECT {HELPER_SCHEMA}.{HELPER_FUNCTION}())"


def _policies(c: Choices) -> str:
    roles = "authenticated" if c.policy_roles == "authenticated" else "public"
    out = ["-- Row level security: one permissive policy per table and command, all scoped to",
           "-- the caller's organisation; UPDATE checks the new row too, so no row changes tenant."]
    for table in TABLES:
        out.append(f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY;")
    for table in TABLES:
        pred = tenant_predicate(c, table)
        prefix = POLICY_PREFIX[table]
        for command in COMMANDS:
            clause = {
                "select": f"USING ({pred})",
                "insert": f"WITH CHECK ({pred})",
                "update": f"USING ({pred})\n    WITH CHECK ({pred})",
                "delete": f"USING ({pred})",
            }[command]
            out.append(f"CREATE POLICY {prefix}_{command} ON public.{table}\n"
                       f"    AS PERMISSIVE FOR {command.upper()} TO {roles}\n    {clause};")
    return "\n".join(out) + "\n"


def _grants(c: Choices) -> str:
    tables = ", ".join(f"public.{t}" for t in TABLES)
    trigger_fns = ", ".join(f"public.{f}()" for f in (FN_ELAPSED, FN_TOTALS, FN_TIMESTAMP, FN_AUDIT))
    out = [_block(f"""
        -- The default privileges of schema public gave the API roles ALL.  RLS is the
        -- barrier for SELECT/INSERT/UPDATE/DELETE, but TRUNCATE ignores RLS and
        -- TRIGGER/REFERENCES are not for API users: take those away.
        REVOKE TRUNCATE, TRIGGER, REFERENCES ON TABLE {tables} FROM anon, authenticated;

        -- Cross-tenant deletion of expired previews is for the owner, a scheduler
        -- and service_role only.
        REVOKE ALL ON FUNCTION public.{FN_CLEANUP}() FROM PUBLIC, anon, authenticated;
        GRANT EXECUTE ON FUNCTION public.{FN_CLEANUP}() TO service_role;

        -- Trigger functions are never called directly; nobody needs EXECUTE on them.
        REVOKE ALL ON FUNCTION {trigger_fns} FROM PUBLIC, anon, authenticated;
    """)]
    if c.pk_type == "identity":
        sequences = ", ".join(f"public.{s}" for s in IDENTITY_SEQUENCES)
        out.append(_block(f"""
            -- Inserting needs no right on an identity sequence; setval() by a tenant
            -- would break every other tenant's inserts, and reading it leaks volume.
            REVOKE ALL ON SEQUENCE {sequences} FROM anon, authenticated;
        """))
    return "\n".join(out)


def _foreign_keys() -> str:
    return _block("""
        -- Foreign keys last: each takes SHARE ROW EXCLUSIVE on the table it references
        -- until COMMIT, so they should be the tail of the transaction.  The tables are
        -- empty, validation is instant.
        ALTER TABLE public.sync_preview_cache
            ADD CONSTRAINT sync_preview_cache_org_id_fkey
                FOREIGN KEY (org_id) REFERENCES public.organization (id) ON DELETE CASCADE,
            ADD CONSTRAINT sync_preview_cache_computed_by_fkey
                FOREIGN KEY (computed_by) REFERENCES auth.users_extended (id) ON DELETE SET NULL;
        ALTER TABLE public.sync_progress
            ADD CONSTRAINT sync_progress_org_id_fkey
                FOREIGN KEY (org_id) REFERENCES public.organization (id) ON DELETE CASCADE,
            ADD CONSTRAINT sync_progress_initiated_by_fkey
                FOREIGN KEY (initiated_by) REFERENCES auth.users_extended (id) ON DELETE SET NULL;
        ALTER TABLE public.sync_activity_log
            ADD CONSTRAINT sync_activity_log_org_id_fkey
                FOREIGN KEY (org_id) REFERENCES public.organization (id) ON DELETE CASCADE,
            ADD CONSTRAINT sync_activity_log_user_id_fkey
                FOREIGN KEY (user_id) REFERENCES auth.users_extended (id) ON DELETE SET NULL;
    """)


def migration(choices: Choices) -> str:
    """The whole 0024 file for these choices: one transaction."""
    c = choices
    sections = [
        _header(c),
        _enums(),
        _tables(c),
        _comments(c),
        _partitions(c),
        _indexes(),
        _harden_partitions(),
        _helper(c),
        _functions(c),
        _triggers(c),
        _policies(c),
        _grants(c),
        _foreign_keys(),
        "COMMIT;\n",
    ]
    return "\n".join(s for s in sections if s)


def rollback(choices: Choices) -> str:
    """Undo 0024 exactly: every object it created and nothing else, also on a
    database where it was never applied or only partly (IF EXISTS throughout,
    no CASCADE, so nothing someone else built on top is dropped silently)."""
    c = choices
    drop_tables = "\n".join(f"DROP TABLE IF EXISTS public.{t};" for t in reversed(TABLES))
    drop_functions = "\n".join(f"DROP FUNCTION IF EXISTS public.{f}();" for f in FUNCTIONS)
    drop_types = "\n".join(f"DROP TYPE IF EXISTS public.{name};" for name, _ in reversed(ENUMS))
    helper = ""
    if c.policy_shape == "helper":
        helper = _block(f"""
            -- The policy helper and its schema (created by 0024; RESTRICT: if someone has
            -- put objects of their own there, stop rather than drop them).
            DROP FUNCTION IF EXISTS {HELPER_SCHEMA}.{HELPER_FUNCTION}();
            DROP SCHEMA IF EXISTS {HELPER_SCHEMA};
        """)
    sections = [
        "-- Rollback of migration 0024, generated for these choices:\n"
        + "".join(f"--   {f.name:<19} {getattr(c, f.name)}\n" for f in fields(c))
        + _block("""
            BEGIN;

            SET LOCAL lock_timeout = '5s';
            SET LOCAL statement_timeout = '60s';
        """),
        "-- A table takes its partitions, policies, triggers, indexes, constraints,\n"
        "-- comments and identity sequences with it.\n" + drop_tables + "\n",
        "-- The functions, now that no trigger uses them.\n" + drop_functions + "\n",
        helper,
        "-- The enum types, now that no column uses them.\n" + drop_types + "\n",
        "COMMIT;\n",
    ]
    return "\n".join(s for s in sections if s)


# ---------------------------------------------------------------------------
# The family
# ---------------------------------------------------------------------------

FAMILY: dict[str, Choices] = {
    # Supabase's recommended helper, policies TO public, bigint everywhere,
    # milliseconds, disjoint counters, validation first, quarterly partitions.
    "helper_public_ms": Choices(
        pk_type="identity", job_id_type="bigint", sync_id_type="bigint",
        policy_shape="helper", policy_roles="public",
        elapsed_unit="milliseconds", counter_model="disjoint",
        updated_at_clock="clock_timestamp", audit_mode="status_change",
        completed_at_owner="application", trigger_order="validate_first",
        partitioning="quarterly", naming="compact",
    ),
    "exists_interval": Choices(
        pk_type="uuid", job_id_type="uuid", sync_id_type="uuid",
        policy_shape="exists", policy_roles="authenticated",
        elapsed_unit="interval", counter_model="nested",
        updated_at_clock="moddatetime", audit_mode="status_change",
        completed_at_owner="trigger", trigger_order="timestamp_first",
        partitioning="yearly_default", naming="verbose",
    ),
    "subquery_identity": Choices(
        pk_type="identity", job_id_type="text", sync_id_type="uuid",
        policy_shape="in_subquery", policy_roles="authenticated",
        elapsed_unit="seconds", counter_model="disjoint",
        updated_at_clock="moddatetime", audit_mode="finish",
        completed_at_owner="application", trigger_order="validate_first",
        partitioning="monthly_default", naming="compact",
    ),
    "helper_quarterly": Choices(
        pk_type="uuid", job_id_type="bigint", sync_id_type="uuid",
        policy_shape="helper", policy_roles="authenticated",
        elapsed_unit="milliseconds", counter_model="nested",
        updated_at_clock="clock_timestamp", audit_mode="finish",
        completed_at_owner="trigger", trigger_order="timestamp_first",
        partitioning="quarterly", naming="verbose",
    ),
    "exists_yearly_report_order": Choices(
        pk_type="identity", job_id_type="uuid", sync_id_type="bigint",
        policy_shape="exists", policy_roles="authenticated",
        elapsed_unit="interval", counter_model="disjoint",
        updated_at_clock="now", audit_mode="status_change",
        completed_at_owner="trigger", trigger_order="report",
        partitioning="yearly_default", naming="compact",
    ),
}

COLUMNS: dict[str, dict[str, dict[str, str]]] = {
    name: {"sync_progress": progress_names(choices).roles()} for name, choices in FAMILY.items()
}


def _uncovered_values() -> dict[str, set[str]]:
    """Values of a dimension that no variant of FAMILY uses (should be none)."""
    missing = {}
    for dimension, values in ALLOWED.items():
        used = {getattr(choices, dimension) for choices in FAMILY.values()}
        if set(values) - used:
            missing[dimension] = set(values) - used
    return missing


if _uncovered_values():  # a family that misses a value is a bug of this module
    raise RuntimeError(f"FAMILY does not use: {_uncovered_values()}")
