/*
 * Migration 0024 -- sync preview / progress / activity log      [variant: guarded]
 *
 * Written from the readiness report alone.  Shape of the design:
 *
 *   Tenant isolation is layered.  Each sync table carries
 *     - the report's four permissive policies (select/insert/update/delete),
 *       which only decide WHO may act at all: a signed-in user that has a row
 *       in auth.users_extended;
 *     - one RESTRICTIVE policy, <table>_tenant_guard, FOR ALL TO authenticated,
 *       which pins org_id to the caller's organisation, looked up once per
 *       statement by sync_guard.caller_org_id() (SECURITY DEFINER, search_path
 *       pinned, in a private schema that only authenticated may use).
 *     A permissive policy added later by mistake cannot widen a tenant's reach:
 *     the restrictive guard is ANDed with every one of them.
 *
 *   anon holds the Supabase default table privileges but matches no policy,
 *   so RLS returns and accepts nothing for it.  TRUNCATE, REFERENCES,
 *   TRIGGER and MAINTAIN (which RLS does not govern) are revoked from anon
 *   and authenticated.  service_role (BYPASSRLS) is the backend.
 *
 *   Keys are uuid (gen_random_uuid()).  The activity log is range partitioned
 *   on created_at by calendar quarter (UTC), four quarters back to eight
 *   ahead, plus a DEFAULT partition so a write is never refused for its date.
 *   Partitions are closed to the API roles (they reach rows through the
 *   parent, where the policies apply).
 *
 *   Counters: items_done + items_errored <= expected_items, none negative
 *   (refused with SQLSTATE 22003).  duration_seconds is numeric seconds;
 *   throughput is items_done per second (NULL while no time has elapsed).
 *   completed_at is stamped when a job reaches a finished status without one,
 *   and cleared when the job goes back to an unfinished status.  Elapsed time
 *   is measured on the transaction clock (now()); updated_at on the wall
 *   clock (clock_timestamp()), so it advances even within one transaction.
 *
 * One transaction; lock and statement timeouts are its own.
 * Rollback: guarded_down.sql.
 */

BEGIN;

SET LOCAL lock_timeout = '1500ms';
SET LOCAL statement_timeout = '45s';
SET LOCAL search_path = public, pg_temp;

/* ---------------------------------------------------------------- enums -- */

CREATE TYPE sync_type AS ENUM ('woocommerce', 'odoo', 'shopify', 'custom');
CREATE TYPE sync_action AS ENUM ('preview_delta', 'sync_start', 'sync_complete', 'batch_process',
                                 'error_recovery', 'manual_trigger', 'scheduled_run', 'partial_resume');
CREATE TYPE sync_entity_type AS ENUM ('customer', 'product', 'order', 'invoice',
                                      'supplier', 'inventory', 'category', 'attribute');
CREATE TYPE sync_status_type AS ENUM ('pending', 'in_progress', 'completed', 'completed_with_errors',
                                      'failed', 'cancelled', 'paused', 'timeout');

/* ------------------------------------------- private schema of the guard -- */

CREATE SCHEMA sync_guard;
COMMENT ON SCHEMA sync_guard IS
    '0024: private helpers of the sync tables'' row-level security; not exposed through the API.';
REVOKE ALL ON SCHEMA sync_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA sync_guard TO authenticated;

-- The organisation of the signed-in caller (NULL when unmapped or anonymous).
-- Runs as its owner so that the guard does not depend on what RLS on
-- auth.users_extended lets the caller read.
CREATE FUNCTION sync_guard.caller_org_id()
RETURNS uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT ue.org_id
    FROM auth.users_extended AS ue
    WHERE ue.id = auth.uid()
$$;
REVOKE ALL ON FUNCTION sync_guard.caller_org_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sync_guard.caller_org_id() TO authenticated;

/* --------------------------------------------------- sync_preview_cache -- */

CREATE TABLE sync_preview_cache (
    preview_id   uuid        NOT NULL DEFAULT gen_random_uuid(),
    org_id       uuid        NOT NULL,
    sync_type    sync_type   NOT NULL,
    cache_key    text,
    preview      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    computed_by  uuid,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL DEFAULT now() + interval '30 minutes',
    CONSTRAINT sync_preview_cache_pkey PRIMARY KEY (preview_id),
    CONSTRAINT sync_preview_cache_org_fkey FOREIGN KEY (org_id)
        REFERENCES organization (id) ON DELETE CASCADE,
    CONSTRAINT sync_preview_cache_computed_by_fkey FOREIGN KEY (computed_by)
        REFERENCES auth.users_extended (id) ON DELETE SET NULL,
    CONSTRAINT sync_preview_cache_cache_key_len CHECK (char_length(cache_key) <= 512)
);

