"""What migration 0024 must create, from the readiness report. A DBA reviews this file against it.

Never derived from the migration under test: the migration is checked against this file.
Report sections are cited beside each group. A difference from this file fails its task. What
the report leaves open (other columns, defaults, trigger names, policy text, extra indexes,
function settings) is our own 0024's design, in readiness.schema.design: a difference from it is listed
in the sign-off and never blocks.
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


# The roles Supabase's API acts as (the report's policies decide by auth.uid(): "requires Supabase auth setup");
# anon and authenticated are subject to RLS, service_role bypasses it.
ANON, AUTHENTICATED, SERVICE_ROLE = "anon", "authenticated", "service_role"
API_ROLES = (ANON, AUTHENTICATED, SERVICE_ROLE)
# Report, Recommendations, Steps 1-2: what must exist before 0024 runs, in the report's order.
PREREQUISITES = (
    Prerequisite("organization table", "Schema prerequisites exist", "table", "public.organization"),
    Prerequisite("auth schema", "Auth infrastructure exists", "schema", "auth"),
    Prerequisite("auth.users_extended table", "User mapping table exists", "table", "auth.users_extended"),
)

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


@dataclass(frozen=True)
class Rule:
    """What the report requires of a column: a type (format_type() prefixes), or the type of the key it references,
    and, where the report implies it, NULL-ability. An empty `types` with no `references` leaves the type open."""

    types: tuple[str, ...] = ()
    nullable: bool | None = None  # None: the report leaves it open
    references: str | None = None  # schema.table.column whose type the column must have (an FK's key)

    def allows(self, column: Column, referenced: str | None = None) -> bool:
        """Whether `column` meets the rule; `referenced` is the type of the key it references, if it does."""
        typed = column.type == referenced if self.references else not self.types or column.type.startswith(self.types)
        return typed and self.nullable in (None, column.nullable)

    def describe(self, referenced: str | None = None) -> str:
        null = {None: "", True: " NULL", False: " NOT NULL"}[self.nullable]
        if self.references:
            return f"{referenced or '?'} (the type of {self.references}){null}"
        return (" or ".join(self.types) or "any type") + null


TIMESTAMPS = ("timestamp with time zone", "timestamp without time zone")
# section 6: REFERENCES organization(id) ON DELETE CASCADE; every row is a tenant's ("All sync operations require
# org_id for security isolation", Root Cause Analysis)
ORG = Rule(nullable=False, references="public.organization.id")
# section 6: REFERENCES auth.users_extended(id) ON DELETE SET NULL: the column must take NULL
USER = Rule(nullable=True, references="auth.users_extended.id")
OPEN = Rule()  # named by an index; its type is the migration's choice

# The columns the report names (section 3's indexes, section 6's keys), and what it requires of each. Every
# other column, every default, and the types the report does not imply, are the migration's choice (design).
CONTRACT_COLUMNS: dict[str, dict[str, Rule]] = {
    "sync_preview_cache": {
        "org_id": ORG,
        "computed_by": USER,
        "sync_type": Rule(("sync_type",)),  # idx_sync_preview_cache_org_type
        "cache_key": Rule(nullable=True),  # idx_sync_preview_cache_key: WHERE cache_key IS NOT NULL
        "expires_at": Rule(TIMESTAMPS),  # idx_sync_preview_cache_expires; auto_cleanup_preview_cache()
        "computed_at": Rule(TIMESTAMPS),  # idx_sync_preview_cache_computed
    },
    "sync_progress": {
        "org_id": ORG,
        "initiated_by": USER,
        "job_id": OPEN,  # idx_sync_progress_org_job
        "sync_id": OPEN,  # idx_sync_progress_org_sync
        "entity_type": Rule(("sync_entity_type",)),  # idx_sync_progress_entity
        "started_at": Rule(TIMESTAMPS),  # idx_sync_progress_entity
        "updated_at": Rule(TIMESTAMPS),  # idx_sync_progress_updated; update_sync_progress_timestamp()
        "completed_at": Rule(TIMESTAMPS, nullable=True),  # idx_sync_progress_active: WHERE completed_at IS NULL
    },
    "sync_activity_log": {
        "org_id": ORG,
        "user_id": USER,
        "sync_id": OPEN,  # idx_sync_activity_log_sync_id
        "action": Rule(("sync_action",)),  # idx_sync_activity_log_action
        "entity_type": Rule(("sync_entity_type",)),  # idx_sync_activity_log_entity
        "status": Rule(("sync_status_type",)),  # idx_sync_activity_log_status
        "created_at": Rule(TIMESTAMPS),  # idx_sync_activity_log_org_created (and the partitions' time)
    },
}
SYNC_TABLES = tuple(CONTRACT_COLUMNS)  # the three tables 0024 creates, in the report's order
# Each sync table's column naming the user who acted: named by the report (section 6, ON DELETE SET NULL).
USER_COLUMNS = {"sync_preview_cache": "computed_by", "sync_progress": "initiated_by", "sync_activity_log": "user_id"}
# Columns typed by the report's enums (section 5): those it names, and the job's status, which its
# audit function logs (found by its type: readiness.schema.column_roles).
ENUM_COLUMNS = {
    (table, name, rule.types[0])
    for table, columns in CONTRACT_COLUMNS.items()
    for name, rule in columns.items()
    if rule.types and rule.types[0] in ENUMS
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

# Report, section 8 ("Drop tables (partitions cascade)"): the audit log is the partitioned table. By what, and
# how, is the migration's choice (readiness.schema.design).
PARTITIONED = ("sync_activity_log",)


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


# Report, section 4: the five functions, in public. The four with a trigger event return trigger; what
# else each declares (language, volatility, security, settings) is the migration's choice (readiness.schema.design).
FUNCTION_NAMES = (
    "auto_cleanup_preview_cache",  # "Manual execution": run by the scheduler, not a trigger
    "update_sync_progress_elapsed",
    "validate_sync_progress_totals",
    "update_sync_progress_timestamp",
    "auto_log_sync_activity_on_progress_change",
)

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


# Report, section 4: the event and timing each function fires on (a row trigger on sync_progress that
# fires). The trigger's name is the migration's choice.
CONTRACT_TRIGGERS = frozenset(
    {
        Trigger("sync_progress", "BEFORE", frozenset({"INSERT", "UPDATE"}), "public.update_sync_progress_elapsed"),
        Trigger("sync_progress", "BEFORE", frozenset({"INSERT", "UPDATE"}), "public.validate_sync_progress_totals"),
        Trigger("sync_progress", "BEFORE", frozenset({"UPDATE"}), "public.update_sync_progress_timestamp"),
        Trigger("sync_progress", "AFTER", frozenset({"UPDATE"}), "public.auto_log_sync_activity_on_progress_change"),
    }
)
# Report, section 5: the labels of sync_status_type that end a job (pending, in_progress and paused do not).
# Finishing a job is what auto_log_sync_activity_on_progress_change() must audit (section 4).
FINISHED_STATUSES = ("completed", "completed_with_errors", "failed", "cancelled", "timeout")


@dataclass(frozen=True)
class Policy:
    """A row-level security policy as pg_policies describes it; expressions as SQL text."""

    table: str
    command: str  # SELECT, INSERT, UPDATE, DELETE
    roles: tuple[str, ...] = ("authenticated",)
    permissive: bool = True
    using: str | None = None
    with_check: str | None = None

    def __str__(self) -> str:
        mode = "" if self.permissive else " AS RESTRICTIVE"
        return (
            f"ON {self.table}{mode} FOR {self.command} TO {', '.join(self.roles)}"
            + (f" USING ({self.using})" if self.using else "")
            + (f" WITH CHECK ({self.with_check})" if self.with_check else "")
        )


# Report, section 2: the 12 policies, by name, table and command. Roles and the text of USING and WITH
# CHECK are the migration's choice, judged by behaviour (task 2) and by the rule that each depends on
# auth.uid() (the caller); our own text is in readiness.schema.design.
POLICIES: dict[str, tuple[str, str]] = {
    f"{prefix}_{command.lower()}": (table, command)
    for table, prefix in (
        ("sync_preview_cache", "preview_cache"),
        ("sync_progress", "sync_progress"),
        ("sync_activity_log", "sync_activity_log"),
    )
    for command in ("SELECT", "INSERT", "UPDATE", "DELETE")
}

# The report's objects by name: what a finding can be about (readiness.verdicts.Issue.about).
OBJECT_NAMES = frozenset((*SYNC_TABLES, *ENUMS, *INDEXES, *FUNCTION_NAMES, *POLICIES))
