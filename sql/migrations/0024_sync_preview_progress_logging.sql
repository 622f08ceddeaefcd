-- Migration 0024: Sync Preview, Progress & Logging.
-- Requires: organization, auth.users_extended, auth.uid() (prerequisites) and 0023.
-- Creates 4 enums, 3 tables (sync_activity_log partitioned by month on
-- created_at), the report's 15 indexes and 2 for user FKs, 5 functions,
-- 4 triggers and 12 RLS policies.
BEGIN;
-- Its FKs lock organization and auth.users_extended (SHARE ROW EXCLUSIVE): behind a long transaction
-- 0024 fails after 5 s instead of queueing every write to them. Both end with the transaction.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- Enums ---------------------------------------------------------------------

CREATE TYPE sync_type AS ENUM ('woocommerce', 'odoo', 'shopify', 'custom');

CREATE TYPE sync_action AS ENUM (
    'preview_delta', 'sync_start', 'sync_complete', 'batch_process',
    'error_recovery', 'manual_trigger', 'scheduled_run', 'partial_resume'
);

CREATE TYPE sync_entity_type AS ENUM (
    'customer', 'product', 'order', 'invoice',
    'supplier', 'inventory', 'category', 'attribute'
);

CREATE TYPE sync_status_type AS ENUM (
    'pending', 'in_progress', 'completed', 'completed_with_errors',
    'failed', 'cancelled', 'paused', 'timeout'
);

-- sync_preview_cache: the delta a sync would apply, computed ahead of the run --

CREATE TABLE sync_preview_cache (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id UUID NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    sync_type sync_type NOT NULL,
    entity_type sync_entity_type NOT NULL,
    cache_key TEXT,
    delta_summary JSONB NOT NULL DEFAULT '{}'::jsonb,
    delta_data JSONB,
    computed_by UUID REFERENCES auth.users_extended(id) ON DELETE SET NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL DEFAULT now() + INTERVAL '1 hour'
);

-- sync_progress: one row per running or finished sync job ---------------------

CREATE TABLE sync_progress (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id UUID NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    sync_id UUID NOT NULL,
    job_id TEXT NOT NULL,
    sync_type sync_type NOT NULL,
    entity_type sync_entity_type NOT NULL,
    status sync_status_type NOT NULL DEFAULT 'pending',
    total_items INTEGER,
    processed_items INTEGER NOT NULL DEFAULT 0,
    failed_items INTEGER NOT NULL DEFAULT 0,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    elapsed_seconds NUMERIC(14, 3),
    items_per_second NUMERIC(14, 3),
    initiated_by UUID REFERENCES auth.users_extended(id) ON DELETE SET NULL,
    error_message TEXT,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb
);

-- sync_activity_log: the audit trail, partitioned by month of created_at ------

CREATE TABLE sync_activity_log (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    org_id UUID NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    sync_id UUID,
    user_id UUID REFERENCES auth.users_extended(id) ON DELETE SET NULL,
    action sync_action NOT NULL,
    entity_type sync_entity_type,
    status sync_status_type NOT NULL,
    message TEXT,
    details JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

-- Monthly partitions from twelve months back to three ahead, and a default for
-- the rest. A partition is a table of its own: the parent's policies do not
-- apply when it is named directly, so the API roles lose their privileges on it
-- and RLS without policies denies them even if a grant comes back.
DO $$
DECLARE
    month_start date := date_trunc('month', now())::date - INTERVAL '12 months';
    partition_name text;
BEGIN
    FOR i IN 0..15 LOOP
        partition_name := format('sync_activity_log_y%sm%s',
            to_char(month_start, 'YYYY'), to_char(month_start, 'MM'));
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF sync_activity_log FOR VALUES FROM (%L) TO (%L)',
            partition_name, month_start, month_start + INTERVAL '1 month');
        EXECUTE format('REVOKE ALL ON %I FROM anon, authenticated', partition_name);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', partition_name);
        month_start := month_start + INTERVAL '1 month';
    END LOOP;
