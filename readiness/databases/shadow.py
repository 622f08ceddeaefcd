"""A shadow of the target on the suite's own server: the definitions of what 0024 touches, read in one read-only
transaction, so the long work (the behaviour of tasks 2, 4 and 6, task 8's rounds) stalls nobody on the target.

What is copied, with no row: the prerequisites' tables (organization, auth.users_extended) and every table
their keys reach, 0023's tables (the report's Step 3 query), what the target holds of the 0024 under test
(tables with their partitions, types, functions, triggers, policies: drift included), the functions the
schema auth holds and those the copied objects call (defaults, triggers, policies, followed as
readiness.rules.reach follows them), the types their columns use, their schemas, the roles that own them or
hold grants on them (with their attributes, memberships and settings), their grants and the default
privileges of their schemas. Each object is printed by PostgreSQL's own deparsers (pg_get_constraintdef,
pg_get_indexdef, pg_get_triggerdef, pg_get_functiondef, pg_get_expr); only a table's column list is
assembled here, since PostgreSQL has no pg_get_tabledef. pg_dump would copy whole schemas, with every
extension their objects use; the shadow holds what 0024 touches, and says what it left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from readiness.databases.shadow_roles import role_statements
from readiness.rules import reach
from readiness.schema import catalog
from readiness.schema.deployment import TargetState

DATABASE_OWNER = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
PREREQUISITE_TABLES = ("public.organization", "auth.users_extended")
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

# The tables whose definitions are copied: the seeds, every table their foreign keys reference, and the
# partitions of each, read from the catalog (no lock is taken: to_regclass and pg_constraint lock nothing).
CLOSURE = """
WITH RECURSIVE seed(relid) AS (
    SELECT to_regclass(name)::oid FROM unnest(%(seeds)s::text[]) AS s(name) WHERE to_regclass(name) IS NOT NULL
), tables(relid) AS (
    SELECT relid FROM seed
    UNION
    SELECT next.relid FROM tables t CROSS JOIN LATERAL (
        SELECT c.confrelid FROM pg_constraint c WHERE c.conrelid = t.relid AND c.contype = 'f'
        UNION ALL SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = t.relid
    ) AS next(relid)
)
SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relispartition,
       CASE WHEN c.relispartition THEN (SELECT p.oid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                                         WHERE i.inhrelid = c.oid) END,
       pg_get_expr(c.relpartbound, c.oid), CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
       pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity, c.relpersistence::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid IN (SELECT relid FROM tables) AND c.relkind IN ('r', 'p')
ORDER BY c.relispartition, c.oid
"""
COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
       a.attidentity::text, a.attgenerated::text,
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN (SELECT quote_ident(nspname) || '.' || quote_ident(collname) FROM pg_collation k
                  JOIN pg_namespace n ON n.oid = k.collnamespace WHERE k.oid = a.attcollation) END,
       a.atttypid
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
CONSTRAINTS = """
SELECT conname, contype::text, pg_get_constraintdef(oid), confrelid
FROM pg_constraint WHERE conrelid = %s AND conparentid = 0 AND NOT (contype = 'c' AND coninhcount > 0)
  AND contype IN ('p', 'u', 'c', 'x', 'f') ORDER BY contype <> 'p', conname
"""
# Indexes that no constraint makes, and that are not a partition's part of an index of its parent.
INDEXES_SQL = """
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = %s AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
  AND NOT EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