CREATE INDEX idx_sync_preview_cache_org_type ON sync_preview_cache (org_id, sync_type);
CREATE INDEX idx_sync_preview_cache_expires ON sync_preview_cache (expires_at);
CREATE INDEX idx_sync_preview_cache_computed ON sync_preview_cache (computed_at DESC);
CREATE INDEX idx_sync_preview_cache_key ON sync_preview_cache (cache_key) WHERE cache_key IS NOT NULL;
CREATE INDEX idx_sync_preview_cache_computed_by ON sync_preview_cache (computed_by) WHERE computed_by IS NOT NULL;

/* -------------------------------------------------------- sync_progress -- */

CREATE TABLE sync_progress (
    progress_id       uuid             NOT NULL DEFAULT gen_random_uuid(),
    org_id            uuid             NOT NULL,
    job_id            uuid             NOT NULL DEFAULT gen_random_uuid(),
    sync_id           uuid             NOT NULL,
    sync_type         sync_type,
    entity_type       sync_entity_type NOT NULL,
    status            sync_status_type NOT NULL DEFAULT 'pending',
    expected_items    bigint           NOT NULL DEFAULT 0,
    items_done        bigint           NOT NULL DEFAULT 0,
    items_errored     bigint           NOT NULL DEFAULT 0,
    duration_seconds  numeric(14, 3)   NOT NULL DEFAULT 0,
    throughput        double precision,
    last_error        text,
    context           jsonb            NOT NULL DEFAULT '{}'::jsonb,
    initiated_by      uuid,
    started_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    CONSTRAINT sync_progress_pkey PRIMARY KEY (progress_id),
    CONSTRAINT sync_progress_org_fkey FOREIGN KEY (org_id)
        REFERENCES organization (id) ON DELETE CASCADE,
    CONSTRAINT sync_progress_initiated_by_fkey FOREIGN KEY (initiated_by)
        REFERENCES auth.users_extended (id) ON DELETE SET NULL
);

COMMENT ON COLUMN sync_progress.duration_seconds IS 'seconds from started_at to completed_at, or to now while running';
COMMENT ON COLUMN sync_progress.throughput IS 'items_done per second of duration_seconds; NULL while no time has elapsed';

CREATE INDEX idx_sync_progress_org_job ON sync_progress (org_id, job_id);
CREATE INDEX idx_sync_progress_org_sync ON sync_progress (org_id, sync_id);
CREATE INDEX idx_sync_progress_active ON sync_progress (org_id, updated_at DESC) WHERE completed_at IS NULL;
CREATE INDEX idx_sync_progress_updated ON sync_progress (org_id, updated_at DESC);
CREATE INDEX idx_sync_progress_entity ON sync_progress (org_id, entity_type, started_at DESC);
CREATE INDEX idx_sync_progress_initiated_by ON sync_progress (initiated_by) WHERE initiated_by IS NOT NULL;

/* ---------------------------------------------------- sync_activity_log -- */

CREATE TABLE sync_activity_log (
    entry_id     uuid             NOT NULL DEFAULT gen_random_uuid(),
    org_id       uuid             NOT NULL,
    user_id      uuid,
    sync_id      uuid,
    action       sync_action      NOT NULL,
    entity_type  sync_entity_type,
    status       sync_status_type,
    note         text,
    payload      jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT sync_activity_log_pkey PRIMARY KEY (entry_id, created_at),
    CONSTRAINT sync_activity_log_org_fkey FOREIGN KEY (org_id)
        REFERENCES organization (id) ON DELETE CASCADE,
    CONSTRAINT sync_activity_log_user_fkey FOREIGN KEY (user_id)
        REFERENCES auth.users_extended (id) ON DELETE SET NULL
) PARTITION BY RANGE (created_at);

CREATE INDEX idx_sync_activity_log_org_created ON sync_activity_log (org_id, created_at DESC);
CREATE INDEX idx_sync_activity_log_user ON sync_activity_log (user_id, created_at DESC);
CREATE INDEX idx_sync_activity_log_entity ON sync_activity_log (org_id, entity_type, created_at DESC);
CREATE INDEX idx_sync_activity_log_action ON sync_activity_log (action, created_at DESC);
CREATE INDEX idx_sync_activity_log_status ON sync_activity_log (status, created_at DESC);
CREATE INDEX idx_sync_activity_log_sync_id ON sync_activity_log (sync_id, created_at DESC);

