"""What migration 0024 must create, from the readiness report. A DBA reviews this file against it.

Never derived from the migration under test: the migration is checked against this file.
Report sections are cited beside each group; columns the report does not name are the
project's design (README, "The schema") and are marked `design`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prerequisite:
    """Something the report requires before 0024 runs."""

    label: str  # as the report's blocking issues name it
    check: str  # the report's production readiness check it decides
    kind: str  # "table" or "schema"
    name: str


# Report, Recommendations, Steps 1-2: what must exist before 0024 runs, in the report's order.
PREREQUISITES = (
    Prerequisite("organization table", "Schema prerequisites exist", "table", "public.organization"),
    Prerequisite("auth schema", "Auth infrastructure exists", "schema", "auth"),
    Prerequisite("auth.users_extended table", "User mapping table exists", "table", "auth.users_extended"),
)
# Report, Recommendations, Step 3: the table migration 0023 creates.
MIGRATION_0023_TABLE = "public.sync_connection"

# Report, section 5: names and labels, in order.
ENUMS: dict[str, tuple[str, ...]] = {
    "sync_type": ("woocommerce", "odoo", "shopify", "custom"),
    "sync_action": (
        "preview_delta",
        "sync_start",
        "sync_complete",
        "batch_process",
        "error_recovery",
        "manual_trigger",
        "scheduled_run",
        "partial_resume",
    ),
    "sync_entity_type": (
        "customer",
        "product",
        "order",
        "invoice",
        "supplier",
        "inventory",
        "category",
        "attribute",
    ),
    "sync_status_type": (
        "pending",
        "in_progress",
        "completed",
        "completed_with_errors",
        "failed",
        "cancelled",
        "paused",
        "timeout",
    ),
}


@dataclass(frozen=True)
class Column:
    """A column as the catalog describes it."""

    type: str  # format_type() of the column
    nullable: bool
    default: str | None = None  # pg_get_expr() of the default

    def __str__(self) -> str:
        return f"{self.type} {'NULL' if self.nullable else 'NOT NULL'}" + (
            f" DEFAULT {self.default}" if self.default else ""
        )


UUID_PK = Column("uuid", False, "gen_random_uuid()")
ORG_ID = Column("uuid", False)  # report, section 6: REFERENCES organization(id) ON DELETE CASCADE
USER_REF = Column("uuid", True)  # report, section 6: REFERENCES auth.users_extended(id) ON DELETE SET NULL
CREATED_NOW = Column("timestamp with time zone", False, "now()")
EMPTY_JSON = Column("jsonb", False, "'{}'::jsonb")

TABLES: dict[str, dict[str, Column]] = {
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
    # A partitioned table's primary key must contain the partition key.
    "sync_activity_log": ("id", "created_at"),
}


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key and its ON DELETE action."""

    column: str
    references: str  # schema-qualified table
    on_delete: str  # CASCADE, SET NULL, ...

    def __str__(self) -> str:
        return f"{self.column} REFERENCES {self.references} ON DELETE {self.on_delete}"


# Report, section 6.
FOREIGN_KEYS: dict[str, frozenset[ForeignKey]] = {
    "sync_preview_cache": frozenset(
        {
            ForeignKey("org_id", "public.organization", "CASCADE"),
            ForeignKey("computed_by", "auth.users_extended", "SET NULL"),
        }
    ),
    "sync_progress": frozenset(
        {
            ForeignKey("org_id", "public.organization", "CASCADE"),
            ForeignKey("initiated_by", "auth.users_extended", "SET NULL"),
        }
    ),
    "sync_activity_log": frozenset(
        {
            ForeignKey("org_id", "public.organization", "CASCADE"),
            ForeignKey("user_id", "auth.users_extended", "SET NULL"),
        }
    ),
}

# Report, section 3 heading and the issue: sync_activity_log is partitioned by range on its
# creation time, with partitions covering now and a default partition.
PARTITIONED: dict[str, tuple[str, str]] = {"sync_activity_log": ("range", "created_at")}


@dataclass(frozen=True)
class Index:
    """An index: its table, its key with sort directions, and its predicate."""

    table: str
    columns: tuple[str, ...]  # with " DESC" where the report writes DESC
    predicate: str | None = None  # pg_get_expr() of the partial index predicate
    unique: bool = False
    method: str = "btree"


# Report, section 3: the 15 indexes.
INDEXES: dict[str, Index] = {
    "idx_sync_preview_cache_org_type": Index("sync_preview_cache", ("org_id", "sync_type")),
    "idx_sync_preview_cache_expires": Index("sync_preview_cache", ("expires_at",)),
    "idx_sync_preview_cache_computed": Index("sync_preview_cache", ("computed_at DESC",)),
    "idx_sync_preview_cache_key": Index("sync_preview_cache", ("cache_key",), "(cache_key IS NOT NULL)"),
    "idx_sync_progress_org_job": Index("sync_progress", ("org_id", "job_id")),
    "idx_sync_progress_org_sync": Index("sync_progress", ("org_id", "sync_id")),
    "idx_sync_progress_active": Index("sync_progress", ("org_id", "updated_at DESC"), "(completed_at IS NULL)"),
    "idx_sync_progress_updated": Index("sync_progress", ("org_id", "updated_at DESC")),
    "idx_sync_progress_entity": Index("sync_progress", ("org_id", "entity_type", "started_at DESC")),
    "idx_sync_activity_log_org_created": Index("sync_activity_log", ("org_id", "created_at DESC")),
    "idx_sync_activity_log_user": Index("sync_activity_log", ("user_id", "created_at DESC")),
    "idx_sync_activity_log_entity": Index("sync_activity_log", ("org_id", "entity_type", "created_at DESC")),
    "idx_sync_activity_log_action": Index("sync_activity_log", ("action", "created_at DESC")),
    "idx_sync_activity_log_status": Index("sync_activity_log", ("status", "created_at DESC")),
    "idx_sync_activity_log_sync_id": Index("sync_activity_log", ("sync_id", "created_at DESC")),
}
# Beyond the report (README, "The schema"): every FK column leads an index, so deleting a
# user (ON DELETE SET NULL) does not scan these tables whole.
FK_INDEXES: dict[str, Index] = {
    "idx_sync_preview_cache_computed_by": Index("sync_preview_cache", ("computed_by",)),
    "idx_sync_progress_initiated_by": Index("sync_progress", ("initiated_by",)),
}
ALL_INDEXES = {**INDEXES, **FK_INDEXES}