END
$$;

CREATE TABLE sync_activity_log_default PARTITION OF sync_activity_log DEFAULT;
REVOKE ALL ON sync_activity_log_default FROM anon, authenticated;
ALTER TABLE sync_activity_log_default ENABLE ROW LEVEL SECURITY;

-- Indexes (report, section 3) ----------------------------------------------

CREATE INDEX idx_sync_preview_cache_org_type ON sync_preview_cache (org_id, sync_type);
CREATE INDEX idx_sync_preview_cache_expires ON sync_preview_cache (expires_at);
CREATE INDEX idx_sync_preview_cache_computed ON sync_preview_cache (computed_at DESC);
CREATE INDEX idx_sync_preview_cache_key ON sync_preview_cache (cache_key) WHERE cache_key IS NOT NULL;

CREATE INDEX idx_sync_progress_org_job ON sync_progress (org_id, job_id);
CREATE INDEX idx_sync_progress_org_sync ON sync_progress (org_id, sync_id);
CREATE INDEX idx_sync_progress_active ON sync_progress (org_id, updated_at DESC) WHERE completed_at IS NULL;
CREATE INDEX idx_sync_progress_updated ON sync_progress (org_id, updated_at DESC);
CREATE INDEX idx_sync_progress_entity ON sync_progress (org_id, entity_type, started_at DESC);

CREATE INDEX idx_sync_activity_log_org_created ON sync_activity_log (org_id, created_at DESC);
CREATE INDEX idx_sync_activity_log_user ON sync_activity_log (user_id, created_at DESC);
CREATE INDEX idx_sync_activity_log_entity ON sync_activity_log (org_id, entity_type, created_at DESC);
CREATE INDEX idx_sync_activity_log_action ON sync_activity_log (action, created_at DESC);
CREATE INDEX idx_sync_activity_log_status ON sync_activity_log (status, created_at DESC);
CREATE INDEX idx_sync_activity_log_sync_id ON sync_activity_log (sync_id, created_at DESC);

-- Beyond the report: the two user FKs the 15 leave unindexed. Without them, deleting a
-- user (ON DELETE SET NULL) scans sync_preview_cache and sync_progress whole.
CREATE INDEX idx_sync_preview_cache_computed_by ON sync_preview_cache (computed_by);
CREATE INDEX idx_sync_progress_initiated_by ON sync_progress (initiated_by);

-- Functions and triggers (report, section 4) -------------------------------
-- Every function pins search_path to '' and names what it touches in full.

-- Deletes the expired previews of every organisation; returns how many.
-- Run by the scheduler as service_role, not by end users.
CREATE FUNCTION auto_cleanup_preview_cache() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
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

REVOKE EXECUTE ON FUNCTION auto_cleanup_preview_cache() FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION auto_cleanup_preview_cache() TO service_role;

-- Keeps completed_at set exactly while a job is in a finished status (stamped when
-- it finishes, cleared when it is resumed), then derives the elapsed seconds and the
-- speed (NULL while no time has elapsed).
CREATE FUNCTION update_sync_progress_elapsed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    IF NEW.status NOT IN ('completed', 'completed_with_errors', 'failed', 'cancelled', 'timeout') THEN
        NEW.completed_at := NULL;
    ELSIF NEW.completed_at IS NULL THEN
        NEW.completed_at := now();
    END IF;
    NEW.elapsed_seconds := greatest(
        extract(epoch FROM coalesce(NEW.completed_at, now()) - NEW.started_at), 0);
    NEW.items_per_second := CASE
        WHEN NEW.elapsed_seconds > 0 THEN round(NEW.processed_items / NEW.elapsed_seconds, 3)
    END;
    RETURN NEW;
END
$$;