-- Quarterly partitions (UTC), four quarters back to eight ahead, and a default.
DO $$
DECLARE
    this_quarter constant timestamp := date_trunc('quarter', now() AT TIME ZONE 'UTC');
    lo timestamp;
    part text;
BEGIN
    FOR q IN -4 .. 8 LOOP
        lo := this_quarter + make_interval(months => 3 * q);
        part := format('sync_activity_log_%sq%s', to_char(lo, 'YYYY'), to_char(lo, 'Q'));
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.sync_activity_log '
                       'FOR VALUES FROM (%L) TO (%L)',
                       part, to_char(lo, 'YYYY-MM-DD') || ' 00:00:00+00',
                       to_char(lo + interval '3 months', 'YYYY-MM-DD') || ' 00:00:00+00');
    END LOOP;
    CREATE TABLE public.sync_activity_log_default PARTITION OF public.sync_activity_log DEFAULT;

    -- partitions are tables of their own: closed to the API roles
    FOR part IN
        SELECT c.relname FROM pg_catalog.pg_inherits AS i JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.sync_activity_log'::regclass
    LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', part);
        EXECUTE format('REVOKE ALL ON TABLE public.%I FROM PUBLIC, anon, authenticated, service_role', part);
    END LOOP;
END
$$;

/* ------------------------------------------------------------ functions -- */

-- Manual execution: the scheduler (service_role) or the owner.  Deletes the
-- expired previews of every organisation; returns how many.
CREATE FUNCTION auto_cleanup_preview_cache()
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
DECLARE
    removed integer;
BEGIN
    DELETE FROM public.sync_preview_cache AS c WHERE c.expires_at < now();
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$$;

CREATE FUNCTION update_sync_progress_elapsed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    finished constant boolean := NEW.status IN ('completed', 'completed_with_errors', 'failed', 'cancelled', 'timeout');
    secs numeric;
BEGIN
    -- measured on the transaction's clock, as started_at's default is: a job
    -- inserted and updated in one transaction has not run for the time between
    IF finished AND NEW.completed_at IS NULL THEN
        NEW.completed_at := greatest(now(), NEW.started_at);
    ELSIF NOT finished AND TG_OP = 'UPDATE' AND NEW.completed_at IS NOT NULL
          AND OLD.status IN ('completed', 'completed_with_errors', 'failed', 'cancelled', 'timeout') THEN
        NEW.completed_at := NULL;            -- resumed: the job is running again
    END IF;

    secs := greatest(extract(epoch FROM coalesce(NEW.completed_at, now()))
                     - extract(epoch FROM NEW.started_at), 0);
    NEW.duration_seconds := round(secs, 3);
    NEW.throughput := CASE WHEN secs > 0 THEN (NEW.items_done / secs)::double precision END;
    RETURN NEW;
END
$$;

CREATE FUNCTION validate_sync_progress_totals()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF NEW.expected_items < 0 OR NEW.items_done < 0 OR NEW.items_errored < 0 THEN
        RAISE EXCEPTION 'sync_progress: counts cannot be negative (expected %, done %, errored %)',
                        NEW.expected_items, NEW.items_done, NEW.items_errored
              USING ERRCODE = 'numeric_value_out_of_range',
                    HINT = 'expected_items, items_done and items_errored count items, from 0 up';
    END IF;
    IF NEW.items_done + NEW.items_errored > NEW.expected_items THEN
        RAISE EXCEPTION 'sync_progress: % done + % errored exceeds the % expected items',
                        NEW.items_done, NEW.items_errored, NEW.expected_items
              USING ERRCODE = 'numeric_value_out_of_range',
                    HINT = 'raise expected_items first when a job turns out larger';
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION update_sync_progress_timestamp()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;

