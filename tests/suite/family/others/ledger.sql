-- =============================================================================
-- 0024  Sync preview, progress & activity ledger            ("ledger" variant)
-- =============================================================================
-- Written from the readiness report (migration-0024-readiness-report.md) alone.
--
-- Design notes
--   * Keys are bigint identity columns (GENERATED ALWAYS); the activity log's
--     key is (id, created_at) because it is range partitioned on created_at.
--   * The activity log is an append-only ledger for API users: they may read
--     and add entries of their own organisation, never change or remove them
--     (no UPDATE/DELETE privilege, and the report's update/delete policies are
--     USING (false)).  Only the owner (FK cascades, retention jobs) and
--     service_role remove entries.
--   * The log is partitioned by calendar month (UTC) WITHOUT a default
--     partition.  This file creates the months from two before the current
--     month to three after it; a scheduler (service_role) must call
--     public.sync_activity_log_ensure_partitions() at least monthly to keep
--     months ahead available.  A row outside every partition is refused.
--   * Counters obey 0 <= failed_items <= processed_items <= total_items (total
--     NULL while unknown), enforced twice: by validate_sync_progress_totals()
--     with a readable message, and by CHECK constraints as a backstop.
--   * elapsed is an interval; items_per_second = processed_items / elapsed in
--     seconds (NULL while no time has elapsed).
--   * update_sync_progress_elapsed() also keeps completed_at consistent with
--     status: stamped (now()) when a job reaches a finished status without
--     one, cleared when a job goes back to an unfinished status.
--   * anon holds no privilege at all on these tables, their partitions or
--     their identity sequences.
--
-- Runs in one transaction, bounded by its own lock and statement timeouts.
-- Rollback: ledger_down.sql.
-- =============================================================================

BEGIN;

SET LOCAL lock_timeout = '2s';
SET LOCAL statement_timeout = '60s';

-- -----------------------------------------------------------------------------
-- 1. Enumerations (labels and order exactly as the report lists them)
-- -----------------------------------------------------------------------------

CREATE TYPE public.sync_type AS ENUM ('woocommerce', 'odoo', 'shopify', 'custom');

CREATE TYPE public.sync_action AS ENUM (
    'preview_delta', 'sync_start', 'sync_complete', 'batch_process',
    'error_recovery', 'manual_trigger', 'scheduled_run', 'partial_resume'
);

CREATE TYPE public.sync_entity_type AS ENUM (
    'customer', 'product', 'order', 'invoice',
    'supplier', 'inventory', 'category', 'attribute'
);

CREATE TYPE public.sync_status_type AS ENUM (
    'pending', 'in_progress', 'completed', 'completed_with_errors',
    'failed', 'cancelled', 'paused', 'timeout'
);

-- -----------------------------------------------------------------------------
-- 2. sync_preview_cache: a computed delta preview, valid until expires_at
-- -----------------------------------------------------------------------------

CREATE TABLE public.sync_preview_cache (
    id           bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME public.sync_preview_cache_id_seq),
    org_id       uuid NOT NULL
                 REFERENCES public.organization (id) ON DELETE CASCADE,
    sync_type    public.sync_type NOT NULL,
    entity_type  public.sync_entity_type,
    cache_key    text,
    delta        jsonb NOT NULL DEFAULT '{}'::jsonb,
    summary      jsonb NOT NULL DEFAULT '{}'::jsonb,
    computed_by  uuid
                 REFERENCES auth.users_extended (id) ON DELETE SET NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL DEFAULT now() + interval '1 hour',
    CONSTRAINT sync_preview_cache_pkey PRIMARY KEY (id),
    CONSTRAINT sync_preview_cache_expires_after_computed CHECK (expires_at > computed_at),
    -- keeps every key well inside a btree entry (2704 bytes): refused cleanly, not by the index
    CONSTRAINT sync_preview_cache_cache_key_length CHECK (octet_length(cache_key) <= 1024)
);

COMMENT ON TABLE public.sync_preview_cache IS
    '0024: delta previews computed before a sync; rows past expires_at are removed by auto_cleanup_preview_cache().';

CREATE INDEX idx_sync_preview_cache_org_type ON public.sync_preview_cache (org_id, sync_type);
CREATE INDEX idx_sync_preview_cache_expires  ON public.sync_preview_cache (expires_at);
CREATE INDEX idx_sync_preview_cache_computed ON public.sync_preview_cache (computed_at DESC);
CREATE INDEX idx_sync_preview_cache_key      ON public.sync_preview_cache (cache_key) WHERE cache_key IS NOT NULL;
-- not in the report: serves ON DELETE SET NULL when a user is deleted
CREATE INDEX idx_sync_preview_cache_computed_by ON public.sync_preview_cache (computed_by);

