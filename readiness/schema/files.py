"""The SQL files of the suite: the report's prerequisites as our ephemeral server makes them, 0023, our 0024 and its
rollback."""

from readiness import SQL_DIR

PREREQUISITE_FILES = sorted((SQL_DIR / "prerequisites").glob("*.sql"))
# cluster-wide: anon, authenticated, service_role
SUPABASE_ROLES_SQL = SQL_DIR / "prerequisites" / "00_supabase_roles.sql"
MIGRATION_0023 = SQL_DIR / "migrations" / "0023_sync_infrastructure.sql"
DEFAULT_MIGRATION = SQL_DIR / "migrations" / "0024_sync_preview_progress_logging.sql"
DEFAULT_ROLLBACK = SQL_DIR / "rollback" / "0024_down.sql"