# Report, section 4 and the rollback script (section 8); how each function runs is the
# project's design (README, "The schema"): every function pins search_path to '' (nothing
# it names can be shadowed by a caller's schema), and the two functions that act beyond
# the caller's rights, the scheduled clean-up and the audit trigger, are SECURITY DEFINER.
PINNED_SEARCH_PATH = 'search_path=""'  # pg_proc.proconfig of SET search_path = ''


@dataclass(frozen=True)
class Function:
    """A function as pg_proc describes it: what it returns, how it runs, with whose rights, what it pins."""

    returns: str  # pg_get_function_result()
    language: str
    volatility: str  # VOLATILE, STABLE or IMMUTABLE
    security_definer: bool
    config: tuple[str, ...] = (PINNED_SEARCH_PATH,)  # pg_proc.proconfig: the function's SET clauses
    arguments: str = ""  # pg_get_function_identity_arguments()

    def __str__(self) -> str:
        security = "SECURITY DEFINER" if self.security_definer else "SECURITY INVOKER"
        settings = " ".join(f"SET {setting}" for setting in self.config) or "no SET (search_path not pinned)"
        return f"({self.arguments}) RETURNS {self.returns} LANGUAGE {self.language} {self.volatility} {security} {settings}"


FUNCTIONS: dict[str, Function] = {
    "auto_cleanup_preview_cache": Function("integer", "plpgsql", "VOLATILE", security_definer=True),  # scheduler
    "update_sync_progress_elapsed": Function("trigger", "plpgsql", "VOLATILE", security_definer=False),
    "validate_sync_progress_totals": Function("trigger", "plpgsql", "VOLATILE", security_definer=False),
    "update_sync_progress_timestamp": Function("trigger", "plpgsql", "VOLATILE", security_definer=False),
    "auto_log_sync_activity_on_progress_change": Function("trigger", "plpgsql", "VOLATILE", security_definer=True),
}

TRIGGER_EVENTS = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")  # the order CREATE TRIGGER prints them in


@dataclass(frozen=True)
class Trigger:
    """A user trigger as pg_trigger describes it (its tgtype bits decoded)."""

    table: str
    timing: str  # BEFORE, AFTER or INSTEAD OF
    events: frozenset[str]  # of TRIGGER_EVENTS
    function: str  # schema-qualified
    level: str = "ROW"  # or STATEMENT
    enabled: str = "O"  # pg_trigger.tgenabled: O fires (origin and local), D disabled, R replica only, A always

    def __str__(self) -> str:
        events = " OR ".join(sorted(self.events, key=TRIGGER_EVENTS.index))
        return (
            f"{self.timing} {events} ON {self.table} FOR EACH {self.level} "
            f"EXECUTE FUNCTION {self.function}() (tgenabled {self.enabled})"
        )


# Report, section 4: the events each function fires on. BEFORE triggers of one event fire in
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

# Design (README, "The schema"): a job in one of these statuses is over. Reaching one stamps
# completed_at and, from another status, writes one sync_complete row to sync_activity_log.
FINISHED_STATUSES = ("completed", "completed_with_errors", "failed", "cancelled", "timeout")

# Report, sections 2 and 6: a user reaches the rows of the organisation auth.users_extended
# maps them to; (SELECT auth.uid()) makes the lookup an InitPlan, run once per statement.
ORG_MEMBER = "org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid()))"


@dataclass(frozen=True)
class Policy:
    """A row-level security policy as pg_policies describes it; expressions as SQL text."""

    table: str
    command: str  # SELECT, INSERT, UPDATE, DELETE
    roles: tuple[str, ...] = ("authenticated",)
    permissive: bool = True
    using: str | None = None
    with_check: str | None = None


def _policies(table: str, prefix: str) -> dict[str, Policy]:
    return {
        f"{prefix}_select": Policy(table, "SELECT", using=ORG_MEMBER),
        f"{prefix}_insert": Policy(table, "INSERT", with_check=ORG_MEMBER),
        f"{prefix}_update": Policy(table, "UPDATE", using=ORG_MEMBER, with_check=ORG_MEMBER),
        f"{prefix}_delete": Policy(table, "DELETE", using=ORG_MEMBER),
    }


# Report, section 2: the 12 policies, by name.
POLICIES: dict[str, Policy] = {
    **_policies("sync_preview_cache", "preview_cache"),
    **_policies("sync_progress", "sync_progress"),
    **_policies("sync_activity_log", "sync_activity_log"),
}