-- -----------------------------------------------------------------------------
-- 3. sync_progress: one row per sync job
-- -----------------------------------------------------------------------------

CREATE TABLE public.sync_progress (
    id                bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME public.sync_progress_id_seq),
    org_id            uuid NOT NULL
                      REFERENCES public.organization (id) ON DELETE CASCADE,
    job_id            uuid NOT NULL DEFAULT gen_random_uuid(),
    sync_id           uuid NOT NULL,
    sync_type         public.sync_type,
    entity_type       public.sync_entity_type NOT NULL,
    status            public.sync_status_type NOT NULL DEFAULT 'pending',
    total_items       bigint,                       -- NULL while not yet known
    processed_items   bigint NOT NULL DEFAULT 0,    -- items handled, failed ones included
    failed_items      bigint NOT NULL DEFAULT 0,
    elapsed           interval NOT NULL DEFAULT interval '0',
    items_per_second  numeric,                      -- NULL while no time has elapsed
    last_message      text,
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
    initiated_by      uuid
                      REFERENCES auth.users_extended (id) ON DELETE SET NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    CONSTRAINT sync_progress_pkey PRIMARY KEY (id),
    CONSTRAINT sync_progress_counts_not_negative
        CHECK (processed_items >= 0 AND failed_items >= 0 AND (total_items IS NULL OR total_items >= 0)),
    CONSTRAINT sync_progress_processed_within_total
        CHECK (total_items IS NULL OR processed_items <= total_items),
    CONSTRAINT sync_progress_failed_within_processed
        CHECK (failed_items <= processed_items),
    CONSTRAINT sync_progress_completed_after_start
        CHECK (completed_at IS NULL OR completed_at >= started_at),
    CONSTRAINT sync_progress_updated_after_start
        CHECK (updated_at >= started_at),
    CONSTRAINT sync_progress_measures_not_negative
        CHECK (elapsed >= interval '0' AND (items_per_second IS NULL OR items_per_second >= 0))
);

COMMENT ON TABLE public.sync_progress IS
    '0024: progress of each sync job; elapsed/items_per_second/completed_at/updated_at are maintained by triggers.';

CREATE INDEX idx_sync_progress_org_job  ON public.sync_progress (org_id, job_id);
CREATE INDEX idx_sync_progress_org_sync ON public.sync_progress (org_id, sync_id);
CREATE INDEX idx_sync_progress_active   ON public.sync_progress (org_id, updated_at DESC) WHERE completed_at IS NULL;
CREATE INDEX idx_sync_progress_updated  ON public.sync_progress (org_id, updated_at DESC);
CREATE INDEX idx_sync_progress_entity   ON public.sync_progress (org_id, entity_type, started_at DESC);
-- not in the report: serves ON DELETE SET NULL when a user is deleted
CREATE INDEX idx_sync_progress_initiated_by ON public.sync_progress (initiated_by);

-- -----------------------------------------------------------------------------
-- 4. sync_activity_log: append-only ledger, monthly range partitions (UTC)
-- -----------------------------------------------------------------------------

CREATE TABLE public.sync_activity_log (
    id           bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME public.sync_activity_log_id_seq),
    org_id       uuid NOT NULL
                 REFERENCES public.organization (id) ON DELETE CASCADE,
    user_id      uuid
                 REFERENCES auth.users_extended (id) ON DELETE SET NULL,
    sync_id      uuid,
    action       public.sync_action NOT NULL,
    entity_type  public.sync_entity_type,
    status       public.sync_status_type,
    message      text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sync_activity_log_pkey PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

COMMENT ON TABLE public.sync_activity_log IS
    '0024: append-only activity ledger, one partition per UTC month, no default partition; '
    'keep months ahead with public.sync_activity_log_ensure_partitions().';

CREATE INDEX idx_sync_activity_log_org_created ON public.sync_activity_log (org_id, created_at DESC);
CREATE INDEX idx_sync_activity_log_user        ON public.sync_activity_log (user_id, created_at DESC);
CREATE INDEX idx_sync_activity_log_entity      ON public.sync_activity_log (org_id, entity_type, created_at DESC);
CREATE INDEX idx_sync_activity_log_action      ON public.sync_activity_log (action, created_at DESC);
CREATE INDEX idx_sync_activity_log_status      ON public.sync_activity_log (status, created_at DESC);
CREATE INDEX idx_sync_activity_log_sync_id     ON public.sync_activity_log (sync_id, created_at DESC);

