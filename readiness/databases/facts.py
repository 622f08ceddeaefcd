"""What a target has of the platform 0024 is written for: the sign-off lists it, so a DBA sees at once which of
Supabase's facts (docs/verifying-a-database.md, "Supabase and Neon") a block follows from.

Read in the target session's read-only transaction, from the catalog only.
"""

from __future__ import annotations

import psycopg

from readiness.schema import catalog
from readiness.schema.expected import API_ROLES

ROLE = """
SELECT rolname, rolsuper, rolbypassrls, rolinherit, rolcanlogin, rolcreaterole,
       ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1)
FROM pg_roles r WHERE rolname = ANY(%s) ORDER BY rolname
"""
AUTH_SCHEMA = "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'auth'"
UID = """
SELECT l.lanname, p.prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = 'auth'::regnamespace AND p.proname = 'uid' AND p.pronargs = 0
"""
DEFAULT_GRANTEES = """
SELECT DISTINCT pg_get_userbyid(d.defaclrole) || ' -> ' || g.rolname
FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL aclexplode(d.defaclacl) a JOIN pg_roles g ON g.oid = a.grantee
WHERE n.nspname = %s AND d.defaclobjtype = 'r' AND g.rolname = ANY(%s) ORDER BY 1
"""
EVENT_TRIGGERS = "SELECT evtname FROM pg_event_trigger WHERE evtenabled <> 'D' ORDER BY 1"
PLATFORM_ROLES = "SELECT rolname FROM pg_roles WHERE rolname IN ('supabase_admin', 'neon_superuser')"


def _attributes(row: tuple) -> str:  # type: ignore[type-arg]
    name, superuser, bypass, inherit, login, createrole, groups = row
    parts = ["superuser" if superuser else "not a superuser"]
    parts += [word for flag, word in ((bypass, "BYPASSRLS"), (createrole, "CREATEROLE"), (login, "LOGIN")) if flag]
    parts.append("INHERIT" if inherit else "NOINHERIT")
    if groups:
        parts.append("member of " + ", ".join(groups))
    return f"{name}: {' '.join(parts)}"


def of(conn: psycopg.Connection) -> dict[str, str]:
    """The platform facts of the database `conn` is on, each as the sign-off prints it."""
    user = str(catalog.scalar(conn, "SELECT current_user"))
    roles = {row[0]: row for row in conn.execute(ROLE, ([user, *API_ROLES],)).fetchall()}
    platform = {row[0] for row in conn.execute(PLATFORM_ROLES)}
    kind = "Supabase-like" if "supabase_admin" in platform else "Neon-like" if "neon_superuser" in platform else "plain"
    owner = catalog.scalar(conn, AUTH_SCHEMA)
    uid = conn.execute(UID).fetchone() if owner else None
    reads = [claim for claim in ("request.jwt.claim.sub", "request.jwt.claims") if uid and claim in uid[1]]
    grantees = {schema: [row[0] for row in conn.execute(DEFAULT_GRANTEES, (schema, list(API_ROLES)))]
                for schema in ("public", "auth")}  # fmt: skip
    triggers = [row[0] for row in conn.execute(EVENT_TRIGGERS)]
    return {
        "platform (by its roles)": kind,
        "connecting role": _attributes(roles[user]) if user in roles else user,
        "API roles": "; ".join(_attributes(roles[r]) if r in roles else f"{r}: absent" for r in API_ROLES),
        "auth schema": f"owned by {owner}" if owner else "absent (the report's Step 2 makes it)",
        "auth.uid()": (f"{uid[0]}, reads {' then '.join(reads) or 'no JWT claim'}" if uid else "absent"),
        "default table privileges for the API roles": "; ".join(
            f"in {schema}: {', '.join(found) or 'none'}" for schema, found in grantees.items()
        ),
        "event triggers on DDL": ", ".join(triggers) or "none",
    }
