-- An independent migration 0024, written from the readiness report alone: the suite must approve
-- it. It differs from the project's own 0024 wherever the report leaves a choice open: column
-- names and types the report does not name, one jsonb payload instead of two, a nullable job_id,
-- a 30-minute expiry, an identity key on the log, exactly the report's 15 indexes, other trigger
-- names, policies spelt with EXISTS and UPDATE policies without WITH CHECK.
BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

CREATE TYPE public.sync_type AS ENUM ('woocommerce', 'odoo', 'shopify', 'custom');
CREATE TYPE public.sync_action AS ENUM ('preview_delta', 'sync_start', 'sync_complete', 'batch_process',
    'error_recovery', 'manual_trigger', 'scheduled_run', 'partial_resume');
CREATE TYPE public.sync_entity_type AS ENUM ('customer', 'product', 'order', 'invoice', 'supplier',
    'inventory', 'category', 'attribute');
CREATE TYPE public.sync_status_type AS ENUM ('pending', 'in_progress', 'completed', 'completed_with_errors',
    'failed', 'cancelled', 'paused', 'timeout');

CREATE TABLE public.sync_preview_cache (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES public.organization (id) ON DELETE CASCADE,
    sync_type public.sync_type NOT NULL,
    cache_key varchar(512),
    payload jsonb NOT NULL,
    computed_by uuid REFERENCES auth.users_extended (id) ON DELETE SET NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '30 minutes'
);

CREATE TABLE public.sync_progress (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES public.organization (id) ON DELETE CASCADE,
    sync_id uuid NOT NULL,
    job_id varchar(64),
    entity_type public.sync_entity_type NOT NULL,
    job_status public.sync_status_type NOT NULL DEFAULT 'pending',
    items_total bigint,
    items_done bigint NOT NULL DEFAULT 0,
    items_failed bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    duration_seconds double precision,
    throughput numeric,
    initiated_by uuid REFERENCES auth.users_extended (id) ON DELETE SET NULL,
    notes text
);

CREATE TABLE public.sync_activity_log (
    id bigint GENERATED ALWAYS AS IDENTITY,
    org_id uuid NOT NULL REFERENCES public.organization (id) ON DELETE CASCADE,
    sync_id uuid,
    user_id uuid REFERENCES auth.users_extended (id) ON DELETE SET NULL,
    action public.sync_action NOT NULL,
    entity_type public.sync_entity_type,
    status public.sync_status_type NOT NULL,
    summary text NOT NULL DEFAULT '',
    payload jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (created_at, id)
) PARTITION BY RANGE (created_at);

-- Quarterly partitions around now, and a default.
DO $$
DECLARE
    q date := date_trunc('quarter', now())::date - interval '1 year';
BEGIN
    FOR i IN 0..6 LOOP
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.sync_activity_log FOR VALUES FROM (%L) TO (%L)',
            'sync_activity_log_' || to_char(q, 'YYYY') || 'q' || to_char(q, 'Q'), q, q + interval '3 months');
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY',
            'sync_activity_log_' || to_char(q, 'YYYY') || 'q' || to_char(q, 'Q'));
        EXECUTE format('REVOKE ALL ON public.%I FROM anon, authenticated',
            'sync_activity_log_' || to_char(q, 'YYYY') || 'q' || to_char(q, 'Q'));
        q := q + interval '3 months';
    END LOOP;
END $$;
CREATE TABLE public.sync_activity_log_other PARTITION OF public.sync_activity_log DEFAULT;
ALTER TABLE public.sync_activity_log_other ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.sync_activity_log_other FROM anon, authenticated;

CREATE INDEX idx_sync_preview_cache_org_type ON public.sync_preview_cache (org_id, sync_type);
CREATE INDEX idx_sync_preview_cache_expires ON public.sync_preview_cache (expires_at);
CREATE INDEX idx_sync_preview_cache_computed ON public.sync_preview_cache (computed_at DESC);
CREATE INDEX idx_sync_preview_cache_key ON public.sync_preview_cache (cache_key) WHERE cache_key IS NOT NULL;
CREATE INDEX idx_sync_progress_org_job ON public.sync_progress (org_id, job_id);
CREATE INDEX idx_sync_progress_org_sync ON public.sync_progress (org_id, sync_id);
CREATE INDEX idx_sync_progress_active ON public.sync_progress (org_id, updated_at DESC) WHERE completed_at IS NULL;
CREATE INDEX idx_sync_progress_updated ON public.sync_progress (org_id, updated_at DESC);
CREATE INDEX idx_sync_progress_entity ON public.sync_progress (org_id, entity_type, started_at DESC);
CREATE INDEX idx_sync_activity_log_org_created ON public.sync_activity_log (org_id, created_at DESC);
CREATE INDEX idx_sync_activity_log_user ON public.sync_activity_log (user_id, created_at DESC);
CREATE INDEX idx_sync_activity_log_entity ON public.sync_activity_log (org_id, entity_type, created_at DESC);
CREATE INDEX idx_sync_activity_log_action ON public.sync_activity_log (action, created_at DESC);
CREATE INDEX idx_sync_activity_log_status ON public.sync_activity_log (status, created_at DESC);
CREATE INDEX idx_sync_activity_log_sync_id ON public.sync_activity_log (sync_id, created_at DESC);