ORDER BY i.indexrelid
"""
TRIGGERS = """
SELECT pg_get_triggerdef(t.oid), t.tgname, t.tgenabled::text, t.tgfoid
FROM pg_trigger t WHERE t.tgrelid = %s AND NOT t.tgisinternal AND t.tgparentid = 0 ORDER BY t.tgname
"""
TABLE_POLICIES_SQL = """
SELECT policyname, permissive, cmd, roles::text[], qual, with_check
FROM pg_policies WHERE schemaname = %s AND tablename = %s ORDER BY policyname
"""
# A privilege per grantee (the grantor is who granted it on the target: here the owner grants it again).
ACL = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
       a.privilege_type, a.is_grantable
FROM aclexplode(%s::aclitem[]) a
"""
RELATION_ACL = "SELECT relacl FROM pg_class WHERE oid = %s"
# Functions a copied object needs: those of schema auth, those triggers and defaults call, and those named.
FUNCTIONS = """
SELECT p.oid, n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid),
       pg_get_userbyid(p.proowner), p.proacl
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  AND (p.oid = ANY (%(oids)s::oid[]) OR n.nspname || '.' || p.proname = ANY (%(names)s::text[])
       OR (n.nspname = 'auth' AND %(auth)s))
ORDER BY n.nspname, p.proname, p.oid
"""
# Sequences the copied tables' defaults name (a serial's), or their columns own; not identity columns' own.
SEQUENCES = """
SELECT DISTINCT s.oid, n.nspname, s.relname, format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
       q.seqmin, q.seqmax, q.seqcycle, pg_get_userbyid(s.relowner), s.relacl,
       (SELECT quote_ident(tn.nspname) || '.' || quote_ident(t.relname) || '.' || quote_ident(a.attname)
        FROM pg_depend o JOIN pg_class t ON t.oid = o.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = o.refobjid AND a.attnum = o.refobjsubid
        WHERE o.classid = 'pg_class'::regclass AND o.objid = s.oid AND o.deptype = 'a')
FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace JOIN pg_sequence q ON q.seqrelid = s.oid
WHERE s.relkind = 'S' AND s.oid IN (
    SELECT d.refobjid FROM pg_attrdef a JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = a.oid
    WHERE d.refclassid = 'pg_class'::regclass AND a.adrelid = ANY (%(tables)s::oid[])
    UNION SELECT d.objid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'a'
    AND d.refobjid = ANY (%(tables)s::oid[]))
"""
# Functions the defaults of the copied tables call (a default's dependencies are in pg_depend).
DEFAULT_FUNCTIONS = """
SELECT DISTINCT d.refobjid FROM pg_attrdef a JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass
  AND d.objid = a.oid AND d.refclassid = 'pg_proc'::regclass
WHERE a.adrelid = ANY (%s::oid[])
"""
# The types the copied columns use (and the report's enums the target holds), with their own definitions.
TYPES = """
SELECT t.oid, n.nspname, t.typname, t.typtype::text,
       ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END, t.typnotnull,
       ARRAY(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.contypid = t.oid),
       pg_get_userbyid(t.typowner), t.typacl
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE (t.oid = ANY (%(oids)s::oid[]) OR n.nspname || '.' || t.typname = ANY (%(names)s::text[]))
  AND t.typtype IN ('e', 'd') AND n.nspname <> ALL (%(system)s)
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
"""
ELEMENT_TYPES = "SELECT coalesce(nullif(typelem, 0), oid) FROM pg_type WHERE oid = ANY (%s::oid[])"
SCHEMAS = """
SELECT n.nspname, pg_get_userbyid(n.nspowner), n.nspacl FROM pg_namespace n
WHERE n.nspname = ANY (%s::text[]) AND n.nspname <> ALL (%s::text[]) ORDER BY n.nspname
"""
DEFAULT_PRIVILEGES = """
SELECT pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype::text, d.defaclacl
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
WHERE n.nspname IS NULL OR n.nspname = ANY (%s::text[])
"""
EXTENSIONS = """
SELECT DISTINCT e.extname, n.nspname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND d.classid = 'pg_proc'::regclass
  AND d.objid = ANY (%s::oid[])
"""
COPIED_ROLES = ("anon", "authenticated", "service_role", "authenticator")
DEFAULT_OBJECT = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}


@dataclass
class Shadow:
    """The target's definitions of what 0024 touches, as statements to run on the suite's own server."""

    roles: list[sql.Composable] = field(default_factory=list)  # cluster-wide: run once, outside the database
    statements: list[sql.Composable] = field(default_factory=list)
    deploying_role: str = ""  # who deploys: the owner of a deployed 0024's tables, else the target's current_user
    database_owner: str = ""  # the target database's owner: the shadow's is the same (public's owner, on PG 15+)
    copied: list[str] = field(default_factory=list)  # schema.table, for the sign-off
    left_out: list[str] = field(default_factory=list)  # what could not be copied, and why


def qualified(name: str) -> str:
    """A name the file creates, with its schema (public when it names none)."""
    return name if "." in name else f"public.{name}"


