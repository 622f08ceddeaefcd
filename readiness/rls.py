"""The report's RLS rule for a sync table: RLS on, and each command's policy, permissive, depending on the caller.

A table that breaks it (RLS off, a policy missing, of another command or kind, or an expression
without auth.uid()) makes its isolation checks fail: those failures have one cause, the table's,
and the sign-off reports it once (readiness.causes), with the checks that show it.
"""

from __future__ import annotations

import psycopg

from readiness import catalog, expected
from readiness.expected import Policy

# The expression a command is decided by (an UPDATE without WITH CHECK checks new rows with USING).
DECIDED_BY = {"SELECT": ("using",), "DELETE": ("using",), "INSERT": ("with_check",), "UPDATE": ("using",)}


def policy_faults(name: str, policy: Policy | None) -> list[str]:
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
        if expression is not None and "auth.uid()" not in expression:
            faults.append(
                f"policy {name}: its {part.upper().replace('_', ' ')} ({expression}) does not depend on the caller "
                "(auth.uid()): it gives every user the same rows, whoever they are"
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
                broken += policy_faults(name, policies.get(name))
        if broken:
            found[table] = broken
    return found