CREATE FUNCTION public.auto_cleanup_preview_cache() RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    WITH gone AS (DELETE FROM public.sync_preview_cache WHERE expires_at <= now() RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;
REVOKE ALL ON FUNCTION public.auto_cleanup_preview_cache() FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.auto_cleanup_preview_cache() TO service_role;

CREATE FUNCTION public.update_sync_progress_elapsed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public
AS $$
BEGIN
    IF NEW.job_status IN ('completed', 'completed_with_errors', 'failed', 'cancelled', 'timeout') THEN
        NEW.completed_at := coalesce(NEW.completed_at, now());
    ELSE
        NEW.completed_at := NULL;
    END IF;
    NEW.duration_seconds := greatest(extract(epoch FROM (coalesce(NEW.completed_at, now()) - NEW.started_at)), 0);
    IF NEW.duration_seconds > 0 THEN
        NEW.throughput := NEW.items_done / NEW.duration_seconds::numeric;
    ELSE
        NEW.throughput := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION public.validate_sync_progress_totals() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public
AS $$
BEGIN
    IF NEW.items_done < 0 OR NEW.items_failed < 0 OR coalesce(NEW.items_total, 0) < 0
       OR NEW.items_done > NEW.items_total OR NEW.items_failed > NEW.items_done THEN
        RAISE check_violation USING MESSAGE = format('invalid progress counts: %s of %s done, %s failed',
            NEW.items_done, NEW.items_total, NEW.items_failed);
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION public.update_sync_progress_timestamp() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public
AS $$
BEGIN
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at);
    RETURN NEW;
END $$;

CREATE FUNCTION public.auto_log_sync_activity_on_progress_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
BEGIN
    IF NEW.job_status IS DISTINCT FROM OLD.job_status
       AND NEW.job_status IN ('completed', 'completed_with_errors', 'failed', 'cancelled', 'timeout') THEN
        INSERT INTO public.sync_activity_log (org_id, sync_id, user_id, action, entity_type, status, summary, payload)
        VALUES (NEW.org_id, NEW.sync_id, NEW.initiated_by, 'sync_complete', NEW.entity_type, NEW.job_status,
                coalesce(NEW.notes, ''), jsonb_build_object('job', NEW.job_id, 'done', NEW.items_done));
    END IF;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION public.auto_log_sync_activity_on_progress_change() FROM PUBLIC, anon, authenticated;

CREATE TRIGGER progress_10_elapsed BEFORE INSERT OR UPDATE ON public.sync_progress
    FOR EACH ROW EXECUTE FUNCTION public.update_sync_progress_elapsed();
CREATE TRIGGER progress_20_touch BEFORE UPDATE ON public.sync_progress
    FOR EACH ROW EXECUTE FUNCTION public.update_sync_progress_timestamp();
CREATE TRIGGER progress_30_totals BEFORE INSERT OR UPDATE ON public.sync_progress
    FOR EACH ROW EXECUTE FUNCTION public.validate_sync_progress_totals();
CREATE TRIGGER progress_90_audit AFTER UPDATE ON public.sync_progress
    FOR EACH ROW EXECUTE FUNCTION public.auto_log_sync_activity_on_progress_change();

ALTER TABLE public.sync_preview_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sync_progress ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sync_activity_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY preview_cache_select ON public.sync_preview_cache FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_preview_cache.org_id));
CREATE POLICY preview_cache_insert ON public.sync_preview_cache FOR INSERT TO authenticated
    WITH CHECK (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_preview_cache.org_id));
CREATE POLICY preview_cache_update ON public.sync_preview_cache FOR UPDATE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_preview_cache.org_id));
CREATE POLICY preview_cache_delete ON public.sync_preview_cache FOR DELETE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_preview_cache.org_id));

CREATE POLICY sync_progress_select ON public.sync_progress FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_progress.org_id));
CREATE POLICY sync_progress_insert ON public.sync_progress FOR INSERT TO authenticated
    WITH CHECK (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_progress.org_id));
CREATE POLICY sync_progress_update ON public.sync_progress FOR UPDATE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_progress.org_id));
CREATE POLICY sync_progress_delete ON public.sync_progress FOR DELETE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_progress.org_id));

CREATE POLICY sync_activity_log_select ON public.sync_activity_log FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_activity_log.org_id));
CREATE POLICY sync_activity_log_insert ON public.sync_activity_log FOR INSERT TO authenticated
    WITH CHECK (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_activity_log.org_id));
CREATE POLICY sync_activity_log_update ON public.sync_activity_log FOR UPDATE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_activity_log.org_id));
CREATE POLICY sync_activity_log_delete ON public.sync_activity_log FOR DELETE TO authenticated
    USING (EXISTS (SELECT 1 FROM auth.users_extended u WHERE u.id = (SELECT auth.uid()) AND u.org_id = sync_activity_log.org_id));

COMMIT;