class Reader:
    """Reads the definitions in the caller's (read-only) transaction, noting the roles and schemas they name."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.roles: set[str] = set(COPIED_ROLES)
        self.schemas: set[str] = {"public"}
        self.types: set[int] = set()
        self.functions: set[int] = set()
        self.function_names: set[str] = set()
        self.owners: dict[str, str] = {}  # schema.table -> its owner

    def grants(self, acl: object, on: sql.Composable) -> list[sql.Composable]:
        """REVOKE ALL ... FROM PUBLIC, then the GRANTs an aclitem[] holds, for the object `on` ('TABLE x'); none for
        a NULL acl (the kind's default privileges)."""
        if acl is None:
            return []
        found: dict[tuple[str, bool], list[str]] = {}
        for grantee, privilege, grantable in self.conn.execute(ACL, (acl,)):
            found.setdefault((grantee, grantable), []).append(privilege)
        statements: list[sql.Composable] = [sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(on)]
        for (grantee, grantable), privileges in found.items():
            if grantee != "PUBLIC":
                self.roles.add(grantee.strip('"'))
            statements.append(sql.SQL("GRANT {} ON {} TO {}{}").format(
                sql.SQL(", ").join(map(sql.SQL, sorted(set(privileges)))), on, sql.SQL(grantee),
                sql.SQL(" WITH GRANT OPTION" if grantable else ""),
            ))  # fmt: skip
        return statements

    def owned(self, kind: str, name: sql.Composable, owner: str) -> sql.Composable:
        self.roles.add(owner)
        return sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), name, sql.Identifier(owner))

    def tables(self, seeds: list[str], shadow: Shadow) -> tuple[list[sql.Composable], list[sql.Composable]]:
        """CREATE TABLE for each table of the closure; then what needs every table there (keys, indexes,
        triggers, RLS, policies, owners, grants)."""
        rows = self.conn.execute(CLOSURE, {"seeds": seeds}).fetchall()
        names = {row[0]: sql.Identifier(row[1], row[2]) for row in rows}
        created: list[sql.Composable] = []
        after: list[sql.Composable] = []
        for oid, schema, name, _, is_partition, parent, bound, key, owner, rls, force, persistence in rows:
            table = names[oid]
            self.owners[f"{schema}.{name}"] = owner
            self.schemas.add(schema)
            shadow.copied.append(f"{schema}.{name}")
            columns = self.conn.execute(COLUMNS, (oid,)).fetchall()
            self.types.update(row[7] for row in columns)
            if is_partition and parent in names:
                created.append(sql.SQL("CREATE TABLE {} PARTITION OF {} {}{}").format(
                    table, names[parent], sql.SQL(bound), sql.SQL(f" PARTITION BY {key}" if key else "")))  # fmt: skip
            else:
                created.append(sql.SQL("CREATE {}TABLE {} ({}){}").format(
                    sql.SQL("UNLOGGED " if persistence == "u" else ""), table,
                    sql.SQL(", ").join(column_definition(row) for row in columns),
                    sql.SQL(f" PARTITION BY {key}" if key else ""),
                ))  # fmt: skip
            for conname, contype, definition, referenced in self.conn.execute(CONSTRAINTS, (oid,)):
                if contype == "f" and referenced not in names:
                    shadow.left_out.append(f"{schema}.{name}: foreign key {conname} (its table is not copied)")
                elif not (is_partition and contype in ("p", "u", "f")):  # a partition gets its parent's keys
                    after.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                        table, sql.Identifier(conname), sql.SQL(definition)))  # fmt: skip
            if not is_partition:  # pg_get_indexdef says ON ONLY for a partitioned table's: made ON it, it covers all
                after += [sql.SQL(definition.replace(" ON ONLY ", " ON ", 1))
                          for (definition,) in self.conn.execute(INDEXES_SQL, (oid,))]  # fmt: skip
            after += self.triggers(oid, table)
            if rls:
                after.append(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
            if force:
                after.append(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table))
            after += self.policies(schema, name, table)
            after.append(self.owned("TABLE", table, owner))
            after += self.grants(catalog.scalar(self.conn, RELATION_ACL, oid), sql.SQL("TABLE {}").format(table))
        self.functions |= {row[0] for row in self.conn.execute(DEFAULT_FUNCTIONS, (list(names),))}
        sequences, owned = self.sequences(list(names))
        return [*sequences, *created], [*owned, *after]

    def sequences(self, tables: list[int]) -> tuple[list[sql.Composable], list[sql.Composable]]:
        """CREATE SEQUENCE for the sequences the tables' defaults name (a serial's), and their OWNED BY."""
        created: list[sql.Composable] = []
        owned: list[sql.Composable] = []
        for _, schema, name, typed, start, increment, low, high, cycle, owner, acl, column in self.conn.execute(
            SEQUENCES, {"tables": tables}
        ).fetchall():
            sequence = sql.Identifier(schema, name)
            self.schemas.add(schema)
            created.append(sql.SQL("CREATE SEQUENCE {} AS {} START {} INCREMENT {} MINVALUE {} MAXVALUE {}{}").format(
                sequence, sql.SQL(typed), start, increment, low, high, sql.SQL(" CYCLE" if cycle else "")))  # fmt: skip
            if column:
                owned.append(sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(sequence, sql.SQL(column)))
            owned += [self.owned("SEQUENCE", sequence, owner),
                      *self.grants(acl, sql.SQL("SEQUENCE {}").format(sequence))]  # fmt: skip
        return created, owned

    def triggers(self, oid: int, table: sql.Composable) -> list[sql.Composable]:
        statements: list[sql.Composable] = []
        for definition, trigger, enabled, function in self.conn.execute(TRIGGERS, (oid,)):
            self.functions.add(function)
            statements.append(sql.SQL(definition))
            if enabled != "O":
                mode = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}[enabled]
                statements.append(sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
                    table, sql.SQL(mode), sql.Identifier(trigger)))  # fmt: skip
        return statements

    def policies(self, schema: str, name: str, table: sql.Composable) -> list[sql.Composable]:
        statements: list[sql.Composable] = []
        for policy, permissive, command, roles, qual, check in self.conn.execute(TABLE_POLICIES_SQL, (schema, name)):
            self.roles.update(role for role in roles if role != "public")
            for expression in (qual, check):
                self.function_names |= reach.expression(self.conn, expression).functions
            statements.append(sql.SQL("CREATE POLICY {} ON {} AS {} FOR {} TO {}{}{}").format(
                sql.Identifier(policy), table, sql.SQL(permissive), sql.SQL(command),
                sql.SQL(", ").join(sql.SQL("PUBLIC") if role == "public" else sql.Identifier(role) for role in roles),
                sql.SQL(f" USING ({qual})" if qual else ""), sql.SQL(f" WITH CHECK ({check})" if check else ""),
            ))  # fmt: skip
        return statements

    def functions_of(self, names: list[str]) -> list[sql.Composable]:
        """Each function the copied objects call, auth's and those named, as pg_get_functiondef prints it."""
        statements: list[sql.Composable] = []
        params = {"oids": sorted(self.functions), "names": sorted({*self.function_names, *names}), "auth": True}
        for _, schema, name, arguments, definition, owner, acl in self.conn.execute(FUNCTIONS, params).fetchall():
            self.schemas.add(schema)
            signature = sql.SQL("FUNCTION {}({})").format(sql.Identifier(schema, name), sql.SQL(arguments))
            statements += [sql.SQL(definition), self.owned("", signature, owner), *self.grants(acl, signature)]
        return statements

    def types_of(self, names: list[str]) -> list[sql.Composable]:
        """The enums and domains the copied columns use, and the report's enums the target holds."""
        elements = [row[0] for row in self.conn.execute(ELEMENT_TYPES, (sorted(self.types),))]
        params = {"oids": elements, "names": names, "system": list(SYSTEM_SCHEMAS)}
        statements: list[sql.Composable] = []
        for _, schema, name, kind, labels, base, not_null, checks, owner, acl in self.conn.execute(TYPES, params):
            self.schemas.add(schema)
            qualified_name = sql.Identifier(schema, name)
            if kind == "e":
                statements.append(sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
                    qualified_name, sql.SQL(", ").join(map(sql.Literal, labels))))  # fmt: skip
            else:
                statements.append(sql.SQL("CREATE DOMAIN {} AS {}{} {}").format(
                    qualified_name, sql.SQL(base), sql.SQL(" NOT NULL" if not_null else ""),
                    sql.SQL(" ".join(checks))))  # fmt: skip
            statements += [self.owned("TYPE", qualified_name, owner),
                           *self.grants(acl, sql.SQL("TYPE {}").format(qualified_name))]  # fmt: skip
        return statements

    def schemas_and_defaults(self) -> tuple[list[sql.Composable], list[sql.Composable]]:
        """CREATE SCHEMA for each schema named, with its owner and grants; then their default privileges."""
        statements: list[sql.Composable] = []
        rows = self.conn.execute(SCHEMAS, (sorted(self.schemas), list(SYSTEM_SCHEMAS))).fetchall()
        for name, owner, acl in rows:
            schema = sql.Identifier(name)
            statements.append(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            statements += [self.owned("SCHEMA", schema, owner), *self.grants(acl, sql.SQL("SCHEMA {}").format(schema))]
        defaults: list[sql.Composable] = []
        for role, schema, kind, acl in self.conn.execute(DEFAULT_PRIVILEGES, (sorted(self.schemas),)).fetchall():
            self.roles.add(role)
            for grantee, privilege, grantable in self.conn.execute(ACL, (acl,)).fetchall():
                if grantee != "PUBLIC":
                    self.roles.add(grantee.strip('"'))
                defaults.append(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} GRANT {} ON {} TO {}{}").format(
                    sql.Identifier(role), sql.SQL(" IN SCHEMA ") + sql.Identifier(schema) if schema else sql.SQL(""),
                    sql.SQL(privilege), sql.SQL(DEFAULT_OBJECT[kind]), sql.SQL(grantee),
                    sql.SQL(" WITH GRANT OPTION" if grantable else ""),
                ))  # fmt: skip
        return statements, defaults


