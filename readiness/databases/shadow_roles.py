"""The roles a shadow needs, as the target has them: attributes, settings and memberships among them.

Roles are cluster-wide: these statements run once on the suite's server, outside the shadow's databases.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

# Roles: attributes, memberships among them, and settings (a statement_timeout anon logs in with, say).
ROLE_ATTRIBUTES_SQL = """
SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolbypassrls,
       r.rolconfig
FROM pg_roles r WHERE r.rolname = ANY (%s::text[]) ORDER BY r.rolname
"""
MEMBERSHIPS = """
SELECT g.rolname, m.rolname FROM pg_auth_members a
JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
WHERE g.rolname = ANY (%(roles)s::text[]) AND m.rolname = ANY (%(roles)s::text[])
"""


# Settings whose value is a list (as pg_dump's variable_is_guc_list_quote knows them): replayed an element a
# literal, since one literal would be one element ('"$user", public' a schema of that name).
LIST_SETTINGS = {"search_path", "temp_tablespaces", "local_preload_libraries", "session_preload_libraries"}


def guc_list(value: str) -> list[str]:
    """The elements of a list setting as pg_db_role_setting holds it ('"$user", public'), double quotes undone."""
    elements, current, quoted, index = [], "", False, 0
    while index < len(value):
        char = value[index]
        if quoted and char == '"' and value[index + 1 : index + 2] == '"':
            current, index = current + '"', index + 2  # a doubled quote inside quotes is one quote
            continue
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            elements, current = [*elements, current.strip()], ""
        else:
            current += char
        index += 1
    return [element for element in [*elements, current.strip()] if element] or [""]


def role_statements(conn: psycopg.Connection, names: list[str]) -> list[sql.Composable]:
    """CREATE ROLE for each role the shadow needs (if missing on the suite's server), its attributes, settings and
    memberships among them, as the target has them."""
    statements: list[sql.Composable] = []
    rows = conn.execute(ROLE_ATTRIBUTES_SQL, (names,)).fetchall()
    for name, superuser, inherit, createrole, createdb, login, bypassrls, config in rows:
        if name.startswith("pg_"):
            continue  # PostgreSQL's predefined roles: on every server already
        attributes = " ".join([
            "SUPERUSER" if superuser else "NOSUPERUSER", "INHERIT" if inherit else "NOINHERIT",
            "CREATEROLE" if createrole else "NOCREATEROLE", "CREATEDB" if createdb else "NOCREATEDB",
            "LOGIN" if login else "NOLOGIN", "BYPASSRLS" if bypassrls else "NOBYPASSRLS",
        ])  # fmt: skip
        # The suite's own superuser (often postgres, as on the target) stays as it is: the server needs it.
        statements.append(sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN "
            "EXECUTE format('CREATE ROLE %I', {name}); END IF; "
            "IF {name} <> current_user THEN EXECUTE format('ALTER ROLE %I {attributes}', {name}); END IF; END $$"
        ).format(name=sql.Literal(name), attributes=sql.SQL(attributes)))  # fmt: skip
        for setting in config or []:
            key, _, value = setting.partition("=")
            values = sql.SQL(", ").join(map(sql.Literal, guc_list(value) if key in LIST_SETTINGS else [value]))
            statements.append(sql.SQL("ALTER ROLE {} SET {} = {}").format(
                sql.Identifier(name), sql.Identifier(key), values))  # fmt: skip
    for group, member in conn.execute(MEMBERSHIPS, {"roles": names}):
        statements.append(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(member)))
    return statements
