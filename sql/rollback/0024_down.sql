-- Rollback of migration 0024: the readiness report's script (section 8), with one fix.
-- The report's ALTER TABLE ... DISABLE ROW LEVEL SECURITY fails when the table does
-- not exist (0024 never applied, or stopped after its enums); task 8 showed it, and
-- IF EXISTS makes the script safe in every state. The report's version is kept in
-- 0024_down_report.sql.
BEGIN;
-- Dropping 0024's tables drops their FKs, which locks organization and auth.users_extended: behind a
-- long transaction the rollback fails after 5 s instead of queueing every write to them.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- Drop RLS policies (reverse order)
DROP POLICY IF EXISTS sync_activity_log_delete ON sync_activity_log;
DROP POLICY IF EXISTS sync_activity_log_update ON sync_activity_log;
DROP POLICY IF EXISTS sync_activity_log_insert ON sync_activity_log;
DROP POLICY IF EXISTS sync_activity_log_select ON sync_activity_log;
DROP POLICY IF EXISTS sync_progress_delete ON sync_progress;
DROP POLICY IF EXISTS sync_progress_update ON sync_progress;
DROP POLICY IF EXISTS sync_progress_insert ON sync_progress;
DROP POLICY IF EXISTS sync_progress_select ON sync_progress;
DROP POLICY IF EXISTS preview_cache_delete ON sync_preview_cache;
DROP POLICY IF EXISTS preview_cache_update ON sync_preview_cache;
DROP POLICY IF EXISTS preview_cache_insert ON sync_preview_cache;
DROP POLICY IF EXISTS preview_cache_select ON sync_preview_cache;

-- Disable RLS
ALTER TABLE IF EXISTS sync_activity_log DISABLE ROW LEVEL SECURITY;
ALTER TABLE IF EXISTS sync_progress DISABLE ROW LEVEL SECURITY;
ALTER TABLE IF EXISTS sync_preview_cache DISABLE ROW LEVEL SECURITY;

-- Drop trigger functions
DROP TRIGGER IF EXISTS sync_progress_log_completion ON sync_progress;
DROP TRIGGER IF EXISTS sync_progress_update_timestamp ON sync_progress;
DROP TRIGGER IF EXISTS sync_progress_validate_totals ON sync_progress;
DROP TRIGGER IF EXISTS sync_progress_update_elapsed ON sync_progress;

DROP FUNCTION IF EXISTS auto_log_sync_activity_on_progress_change();
DROP FUNCTION IF EXISTS update_sync_progress_timestamp();
DROP FUNCTION IF EXISTS validate_sync_progress_totals();
DROP FUNCTION IF EXISTS update_sync_progress_elapsed();
DROP FUNCTION IF EXISTS auto_cleanup_preview_cache();

-- Drop tables (partitions cascade)
DROP TABLE IF EXISTS sync_activity_log CASCADE;
DROP TABLE IF EXISTS sync_progress CASCADE;
DROP TABLE IF EXISTS sync_preview_cache CASCADE;

-- Drop enums
DROP TYPE IF EXISTS sync_status_type;
DROP TYPE IF EXISTS sync_entity_type;
DROP TYPE IF EXISTS sync_action;
DROP TYPE IF EXISTS sync_type;

COMMIT;
