"""The report's RLS rule for a sync table: RLS on, and each command's policy, permissive, deciding by the caller.

Report, section 2 and the Root Cause Analysis: "All 12 RLS policies reference auth.users_extended",
"auth.uid() context function requires Supabase auth setup". So each expression that decides a policy
reaches the caller's identity (auth.uid(), or the JWT's claims) and the user-org mapping auth.users_extended,
as the catalog resolves it, through the functions it calls too (readiness.rules.reach): a SECURITY DEFINER helper
is followed into its body. A table that breaks the rule makes its isolation checks fail: those failures
have one cause, the table's, and the sign-off reports it once (readiness.rules.causes), with the checks that show it.
"""

from __future__ import annotations

import psycopg

from readiness.rules import reach
from readiness.schema import catalog, expected
from readiness.schema.expected import Policy

# The expression a command is decided by (an UPDATE without WITH CHECK checks new rows with USING).
DECIDED_BY = {"SELECT": ("using",), "DELETE": ("using",), "INSERT": ("with_check",), "UPDATE": ("using",)}
MAPPING = "auth.users_extended"


def policy_faults(conn: psycopg.Connection, name: str, policy: Policy | None) -> list[str]:
    """How the report's policy `name` breaks the rule; [] when it follows it."""
    if policy is None:
        return [f"policy {name} does not exist"]
    command = expected.POLICIES[name][1]
    if (policy.command, policy.permissive) != (command, True):
        kind = "PERMISSIVE" if policy.permissive else "RESTRICTIVE"
        return [f"policy {name}: expected a PERMISSIVE policy FOR {command}, found {policy.command} {kind}"]
    faults = [
        f"policy {name} FOR {command} has no {part.upper().replace('_', ' ')}"
        for part in DECIDED_BY[command]
        if not getattr(policy, part)
    ]
    for part in ("using", "with_check"):
        expression = getattr(policy, part)
        if expression is None:
            continue
        found = reach.expression(conn, expression)
        clause = part.upper().replace("_", " ")
        if not found.caller:
            faults.append(
                f"policy {name}: its {clause} ({expression}) does not depend on the caller (it reaches neither "
                "auth.uid() nor the JWT's claims): it gives every user the same rows, whoever they are"
            )
        elif MAPPING not in found.relations:
            faults.append(
                f"policy {name}: its {clause} ({expression}) does not read the user-org mapping {MAPPING}, which the "
                "report's policies decide by"
            )
    return faults


def faults(conn: psycopg.Connection, tables: list[str]) -> dict[str, list[str]]:
    """Each of `tables` whose RLS breaks the rule, with how (RLS off, its policies)."""
    policies = catalog.policies(conn, tables)
    found: dict[str, list[str]] = {}
    for table in tables:
        broken = [] if catalog.rls_enabled(conn, table) else [f"RLS is not enabled on {table}"]
        for name, (of_table, _) in sorted(expected.POLICIES.items()):
            if of_table == table:
                broken += policy_faults(conn, name, policies.get(name))
        if broken:
            found[table] = broken
    return found
