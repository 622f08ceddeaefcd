"""What our own 0024 chose where the report leaves the choice open: reviewable, never binding.

A migration under test that differs from this file is listed under "Differences from the
project's design" in the sign-off (informational); only readiness.schema.expected, the report's
contract, decides a task.
"""

from __future__ import annotations

from readiness.schema.expected import INDEXES, Column, Function, Index, Policy, Trigger

UUID_PK = Column("uuid", False, "gen_random_uuid()")
ORG_ID = Column("uuid", False)  # report, section 6: REFERENCES organization(id) ON DELETE CASCADE
USER_REF = Column("uuid", True)  # report, section 6: REFERENCES auth.users_extended(id) ON DELETE SET NULL
CREATED_NOW = Column("timestamp with time zone", False, "now()")
EMPTY_JSON = Column("jsonb", False, "'{}'::jsonb")

COLUMNS: dict[str, dict[str, Column]] = {
    "sync_preview_cache": {
        "id": UUID_PK,
        "org_id": ORG_ID,
        "sync_type": Column("sync_type", False),  # index org_type
        "entity_type": Column("sync_entity_type", False),  # design
        "cache_key": Column("text", True),  # index key: WHERE cache_key IS NOT NULL
        "delta_summary": EMPTY_JSON,  # design
        "delta_data": Column("jsonb", True),  # design
        "computed_by": USER_REF,
        "computed_at": CREATED_NOW,
        "expires_at": Column("timestamp with time zone", False, "(now() + '01:00:00'::interval)"),
    },
    "sync_progress": {
        "id": UUID_PK,
        "org_id": ORG_ID,
        "sync_id": Column("uuid", False),  # index org_sync
        "job_id": Column("text", False),  # index org_job
        "sync_type": Column("sync_type", False),  # design
        "entity_type": Column("sync_entity_type", False),  # index entity
        "status": Column("sync_status_type", False, "'pending'::sync_status_type"),  # design
        "total_items": Column("integer", True),  # validate_sync_progress_totals(); NULL = not known yet
        "processed_items": Column("integer", False, "0"),
        "failed_items": Column("integer", False, "0"),
        "started_at": CREATED_NOW,  # index entity
        "updated_at": CREATED_NOW,  # update_sync_progress_timestamp()
        "completed_at": Column("timestamp with time zone", True),  # index active
        "elapsed_seconds": Column("numeric(14,3)", True),  # update_sync_progress_elapsed()
        "items_per_second": Column("numeric(14,3)", True),  # update_sync_progress_elapsed()
        "initiated_by": USER_REF,
        "error_message": Column("text", True),  # design
        "metadata": EMPTY_JSON,  # design
    },
    "sync_activity_log": {
        "id": Column("uuid", False, "gen_random_uuid()"),
        "org_id": ORG_ID,
        "sync_id": Column("uuid", True),  # index sync_id
        "user_id": USER_REF,
        "action": Column("sync_action", False),  # index action
        "entity_type": Column("sync_entity_type", True),  # index entity
        "status": Column("sync_status_type", False),  # index status
        "message": Column("text", True),  # design
        "details": EMPTY_JSON,  # design
        "created_at": CREATED_NOW,  # partition key
    },
}

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "sync_preview_cache": ("id",),
    "sync_progress": ("id",),
    "sync_activity_log": ("id", "created_at"),
}

# Beyond the report (docs/schema.md): every FK column leads an index, so deleting a
# user (ON DELETE SET NULL) does not scan these tables whole.
FK_INDEXES: dict[str, Index] = {
    "idx_sync_preview_cache_computed_by": Index("sync_preview_cache", ("computed_by",)),
    "idx_sync_progress_initiated_by": Index("sync_progress", ("initiated_by",)),
}
ALL_INDEXES = {**INDEXES, **FK_INDEXES}

# How each function runs (docs/schema.md): every function pins search_path to '' (nothing
# it names can be shadowed by a caller's schema), and the two functions that act beyond the
# caller's rights, the scheduled clean-up and the audit trigger, are SECURITY DEFINER.
FUNCTIONS: dict[str, Function] = {
    "auto_cleanup_preview_cache": Function("integer", "plpgsql", "VOLATILE", security_definer=True),  # scheduler
    "update_sync_progress_elapsed": Function("trigger", "plpgsql", "VOLATILE", security_definer=False),
    "validate_sync_progress_totals": Function("trigger", "plpgsql", "VOLATILE", security_definer=False),
    "update_sync_progress_timestamp": Function("trigger", "plpgsql", "VOLATILE", security_definer=False),
    "auto_log_sync_activity_on_progress_change": Function("trigger", "plpgsql", "VOLATILE", security_definer=True),
}

# Our trigger names for the report's events (section 4). BEFORE triggers of one event fire in
# name order: elapsed (stamps completed_at, derives elapsed and speed), timestamp, then totals.
TRIGGERS: dict[str, Trigger] = {
    "sync_progress_update_elapsed": Trigger(
        "sync_progress", "BEFORE", frozenset({"INSERT", "UPDATE"}), "public.update_sync_progress_elapsed"
    ),
    "sync_progress_validate_totals": Trigger(
        "sync_progress", "BEFORE", frozenset({"INSERT", "UPDATE"}), "public.validate_sync_progress_totals"
    ),
    "sync_progress_update_timestamp": Trigger(
        "sync_progress", "BEFORE", frozenset({"UPDATE"}), "public.update_sync_progress_timestamp"
    ),
    "sync_progress_log_completion": Trigger(
        "sync_progress", "AFTER", frozenset({"UPDATE"}), "public.auto_log_sync_activity_on_progress_change"
    ),
}

# Report, sections 2 and 6: a user reaches the rows of the organisation auth.users_extended
# maps them to; (SELECT auth.uid()) makes the lookup an InitPlan, run once per statement.
ORG_MEMBER = "org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid()))"


def _policies(table: str, prefix: str) -> dict[str, Policy]:
    return {
        f"{prefix}_select": Policy(table, "SELECT", using=ORG_MEMBER),
        f"{prefix}_insert": Policy(table, "INSERT", with_check=ORG_MEMBER),
        f"{prefix}_update": Policy(table, "UPDATE", using=ORG_MEMBER, with_check=ORG_MEMBER),
        f"{prefix}_delete": Policy(table, "DELETE", using=ORG_MEMBER),
    }


# Our 12 policies, with their exact text.
POLICIES: dict[str, Policy] = {
    **_policies("sync_preview_cache", "preview_cache"),
    **_policies("sync_progress", "sync_progress"),
    **_policies("sync_activity_log", "sync_activity_log"),
}


# BEFORE triggers of one event fire in the order of their names: ours fire elapsed (which stamps completed_at),
# then timestamp, then totals, so the counts are validated on the row the others have finished.
BEFORE_UPDATE_ORDER = (
    "public.update_sync_progress_elapsed",
    "public.update_sync_progress_timestamp",
    "public.validate_sync_progress_totals",
)
# Our own 0023's table: an organisation's connection to its ERP or shop (the report names none).
MIGRATION_0023_TABLE = "public.sync_connection"
# sync_activity_log by range on created_at, a partition a month, and a default partition.
PARTITION_KEY = ("range", "created_at")