-- One sync_complete entry each time a job enters a finished status.  Owner's
-- rights, so the entry is written whoever finishes the job; it carries the
-- job's own organisation.
CREATE FUNCTION auto_log_sync_activity_on_progress_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NEW.status IN ('completed', 'completed_with_errors', 'failed', 'cancelled', 'timeout') THEN
        INSERT INTO public.sync_activity_log (org_id, user_id, sync_id, action, entity_type, status, note, payload)
        VALUES (NEW.org_id, NEW.initiated_by, NEW.sync_id, 'sync_complete', NEW.entity_type, NEW.status,
                'job ' || NEW.job_id || ' ' || NEW.status,
                jsonb_build_object('job_id', NEW.job_id, 'previous_status', OLD.status,
                                   'expected_items', NEW.expected_items, 'items_done', NEW.items_done,
                                   'items_errored', NEW.items_errored, 'duration_seconds', NEW.duration_seconds));
    END IF;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION auto_cleanup_preview_cache() FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION auto_cleanup_preview_cache() TO service_role;
REVOKE ALL ON FUNCTION update_sync_progress_elapsed(), validate_sync_progress_totals(),
                       update_sync_progress_timestamp(), auto_log_sync_activity_on_progress_change()
    FROM PUBLIC, anon, authenticated, service_role;

-- BEFORE triggers fire by name: elapsed, timestamp, then the totals check.
CREATE TRIGGER sync_progress_update_elapsed
    BEFORE INSERT OR UPDATE ON sync_progress
    FOR EACH ROW EXECUTE FUNCTION update_sync_progress_elapsed();
CREATE TRIGGER sync_progress_update_timestamp
    BEFORE UPDATE ON sync_progress
    FOR EACH ROW EXECUTE FUNCTION update_sync_progress_timestamp();
CREATE TRIGGER sync_progress_validate_totals
    BEFORE INSERT OR UPDATE ON sync_progress
    FOR EACH ROW EXECUTE FUNCTION validate_sync_progress_totals();
CREATE TRIGGER sync_progress_log_completion
    AFTER UPDATE ON sync_progress
    FOR EACH ROW EXECUTE FUNCTION auto_log_sync_activity_on_progress_change();

/* ----------------------------------------------------------- privileges -- */

-- RLS does not govern these: TRUNCATE empties every tenant, MAINTAIN allows LOCK TABLE
-- and REINDEX, TRIGGER and REFERENCES attach objects to the table.
REVOKE TRUNCATE, REFERENCES, TRIGGER, MAINTAIN ON sync_preview_cache, sync_progress, sync_activity_log
    FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON sync_preview_cache, sync_progress, sync_activity_log
    TO authenticated, service_role;

/* ------------------------------------------------- row-level security -- */

ALTER TABLE sync_preview_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_progress ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_activity_log ENABLE ROW LEVEL SECURITY;

-- the guards: org_id is the caller's organisation, for every command
CREATE POLICY sync_preview_cache_tenant_guard ON sync_preview_cache
    AS RESTRICTIVE FOR ALL TO authenticated
    USING (org_id = (SELECT sync_guard.caller_org_id()))
    WITH CHECK (org_id = (SELECT sync_guard.caller_org_id()));
CREATE POLICY sync_progress_tenant_guard ON sync_progress
    AS RESTRICTIVE FOR ALL TO authenticated
    USING (org_id = (SELECT sync_guard.caller_org_id()))
    WITH CHECK (org_id = (SELECT sync_guard.caller_org_id()));
CREATE POLICY sync_activity_log_tenant_guard ON sync_activity_log
    AS RESTRICTIVE FOR ALL TO authenticated
    USING (org_id = (SELECT sync_guard.caller_org_id()))
    WITH CHECK (org_id = (SELECT sync_guard.caller_org_id()));

-- the report's twelve: a signed-in user with a mapping in auth.users_extended may act
CREATE POLICY preview_cache_select ON sync_preview_cache FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY preview_cache_insert ON sync_preview_cache FOR INSERT TO authenticated
    WITH CHECK (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY preview_cache_update ON sync_preview_cache FOR UPDATE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())))
    WITH CHECK (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY preview_cache_delete ON sync_preview_cache FOR DELETE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

CREATE POLICY sync_progress_select ON sync_progress FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_progress_insert ON sync_progress FOR INSERT TO authenticated
    WITH CHECK (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_progress_update ON sync_progress FOR UPDATE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())))
    WITH CHECK (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_progress_delete ON sync_progress FOR DELETE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

CREATE POLICY sync_activity_log_select ON sync_activity_log FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_activity_log_insert ON sync_activity_log FOR INSERT TO authenticated
    WITH CHECK (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_activity_log_update ON sync_activity_log FOR UPDATE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())))
    WITH CHECK (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_activity_log_delete ON sync_activity_log FOR DELETE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended AS ue WHERE ue.id = (SELECT auth.uid())));

COMMIT;