CREATE FUNCTION validate_sync_progress_totals() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    IF NEW.processed_items < 0 OR NEW.failed_items < 0 OR NEW.total_items < 0 THEN
        RAISE EXCEPTION 'sync_progress counts must not be negative (total %, processed %, failed %)',
            NEW.total_items, NEW.processed_items, NEW.failed_items
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.processed_items > NEW.total_items THEN
        RAISE EXCEPTION 'sync_progress processed_items (%) exceeds total_items (%)',
            NEW.processed_items, NEW.total_items
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.failed_items > NEW.processed_items THEN
        RAISE EXCEPTION 'sync_progress failed_items (%) exceeds processed_items (%)',
            NEW.failed_items, NEW.processed_items
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

-- clock_timestamp(), not now(): updated_at moves on with every update, even
-- several in one transaction, and a value set by the caller is overwritten.
CREATE FUNCTION update_sync_progress_timestamp() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at);
    RETURN NEW;
END
$$;

-- Writes one audit row when a job reaches a finished status. SECURITY DEFINER
-- so the audit row is written whoever moved the job on.
CREATE FUNCTION auto_log_sync_activity_on_progress_change() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NEW.status IN ('completed', 'completed_with_errors', 'failed', 'cancelled', 'timeout') THEN
        INSERT INTO public.sync_activity_log
            (org_id, sync_id, user_id, action, entity_type, status, message, details)
        VALUES (
            NEW.org_id, NEW.sync_id, NEW.initiated_by, 'sync_complete', NEW.entity_type, NEW.status,
            NEW.error_message,
            jsonb_build_object(
                'progress_id', NEW.id, 'job_id', NEW.job_id,
                'total_items', NEW.total_items, 'processed_items', NEW.processed_items,
                'failed_items', NEW.failed_items, 'elapsed_seconds', NEW.elapsed_seconds));
    END IF;
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION auto_log_sync_activity_on_progress_change() FROM PUBLIC, anon, authenticated;

-- BEFORE triggers fire in name order: elapsed, then timestamp, then totals.
CREATE TRIGGER sync_progress_update_elapsed
    BEFORE INSERT OR UPDATE ON sync_progress
    FOR EACH ROW EXECUTE FUNCTION update_sync_progress_elapsed();

CREATE TRIGGER sync_progress_validate_totals
    BEFORE INSERT OR UPDATE ON sync_progress
    FOR EACH ROW EXECUTE FUNCTION validate_sync_progress_totals();

CREATE TRIGGER sync_progress_update_timestamp
    BEFORE UPDATE ON sync_progress
    FOR EACH ROW EXECUTE FUNCTION update_sync_progress_timestamp();

CREATE TRIGGER sync_progress_log_completion
    AFTER UPDATE ON sync_progress
    FOR EACH ROW EXECUTE FUNCTION auto_log_sync_activity_on_progress_change();

-- Row-level security (report, section 2) -----------------------------------
-- A user reaches the rows of the organisation auth.users_extended maps them to.
-- (SELECT auth.uid()) is an InitPlan: evaluated once per statement, not per row.

ALTER TABLE sync_preview_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_progress ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_activity_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY preview_cache_select ON sync_preview_cache FOR SELECT TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY preview_cache_insert ON sync_preview_cache FOR INSERT TO authenticated
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY preview_cache_update ON sync_preview_cache FOR UPDATE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())))
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY preview_cache_delete ON sync_preview_cache FOR DELETE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));

CREATE POLICY sync_progress_select ON sync_progress FOR SELECT TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_progress_insert ON sync_progress FOR INSERT TO authenticated
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_progress_update ON sync_progress FOR UPDATE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())))
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_progress_delete ON sync_progress FOR DELETE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));

CREATE POLICY sync_activity_log_select ON sync_activity_log FOR SELECT TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_activity_log_insert ON sync_activity_log FOR INSERT TO authenticated
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_activity_log_update ON sync_activity_log FOR UPDATE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())))
    WITH CHECK (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));
CREATE POLICY sync_activity_log_delete ON sync_activity_log FOR DELETE TO authenticated
    USING (org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())));

COMMIT;