def read(conn: psycopg.Connection, held: TargetState, infrastructure: list[str]) -> Shadow:
    """The shadow of the target: what 0024 touches, read in the caller's (read-only) transaction."""
    shadow = Shadow(
        deploying_role=str(catalog.scalar(conn, "SELECT current_user")),
        database_owner=str(catalog.scalar(conn, DATABASE_OWNER)),
    )
    reader = Reader(conn)
    reader.roles.update((shadow.deploying_role, shadow.database_owner))
    held_named = {kind: [qualified(obj.name) for obj in held.existing if obj.kind == kind] for kind in
                  ("table", "function", "type")}  # fmt: skip
    seeds = [*PREREQUISITE_TABLES, *(f"public.{name}" for name in infrastructure), *held_named["table"]]
    with catalog.qualified_names(conn):  # every expression printed schema-qualified: the shadow's path is ours
        created, after = reader.tables(seeds, shadow)
        deployed = [reader.owners[name] for name in held_named["table"] if name in reader.owners]
        if deployed:  # 0024 is there: whoever owns its tables deployed it, and the file is rebuilt as that role
            shadow.deploying_role = deployed[0]
            reader.roles.add(deployed[0])
        functions = reader.functions_of(held_named["function"])
        extensions = conn.execute(EXTENSIONS, (sorted(reader.functions),)).fetchall()
        types = reader.types_of(held_named["type"])
        schemas, defaults = reader.schemas_and_defaults()
        shadow.roles = role_statements(conn, sorted(reader.roles))
    shadow.statements = [
        *schemas,
        *(
            sql.SQL("CREATE EXTENSION IF NOT EXISTS {} SCHEMA {}").format(sql.Identifier(name), sql.Identifier(schema))
            for name, schema in extensions
        ),  # fmt: skip
        *types,
        *functions,
        *created,
        *after,
        *defaults,
    ]
    return shadow


def column_definition(row: tuple) -> sql.Composable:  # type: ignore[type-arg]
    """One column of CREATE TABLE, from pg_attribute as COLUMNS reads it."""
    name, typed, not_null, default, identity, generated, collation, _ = row
    parts = [sql.Identifier(name), sql.SQL(typed)]
    if collation:
        parts.append(sql.SQL(f"COLLATE {collation}"))
    if generated == "s":
        parts.append(sql.SQL(f"GENERATED ALWAYS AS ({default}) STORED"))
    elif identity:
        parts.append(sql.SQL("GENERATED ALWAYS AS IDENTITY" if identity == "a" else "GENERATED BY DEFAULT AS IDENTITY"))
    elif default is not None:
        parts.append(sql.SQL(f"DEFAULT {default}"))
    if not_null:
        parts.append(sql.SQL("NOT NULL"))
    return sql.SQL(" ").join(parts)
