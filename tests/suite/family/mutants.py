"""Mutants of the family's variants: each breaks one requirement of the ledger, as another engineer's slip would.

Data for tests/suite/test_family.py. A group's mutants share one nested run: no two touch the same thing,
and each names the check that must catch it, in its task.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.suite.helpers import mutate


@dataclass(frozen=True)
class Mutant:
    """One requirement broken in a variant: the text replaced (in the migration or its rollback), and the check
    of that requirement that must fail, in its task."""

    requirement: str
    old: str
    new: str
    check: str  # the name of the check function that must fail
    task: int
    in_rollback: bool = False
    also: tuple[tuple[str, str, int], ...] = ()  # other (requirement, check, task) it must fail too

    def expected(self) -> list[tuple[str, str, int]]:
        return [(self.requirement, self.check, self.task), *self.also]

    def applied(self, migration: str, rollback: str) -> tuple[str, str]:
        if self.in_rollback:
            return migration, mutate(self.old, self.new, source=rollback)
        return mutate(self.old, self.new, source=migration), rollback


HELPER = "(org_id IN (SELECT sync_private.user_org_ids()))"
# Groups of mutants sharing a run: (the variant they break, the mutants). No two in a group touch one thing.
MUTANTS: dict[str, tuple[str, list[Mutant]]] = {
    "tenants": ("helper_public_ms", [
        Mutant("report.isolation",
               f"FOR UPDATE TO public\n    USING {HELPER}\n    WITH CHECK {HELPER};\nCREATE POLICY preview_cache_delete",
               f"FOR UPDATE TO public\n    USING {HELPER}\n    WITH CHECK ((SELECT auth.uid()) IS NOT NULL);\n"
               "CREATE POLICY preview_cache_delete",
               "test_update_without_where_cannot_move_rows_to_other_organisation", 2),
        Mutant("report.policy-rule", "CREATE POLICY sync_progress_delete ON public.sync_progress\n"
               "    AS PERMISSIVE FOR DELETE", "CREATE POLICY sync_progress_delete ON public.sync_progress\n"
               "    AS PERMISSIVE FOR ALL", "test_policy_definition", 2),
        # service_role bypasses RLS: only a privilege it lacks stops it, the one cause of its checks' refusals
        Mutant("report.policy-privileges", "\nCOMMIT;",
               "\nREVOKE ALL ON public.sync_activity_log FROM service_role;\nCOMMIT;",
               "test_api_roles_hold_what_the_policies_use", 2),
        Mutant("rule.plans", "GRANT EXECUTE ON FUNCTION sync_private.user_org_ids() TO anon, authenticated;\n",
               "GRANT EXECUTE ON FUNCTION sync_private.user_org_ids() TO anon, authenticated;\n"
               "CREATE FUNCTION sync_private.in_org(org uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER "
               "SET search_path = '' AS $f$ SELECT org IN (SELECT sync_private.user_org_ids()) $f$;\n"
               "GRANT EXECUTE ON FUNCTION sync_private.in_org(uuid) TO anon, authenticated;\n",
               "test_org_filter_evaluated_once", 3),
        Mutant("rule.plans", f"CREATE POLICY sync_progress_select ON public.sync_progress\n    AS PERMISSIVE FOR SELECT "
               f"TO public\n    USING {HELPER};", "CREATE POLICY sync_progress_select ON public.sync_progress\n"
               "    AS PERMISSIVE FOR SELECT TO public\n    USING (sync_private.in_org(org_id));",
               "test_org_filter_evaluated_once", 3),
        Mutant("rule.plans", "DROP FUNCTION IF EXISTS sync_private.user_org_ids();\n",
               "DROP FUNCTION IF EXISTS sync_private.in_org(uuid);\nDROP FUNCTION IF EXISTS sync_private.user_org_ids();\n",
               "test_org_filter_evaluated_once", 3, in_rollback=True),
        Mutant("report.trigger-events", "BEFORE INSERT OR UPDATE ON public.sync_progress\n"
               "    FOR EACH ROW EXECUTE FUNCTION public.update_sync_progress_elapsed()",
               "AFTER INSERT OR UPDATE ON public.sync_progress\n"
               "    FOR EACH ROW EXECUTE FUNCTION public.update_sync_progress_elapsed()",
               "test_each_function_fires_on_its_event", 4),
    ]),
    "triggers": ("exists_interval", [
        Mutant("report.elapsed", "NEW.items_per_second := CASE WHEN secs > 0 THEN NEW.processed_items / secs END;",
               "NEW.items_per_second := CASE WHEN secs > 0 THEN NEW.processed_items / 60 END;",
               "test_elapsed_and_speed_follow_the_job", 4),
        Mutant("report.totals", "    IF NEW.processed_items > NEW.total_items THEN\n", "    IF false THEN\n",
               "test_invalid_counts_refused_on_update", 4),
        Mutant("report.totals", "CHECK (total_items IS NULL OR processed_items <= total_items)", "CHECK (true)",
               "test_invalid_counts_refused_on_insert", 4),
        Mutant("report.updated-at", "    NEW.updated_at = CURRENT_TIMESTAMP;", "    NEW.updated_at = OLD.updated_at;",
               "test_updated_at_is_the_time_of_the_update", 4),
        Mutant("report.audit", "        NEW.sync_id,\n        v_action,", "        NULL,\n        v_action,",
               "test_finishing_writes_an_audit_row_its_organisation_alone_reads", 4),
        Mutant("report.cleanup", "DELETE FROM public.sync_preview_cache WHERE expires_at < now();",
               "DELETE FROM public.sync_preview_cache WHERE expires_at < now() + interval '1 day';",
               "test_cleanup_deletes_expired_previews_of_every_organisation", 4),
    ]),
    "schema": ("subquery_identity", [
        Mutant("report.columns", "    org_id uuid NOT NULL,\n    computed_by uuid,", "    org_id uuid,\n"
               "    computed_by uuid,", "test_columns", 1),
        Mutant("report.set-null", "REFERENCES auth.users_extended (id) ON DELETE SET NULL;\nALTER TABLE public.sync_progress",
               "REFERENCES auth.users_extended (id) ON DELETE NO ACTION;\nALTER TABLE public.sync_progress",
               "test_deleting_user_sets_user_column_null_and_keeps_rows", 6),
        Mutant("report.cascade", "sync_activity_log_org_id_fkey\n        FOREIGN KEY (org_id) REFERENCES public.organization "
               "(id) ON DELETE CASCADE", "sync_activity_log_org_id_fkey\n        FOREIGN KEY (org_id) REFERENCES "
               "public.organization (id) ON DELETE RESTRICT",
               "test_deleting_organisation_cascades_to_every_table_and_partition", 6),
        Mutant("report.enums", "ENUM ('woocommerce', 'odoo', 'shopify', 'custom')",
               "ENUM ('odoo', 'woocommerce', 'shopify', 'custom')", "test_enum_labels_in_order", 5),
        Mutant("report.enum-columns", "    action public.sync_action NOT NULL,", "    action text NOT NULL,",
               "test_columns_typed_by_enums", 5),
        Mutant("report.indexes", "sync_activity_log (user_id, created_at DESC)", "sync_activity_log (user_id, created_at)",
               "test_index_definition", 3),
        Mutant("report.partitioned", "    CONSTRAINT sync_activity_log_pkey PRIMARY KEY (id, created_at)\n) PARTITION BY "
               "RANGE (created_at);", "    CONSTRAINT sync_activity_log_pkey PRIMARY KEY (id, created_at)\n);",
               "test_log_is_partitioned", 1),
        Mutant("report.partitioned", "CREATE TABLE public.sync_activity_log_default PARTITION OF "
               "public.sync_activity_log DEFAULT;", "", "test_log_is_partitioned", 1),
        Mutant("report.partitioned", "'CREATE TABLE public.%I PARTITION OF public.sync_activity_log FOR VALUES FROM (%L) "
               "TO (%L)',", "'SELECT %L, %L, %L',", "test_log_is_partitioned", 1),
        Mutant("rule.verbatim", "    secs := greatest(", "    NEW.error_message := trim(NEW.error_message);\n"
               "    secs := greatest(", "test_text_round_trips_verbatim", 6),
        Mutant("rule.splinter", "SECURITY DEFINER\nSET search_path = ''\nAS $$\nDECLARE\n    removed",
               "SECURITY DEFINER\nAS $$\nDECLARE\n    removed", "test_linter_rule_finds_nothing_new", 7),
    ]),
    "rollback": ("helper_quarterly", [
        Mutant("report.rollback", "DROP FUNCTION IF EXISTS sync_private.user_org_ids();\n"
               "DROP SCHEMA IF EXISTS sync_private;\n", "", "test_round_trip_leaves_no_trace", 8, in_rollback=True),
        Mutant("rule.rollback-any-state", "DROP TABLE IF EXISTS public.sync_activity_log;",
               "DROP TABLE public.sync_activity_log;", "test_rollback_when_never_applied", 8, in_rollback=True),
        # An index a CREATE INDEX CONCURRENTLY left invalid, as the catalog shows it: no plan can use it.
        Mutant("rule.indexes-valid", "\nCOMMIT;", "\nUPDATE pg_catalog.pg_index SET indisvalid = false WHERE indexrelid = "
               "'public.idx_sync_progress_org_job'::regclass;\nCOMMIT;", "test_every_index_valid", 3,
               also=(("report.index-performance", "test_query_uses_its_index", 3),)),
        Mutant("rule.squawk", "SET LOCAL lock_timeout = '5s';\n", "", "test_squawk_finds_nothing_blocking", 7),
        Mutant("rule.locks", "\nCOMMIT;", "\nALTER TABLE public.organization ADD COLUMN readiness_flag double precision "
               "NOT NULL DEFAULT random();\nCOMMIT;", "test_no_rewrite_of_existing_table", 7),
        Mutant("rule.locks", "BEGIN;\n", "BEGIN;\nALTER TABLE public.organization DROP COLUMN IF EXISTS "
               "readiness_flag;\n", "test_no_rewrite_of_existing_table", 7, in_rollback=True),
        Mutant("rule.index-limit", "\nCOMMIT;", "\nCREATE FUNCTION public.readiness_short_key() RETURNS trigger "
               "LANGUAGE plpgsql SET search_path = '' AS $f$ BEGIN NEW.cache_key := left(NEW.cache_key, 200); "
               "RETURN NEW; END $f$;\nCREATE TRIGGER readiness_short_key BEFORE INSERT OR UPDATE ON "
               "public.sync_preview_cache FOR EACH ROW EXECUTE FUNCTION public.readiness_short_key();\nCOMMIT;",
               "test_cache_key_longer_than_its_index_allows_is_refused_cleanly", 6),
        Mutant("rule.index-limit", "\nCOMMIT;", "\nDROP FUNCTION IF EXISTS public.readiness_short_key();\nCOMMIT;",
               "test_cache_key_longer_than_its_index_allows_is_refused_cleanly", 6, in_rollback=True),
    ]),
}  # fmt: skip
# Requirements no migration text breaks, and the suite tests that show each caught.
COVERED_ELSEWHERE = {
    "report.prerequisites": "tests/suite/test_target.py::test_production_lookalike_is_blocked_as_in_the_report",
    "report.migration-0023": "tests/suite/test_target.py::test_prerequisites_without_0023_fail_task_1_only",
    "report.no-active-locks": "tests/suite/test_target.py::test_lock_held_on_organization_is_reported_without_hanging",
    "report.server": "tests/suite/test_target.py::test_target_of_another_major_is_refused",
    "report.all-tasks": "tests/suite/test_signoff.py::test_one_task_not_passing_is_not_approved",
    "report.executes": "tests/suite/test_broken_migrations.py::test_syntax_error_is_reported_with_file_and_line",
    "report.tables": "tests/suite/test_root_causes.py::test_empty_migration_names_what_is_missing",
    "report.functions": "tests/suite/test_root_causes.py::test_empty_migration_names_what_is_missing",
    "report.foreign-keys": "tests/suite/test_broken_migrations.py::test_flipped_fk_action_fails_task_1",
    "report.rls-enabled": "tests/suite/test_broken_rls.py::test_partitions_left_open_fail_task_2",
    "report.policies": "tests/suite/test_broken_rls.py::test_missing_policy_is_one_cause",
    "rule.service-role": "tests/suite/test_reach.py::test_tables_deployed_without_grants_are_one_gap_per_role",
    "report.deployed-contract": "tests/suite/test_deployed.py::test_deployed_with_drift_from_the_contract_is_blocked",
    "rule.contained": "tests/suite/test_hostile.py::test_escaping_statements_are_run_nowhere",
}


# --- row-dependent leaks (issue #28): one policy widened by `OR <a condition on the row>` ------------------------

CLAUSE = {"select": "USING (", "insert": "WITH CHECK (", "update": "USING (", "delete": "USING ("}
# Per kind of condition, a condition on each table's own columns: an enum label other than the first, a nullable
# column being NULL, a time. Each command of a table gets a different one, so no leak hides behind another's.
LEAK_CONDITIONS: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "an enum label": {
        "sync_preview_cache": ("sync_type = 'shopify'", "sync_type = 'custom'", "entity_type = 'invoice'",
                               "sync_type = 'odoo'"),
        "sync_progress": ("status = 'failed'", "entity_type = 'order'", "status = 'cancelled'",
                          "status = 'timeout'"),
        "sync_activity_log": ("entity_type = 'invoice'", "action = 'manual_trigger'", "action = 'error_recovery'",
                              "status = 'paused'"),
    },
    "a NULL": {
        "sync_preview_cache": ("computed_by IS NULL", "cache_key IS NULL", "computed_by IS NULL",
                               "cache_key IS NULL"),
        "sync_progress": ("initiated_by IS NULL", "completed_at IS NULL", "initiated_by IS NULL",
                          "completed_at IS NULL"),
        "sync_activity_log": ("user_id IS NULL", "user_id IS NULL", "user_id IS NULL", "user_id IS NULL"),
    },
    "a time": {
        "sync_preview_cache": ("expires_at < now()", "expires_at > now() + interval '7 days'",
                               "computed_at < now() - interval '7 days'", "expires_at < now()"),
        "sync_progress": ("started_at < now() - interval '7 days'", "started_at > now() + interval '7 days'",
                          "started_at < now() - interval '7 days'", "started_at < now() - interval '1 day'"),
        "sync_activity_log": ("created_at < now() - interval '30 days'", "created_at < now() - interval '30 days'",
                              "created_at < now() - interval '30 days'", "created_at < now() - interval '1 day'"),
    },
}  # fmt: skip
# The variant each kind widens: ours (IN a sub-select), EXISTS, and a helper TO public (anon too).
LEAK_BASES = {"an enum label": None, "a NULL": "exists_interval", "a time": "helper_public_ms"}
POLICY_PREFIX = {"sync_preview_cache": "preview_cache", "sync_progress": "sync_progress",
                 "sync_activity_log": "sync_activity_log"}  # fmt: skip


def widened(text: str, policy: str, command: str, condition: str) -> str:
    """`text` with the policy's USING (WITH CHECK for INSERT) widened to `(<expression>) OR <condition>`."""
    start = text.index(f"CREATE POLICY {policy} ")
    clause = text.index(CLAUSE[command], start) + len(CLAUSE[command])
    depth, end = 1, clause
    while depth:
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        end += 1
    return f"{text[:clause]}({text[clause:end - 1]}) OR {condition}{text[end - 1:]}"


def leaks(kind: str, text: str) -> tuple[str, list[tuple[str, str, str, str]]]:
    """`text` with every one of the 12 policies widened by a condition of `kind`; and (table, command, policy,
    condition) of each."""
    made = []
    for table, conditions in LEAK_CONDITIONS[kind].items():
        for command, condition in zip(("select", "insert", "update", "delete"), conditions, strict=True):
            policy = f"{POLICY_PREFIX[table]}_{command}"
            text = widened(text, policy, command, condition)
            made.append((table, command.upper(), policy, condition))
    return text, made
