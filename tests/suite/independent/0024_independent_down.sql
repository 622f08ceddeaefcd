-- Rollback of the independent 0024: everything it created, in reverse order.
BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
DROP TABLE IF EXISTS public.sync_activity_log CASCADE;
DROP TABLE IF EXISTS public.sync_progress CASCADE;
DROP TABLE IF EXISTS public.sync_preview_cache CASCADE;
DROP FUNCTION IF EXISTS public.auto_log_sync_activity_on_progress_change();
DROP FUNCTION IF EXISTS public.update_sync_progress_timestamp();
DROP FUNCTION IF EXISTS public.validate_sync_progress_totals();
DROP FUNCTION IF EXISTS public.update_sync_progress_elapsed();
DROP FUNCTION IF EXISTS public.auto_cleanup_preview_cache();
DROP TYPE IF EXISTS public.sync_status_type;
DROP TYPE IF EXISTS public.sync_entity_type;
DROP TYPE IF EXISTS public.sync_action;
DROP TYPE IF EXISTS public.sync_type;
COMMIT;