-- One month's partition, named sync_activity_log_YYYY_MM, bounded by UTC
-- midnights.  Idempotent.  Each partition is closed to the API roles: they
-- reach the rows through the parent only, where the policies apply.
CREATE FUNCTION public.sync_activity_log_create_partition(p_month date)
RETURNS regclass
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
    v_first date;
    v_name  text;
    v_lo    timestamptz;
    v_hi    timestamptz;
    v_rel   regclass;
BEGIN
    IF p_month IS NULL THEN
        RAISE EXCEPTION 'sync_activity_log_create_partition: month must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    v_first := date_trunc('month', p_month)::date;
    v_name  := 'sync_activity_log_' || to_char(v_first, 'YYYY_MM');
    v_lo    := v_first::timestamp AT TIME ZONE 'UTC';
    v_hi    := (v_first + interval '1 month')::timestamp AT TIME ZONE 'UTC';

    v_rel := to_regclass(format('public.%I', v_name));
    IF v_rel IS NOT NULL THEN
        RETURN v_rel;
    END IF;

    -- bounds written with their UTC offset: independent of the session's TimeZone
    EXECUTE format(
        'CREATE TABLE public.%I PARTITION OF public.sync_activity_log FOR VALUES FROM (%L) TO (%L)',
        v_name, to_char(v_lo AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"+00"'),
                to_char(v_hi AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"+00"'));
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', v_name);
    EXECUTE format('REVOKE ALL ON TABLE public.%I FROM PUBLIC, anon, authenticated, service_role', v_name);

    RETURN format('public.%I', v_name)::regclass;
END;
$$;

COMMENT ON FUNCTION public.sync_activity_log_create_partition(date) IS
    '0024: creates (if missing) the sync_activity_log partition of the month holding the given date.';

-- What the scheduler calls (monthly or more often): the current month and the
-- next p_months_ahead months.
CREATE FUNCTION public.sync_activity_log_ensure_partitions(p_months_ahead integer DEFAULT 3)
RETURNS SETOF regclass
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
BEGIN
    IF p_months_ahead IS NULL OR p_months_ahead NOT BETWEEN 0 AND 24 THEN
        RAISE EXCEPTION 'sync_activity_log_ensure_partitions: months ahead must be between 0 and 24, not %',
            p_months_ahead USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 0 .. p_months_ahead LOOP
        RETURN NEXT public.sync_activity_log_create_partition((v_month + make_interval(months => i))::date);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION public.sync_activity_log_ensure_partitions(integer) IS
    '0024: scheduler entry point; ensures partitions for this month and the next N (default 3).';

REVOKE ALL ON FUNCTION public.sync_activity_log_create_partition(date)    FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION public.sync_activity_log_ensure_partitions(integer) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.sync_activity_log_create_partition(date)    TO service_role;
GRANT EXECUTE ON FUNCTION public.sync_activity_log_ensure_partitions(integer) TO service_role;

-- From two months before the current (UTC) month to three months after it.
SELECT public.sync_activity_log_create_partition(
           (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => m))::date)
FROM generate_series(-2, 3) AS m;

-- -----------------------------------------------------------------------------
-- 5. Functions of the report
-- -----------------------------------------------------------------------------

-- Manual execution (scheduler as service_role, or the owner).  SECURITY
-- INVOKER: it deletes what its caller may delete, and only service_role is
-- granted EXECUTE; service_role and the owner are not bound by RLS, so they
-- remove every organisation's expired previews.  Returns the number deleted.
CREATE FUNCTION public.auto_cleanup_preview_cache()
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM public.sync_preview_cache WHERE expires_at < now();
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;

COMMENT ON FUNCTION public.auto_cleanup_preview_cache() IS
    '0024: deletes expired previews (expires_at < now()) of every organisation; run by the scheduler as service_role.';

-- BEFORE INSERT OR UPDATE: completed_at follows status, then elapsed and speed.
CREATE FUNCTION public.update_sync_progress_elapsed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_seconds numeric;
BEGIN
    IF NEW.status IN ('completed', 'completed_with_errors', 'failed', 'cancelled', 'timeout') THEN
        IF NEW.completed_at IS NULL THEN
            NEW.completed_at := greatest(now(), NEW.started_at);
        END IF;
    ELSE
        NEW.completed_at := NULL;           -- a running, paused or pending job has not completed
    END IF;

    NEW.elapsed := greatest(coalesce(NEW.completed_at, now()) - NEW.started_at, interval '0');
    v_seconds := extract(epoch FROM NEW.elapsed);
    NEW.items_per_second := CASE WHEN v_seconds > 0 THEN NEW.processed_items / v_seconds END;
    RETURN NEW;
END;
$$;

-- BEFORE INSERT OR UPDATE: the counters' invariants, with a message naming the job.
CREATE FUNCTION public.validate_sync_progress_totals()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.processed_items IS NULL OR NEW.failed_items IS NULL THEN
        RAISE EXCEPTION 'sync_progress job %: processed_items and failed_items must not be NULL', NEW.job_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.processed_items < 0 OR NEW.failed_items < 0 OR NEW.total_items < 0 THEN
        RAISE EXCEPTION 'sync_progress job %: counts must not be negative (total %, processed %, failed %)',
            NEW.job_id, NEW.total_items, NEW.processed_items, NEW.failed_items
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.processed_items > NEW.total_items THEN
        RAISE EXCEPTION 'sync_progress job %: processed_items % exceeds total_items %',
            NEW.job_id, NEW.processed_items, NEW.total_items
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.failed_items > NEW.processed_items THEN
        RAISE EXCEPTION 'sync_progress job %: failed_items % exceeds processed_items %',
            NEW.job_id, NEW.failed_items, NEW.processed_items
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

-- BEFORE UPDATE: updated_at is the time of the update, whatever was written.
CREATE FUNCTION public.update_sync_progress_timestamp()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- AFTER UPDATE: ledger entries for the job's lifecycle.  A job reaching a
-- finished status always gets a sync_complete entry; starting and resuming
-- are recorded too.  SECURITY DEFINER so the entry is written whoever moves
-- the job (a user under RLS without UPDATE rights on the log, service_role,
-- a maintenance role); the entry carries the job's own org_id, which the
-- caller could only change within their organisation.
CREATE FUNCTION public.auto_log_sync_activity_on_progress_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_action public.sync_action;
    v_actor  uuid;
BEGIN
    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;

    v_action := CASE
        WHEN NEW.status IN ('completed', 'completed_with_errors', 'failed', 'cancelled', 'timeout')
            THEN 'sync_complete'
        WHEN NEW.status = 'in_progress' AND OLD.status = 'paused'
            THEN 'partial_resume'
        WHEN NEW.status = 'in_progress'
            THEN 'sync_start'
    END::public.sync_action;

    IF v_action IS NULL THEN
        RETURN NULL;                        -- pausing or re-queueing: not a ledger event
    END IF;

    -- the signed-in user who made the change, when they belong to the job's
    -- organisation; a malformed JWT subject must not stop the job finishing
    BEGIN
        SELECT ue.id INTO v_actor
        FROM auth.users_extended AS ue
        WHERE ue.id = auth.uid() AND ue.org_id = NEW.org_id;
    EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
        v_actor := NULL;
    END;

    INSERT INTO public.sync_activity_log (org_id, user_id, sync_id, action, entity_type, status, message, details)
    VALUES (
        NEW.org_id,
        coalesce(v_actor, NEW.initiated_by),
        NEW.sync_id,
        v_action,
        NEW.entity_type,
        NEW.status,
        format('job %s: %s -> %s', NEW.job_id, OLD.status, NEW.status),
        jsonb_build_object(
            'job_id', NEW.job_id,
            'from_status', OLD.status,
            'initiated_by', NEW.initiated_by,
            'total_items', NEW.total_items,
            'processed_items', NEW.processed_items,
            'failed_items', NEW.failed_items,
            'elapsed_seconds', extract(epoch FROM NEW.elapsed)
        )
    );
    RETURN NULL;
END;
$$;

-- Trigger functions are never called directly; triggers fire without EXECUTE.
REVOKE ALL ON FUNCTION public.auto_cleanup_preview_cache()                  FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION public.update_sync_progress_elapsed()                FROM PUBLIC, anon, authenticated, service_role;
REVOKE ALL ON FUNCTION public.validate_sync_progress_totals()               FROM PUBLIC, anon, authenticated, service_role;
REVOKE ALL ON FUNCTION public.update_sync_progress_timestamp()              FROM PUBLIC, anon, authenticated, service_role;
REVOKE ALL ON FUNCTION public.auto_log_sync_activity_on_progress_change()   FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.auto_cleanup_preview_cache() TO service_role;

-- BEFORE triggers fire in name order: validate first, then derive.
CREATE TRIGGER sync_progress_10_validate_totals
    BEFORE INSERT OR UPDATE ON public.sync_progress
    FOR EACH ROW EXECUTE FUNCTION public.validate_sync_progress_totals();

CREATE TRIGGER sync_progress_20_elapsed
    BEFORE INSERT OR UPDATE ON public.sync_progress
    FOR EACH ROW EXECUTE FUNCTION public.update_sync_progress_elapsed();

CREATE TRIGGER sync_progress_30_touch_updated_at
    BEFORE UPDATE ON public.sync_progress
    FOR EACH ROW EXECUTE FUNCTION public.update_sync_progress_timestamp();

CREATE TRIGGER sync_progress_90_ledger
    AFTER UPDATE ON public.sync_progress
    FOR EACH ROW EXECUTE FUNCTION public.auto_log_sync_activity_on_progress_change();

-- -----------------------------------------------------------------------------
-- 6. Privileges
-- -----------------------------------------------------------------------------
-- The schema's default privileges hand ALL to the API roles; state exactly
-- what each needs instead.

REVOKE ALL ON TABLE public.sync_preview_cache, public.sync_progress, public.sync_activity_log
    FROM PUBLIC, anon, authenticated;
REVOKE ALL ON SEQUENCE public.sync_preview_cache_id_seq, public.sync_progress_id_seq, public.sync_activity_log_id_seq
    FROM PUBLIC, anon, authenticated;

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.sync_preview_cache, public.sync_progress TO authenticated;
GRANT SELECT, INSERT                 ON TABLE public.sync_activity_log                       TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.sync_preview_cache, public.sync_progress, public.sync_activity_log
    TO service_role;

-- -----------------------------------------------------------------------------
-- 7. Row-level security: the report's 12 policies
-- -----------------------------------------------------------------------------
-- A signed-in user reaches the rows of the organisation auth.users_extended
-- maps them to.  (SELECT auth.uid()) is evaluated once per statement.  New
-- rows may name no user, or the caller, as their author.

ALTER TABLE public.sync_preview_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sync_progress      ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sync_activity_log  ENABLE ROW LEVEL SECURITY;

-- sync_preview_cache
CREATE POLICY preview_cache_select ON public.sync_preview_cache
    AS PERMISSIVE FOR SELECT TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

CREATE POLICY preview_cache_insert ON public.sync_preview_cache
    AS PERMISSIVE FOR INSERT TO authenticated
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid()))
                AND (computed_by IS NULL OR computed_by = (SELECT auth.uid())));

