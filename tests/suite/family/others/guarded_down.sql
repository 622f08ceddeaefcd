/*
 * Rollback of migration 0024                                     [variant: guarded]
 *
 * Undoes guarded.sql: the three tables (their policies -- the twelve and the
 * three tenant guards --, triggers, indexes, partitions including the default
 * one), the five functions, the private schema sync_guard and its helper, and
 * the four enums.  IF EXISTS throughout: safe when 0024 was never applied or
 * stopped part-way.  No CASCADE: anything built on these objects by someone
 * else stops the rollback instead of vanishing with it.
 */

BEGIN;

SET LOCAL lock_timeout = '1500ms';
SET LOCAL statement_timeout = '45s';

DROP TABLE IF EXISTS public.sync_activity_log;     -- partitions go with their parent
DROP TABLE IF EXISTS public.sync_progress;
DROP TABLE IF EXISTS public.sync_preview_cache;

DROP FUNCTION IF EXISTS public.auto_log_sync_activity_on_progress_change();
DROP FUNCTION IF EXISTS public.update_sync_progress_timestamp();
DROP FUNCTION IF EXISTS public.validate_sync_progress_totals();
DROP FUNCTION IF EXISTS public.update_sync_progress_elapsed();
DROP FUNCTION IF EXISTS public.auto_cleanup_preview_cache();

DROP FUNCTION IF EXISTS sync_guard.caller_org_id();
DROP SCHEMA IF EXISTS sync_guard;

DROP TYPE IF EXISTS public.sync_status_type;
DROP TYPE IF EXISTS public.sync_entity_type;
DROP TYPE IF EXISTS public.sync_action;
DROP TYPE IF EXISTS public.sync_type;

COMMIT;
