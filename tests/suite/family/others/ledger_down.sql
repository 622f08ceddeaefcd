-- =============================================================================
-- 0024 rollback                                             ("ledger" variant)
-- =============================================================================
-- Removes everything ledger.sql creates and nothing else.  Every statement is
-- IF EXISTS, so it runs whether 0024 was applied, never applied, or stopped
-- part-way.  Dropping a table drops its policies, triggers, indexes, identity
-- sequence, FKs and (for the log) every partition, including those the
-- scheduler added later; no CASCADE, so an object someone else built on top of
-- 0024 makes the rollback stop rather than disappear silently.
-- =============================================================================

BEGIN;

SET LOCAL lock_timeout = '2s';
SET LOCAL statement_timeout = '60s';

-- tables (with their policies, triggers, indexes, sequences and partitions)
DROP TABLE IF EXISTS public.sync_activity_log;
DROP TABLE IF EXISTS public.sync_progress;
DROP TABLE IF EXISTS public.sync_preview_cache;

-- functions: the report's five, then the partition helpers
DROP FUNCTION IF EXISTS public.auto_log_sync_activity_on_progress_change();
DROP FUNCTION IF EXISTS public.update_sync_progress_timestamp();
DROP FUNCTION IF EXISTS public.validate_sync_progress_totals();
DROP FUNCTION IF EXISTS public.update_sync_progress_elapsed();
DROP FUNCTION IF EXISTS public.auto_cleanup_preview_cache();
DROP FUNCTION IF EXISTS public.sync_activity_log_ensure_partitions(integer);
DROP FUNCTION IF EXISTS public.sync_activity_log_create_partition(date);

-- enumerations, after every column using them is gone
DROP TYPE IF EXISTS public.sync_status_type;
DROP TYPE IF EXISTS public.sync_entity_type;
DROP TYPE IF EXISTS public.sync_action;
DROP TYPE IF EXISTS public.sync_type;

COMMIT;