CREATE POLICY preview_cache_update ON public.sync_preview_cache
    AS PERMISSIVE FOR UPDATE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())))
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

CREATE POLICY preview_cache_delete ON public.sync_preview_cache
    AS PERMISSIVE FOR DELETE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

-- sync_progress
CREATE POLICY sync_progress_select ON public.sync_progress
    AS PERMISSIVE FOR SELECT TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

CREATE POLICY sync_progress_insert ON public.sync_progress
    AS PERMISSIVE FOR INSERT TO authenticated
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid()))
                AND (initiated_by IS NULL OR initiated_by = (SELECT auth.uid())));

CREATE POLICY sync_progress_update ON public.sync_progress
    AS PERMISSIVE FOR UPDATE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())))
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

CREATE POLICY sync_progress_delete ON public.sync_progress
    AS PERMISSIVE FOR DELETE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

-- sync_activity_log: read and append within the organisation; never rewritten by users
CREATE POLICY sync_activity_log_select ON public.sync_activity_log
    AS PERMISSIVE FOR SELECT TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

CREATE POLICY sync_activity_log_insert ON public.sync_activity_log
    AS PERMISSIVE FOR INSERT TO authenticated
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid()))
                AND (user_id IS NULL OR user_id = (SELECT auth.uid())));

CREATE POLICY sync_activity_log_update ON public.sync_activity_log
    AS PERMISSIVE FOR UPDATE TO authenticated
    USING (false)
    WITH CHECK (false);

CREATE POLICY sync_activity_log_delete ON public.sync_activity_log
    AS PERMISSIVE FOR DELETE TO authenticated
    USING (false);

COMMIT;
