"""What a migration file does beyond its own transaction and its own objects, read before anything runs it.

The gate runs a file it did not write (a pull request's) on its own servers and, within a lock budget, on the
target. PostgreSQL's own parser (pglast) reads every statement, every DO block and every function body the file
defines (PL/pgSQL too, and EXECUTE of a literal string), and sorts what it finds (postgres-facts.md, "Effects a
rollback cannot undo"):

- ESCAPES: an effect no rollback undoes, or one outside the database: COPY ... PROGRAM and server-side files,
  dblink and foreign data wrappers, replication slots, large objects, NOTIFY, advisory locks, sequences advanced
  that the file did not create, ALTER SYSTEM, PREPARE TRANSACTION, VACUUM, CONCURRENTLY, CREATE DATABASE or
  TABLESPACE, LOAD, CHECKPOINT, subscriptions, signals to other sessions. A file with one is never executed, on
  the target, its shadow or the ephemeral server (readiness.schema.apply refuses it): one CRITICAL per statement.
- SCOPE: a change to what 0024 does not own: privileges, owners, policies, triggers or row level security of
  tables it did not create; roles (created, altered, granted; SUPERUSER or BYPASSRLS is CRITICAL) and databases;
  default privileges. Task 7 (the deploy's safety): blocking unless a decision accepts it.
- SPLIT: transaction control that splits the deploy into several transactions. Task 7, blocking.
- UNSEEN: SQL built at run time (EXECUTE of an expression): what it runs is not read; said in the sign-off.
- NOTE: a function of the file's that notifies listeners (NOTIFY, pg_notify: a realtime trigger): said, since it
  runs when called, not at the deploy, and in the gate's runs notifies only the suite's own server.
Role and database settings (ALTER ROLE / DATABASE ... SET) are SCOPE, and the suite does not execute them: they
would change every later session of its own servers, and every check would fail for a cause not the file's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pglast
from pglast import ast
from pglast.enums import ObjectType, TransactionStmtKind

from readiness.schema import statements as apply
from readiness.schema.statements import nodes

ESCAPES, SCOPE, SPLIT, UNSEEN, NOTE = "escapes", "scope", "split", "unseen", "note"
# A function the file defines runs when it is called, not at the deploy: one that notifies (a realtime trigger) only
# notifies listeners of whatever server runs it, the suite's own in the gate's runs. Said, not blocking.
NOTIFYING = ("pg_notify", "NotifyStmt")
# Functions whose effect a rollback does not undo, or that reach outside the database: why, in words.
ESCAPING_FUNCTIONS = {
    **dict.fromkeys(("dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query",
                     "dblink_open"), "connects to a database through dblink, in a transaction of its own"),
    **dict.fromkeys(("pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
                     "pg_copy_physical_replication_slot", "pg_copy_logical_replication_slot",
                     "pg_drop_replication_slot", "pg_replication_slot_advance"),
                    "changes a replication slot, which no rollback undoes"),
    **dict.fromkeys(("lo_import", "lo_export"), "reads or writes a file on the database server's host"),
    **dict.fromkeys(("lo_create", "lo_creat", "lo_unlink", "lo_from_bytea", "lo_put"),
                    "changes a large object, outside 0024's tables"),
    **dict.fromkeys(("pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_file_write",
                     "pg_file_unlink", "pg_file_rename"), "reads or writes the database server's files"),
    "pg_notify": "notifies listeners outside the transaction",
    "pg_logical_emit_message": "writes a message into the WAL for logical decoding",
    **dict.fromkeys(("pg_terminate_backend", "pg_cancel_backend"), "signals another session"),
    **dict.fromkeys(("pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal", "pg_promote", "pg_backup_start",
                     "pg_create_restore_point"), "acts on the whole server"),
    **dict.fromkeys(("pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
                     "pg_try_advisory_lock_shared"), "takes a session lock that outlives the transaction"),
}  # fmt: skip
SEQUENCE_FUNCTIONS = ("nextval", "setval")
OUTSIDE_EXTENSIONS = ("dblink", "postgres_fdw", "file_fdw", "adminpack", "pg_net", "http", "pg_cron")
# Statements whose kind alone escapes: why, in words.
ESCAPING_STATEMENTS = {
    "AlterSystemStmt": "ALTER SYSTEM changes the server's configuration file, outside any transaction",
    "CreatedbStmt": "CREATE DATABASE cannot run in a transaction: it is not rolled back",
    "DropdbStmt": "DROP DATABASE cannot run in a transaction: it is not rolled back",
    "CreateTableSpaceStmt": "CREATE TABLESPACE cannot run in a transaction and writes to the server's disk",
    "DropTableSpaceStmt": "DROP TABLESPACE cannot run in a transaction",
    "NotifyStmt": "NOTIFY reaches listeners outside the transaction",
    "ListenStmt": "LISTEN outlives the transaction",
    "LoadStmt": "LOAD loads a shared library into the server process",
    "CheckPointStmt": "CHECKPOINT acts on the whole server",
    "CreateSubscriptionStmt": "a subscription connects to another server, outside the transaction",
    "AlterSubscriptionStmt": "a subscription connects to another server, outside the transaction",
    "DropSubscriptionStmt": "a subscription's slot lives on another server",
    "CreateForeignServerStmt": "a foreign server reaches another database, outside the transaction",
    "CreateFdwStmt": "a foreign data wrapper reaches outside the database",
    "CreateUserMappingStmt": "a user mapping holds credentials for another server",
    "ImportForeignSchemaStmt": "IMPORT FOREIGN SCHEMA reads another server",
}
ROLE_STATEMENTS = ("CreateRoleStmt", "AlterRoleStmt", "AlterRoleSetStmt", "DropRoleStmt", "GrantRoleStmt")
DANGEROUS_ROLE_OPTIONS = {"superuser": "SUPERUSER", "bypassrls": "BYPASSRLS"}
OWNED_KINDS = {ObjectType.OBJECT_TABLE, ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_FUNCTION,
               ObjectType.OBJECT_SCHEMA, ObjectType.OBJECT_TYPE, ObjectType.OBJECT_VIEW}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """A statement (or what a DO block or function body of it does) beyond 0024's transaction or objects."""

    kind: str  # ESCAPES, SCOPE, SPLIT, UNSEEN or NOTE
    location: apply.Location
    statement: str  # its first line
    why: str
    severity: str  # CRITICAL, HIGH, LOW

    @property
    def message(self) -> str:
        return f"{self.statement}: {self.why}"


def findings(path: Path, migration: Path | None = None) -> tuple[Finding, ...]:
    """What the file at `path` does beyond its transaction and its objects, in file order; for a rollback, the
    objects of the `migration` it rolls back are its own too."""
    owner = None if migration is None or migration == path else migration
    return _read(path, apply.read_sql(path), owner, apply.read_sql(owner) if owner else "")


def escaping(path: Path) -> tuple[Finding, ...]:
    """What in the file escapes its transaction or the database: a file with one is never executed."""
    return tuple(finding for finding in findings(path) if finding.kind == ESCAPES)


def _trees_of(path: Path) -> list[ast.Node]:
    return [tree for statement in apply.split(path) for tree in _trees(statement.text)]


def roles_created(statement: apply.Statement) -> tuple[str, ...]:
    """The roles a statement creates (in a DO block too): cluster-wide, so a second database of the suite's own
    server finds them made by the first apply."""
    return _roles_created(statement.text)


@functools.lru_cache(maxsize=4096)
def _roles_created(text: str) -> tuple[str, ...]:
    if "role" not in text.lower():
        return ()
    made = []
    for tree in _trees(text):
        inner = [nested for body, _ in _bodies(tree) if body for nested in body]
        made += [node.role for node in nodes([tree, *inner]) if isinstance(node, ast.CreateRoleStmt)]
    return tuple(made)


def not_executed(statement: apply.Statement) -> bool:
    """A role's or database's settings: the suite does not run them (they would outlive its transaction on its own
    servers and change every later session); task 7 reports them."""
    return statement.kind in ("AlterRoleSetStmt", "AlterDatabaseSetStmt")


@functools.lru_cache(maxsize=16)
def _read(path: Path, source: str, owner: Path | None, owner_source: str) -> tuple[Finding, ...]:
    """findings() for given texts (the owner's text keys the cache: its objects are the rollback's own)."""
    statements = apply.split(path)
    owned = _trees_of(owner) if owner is not None else []
    created = _created([*owned, *(raw for statement in statements for raw in _trees(statement.text))])
    found: list[Finding] = []
    transaction = [s for s in statements if s.kind == apply.TRANSACTION_CONTROL]
    for statement in statements:
        where = apply.location_of(path, source, statement.offset)

        def add(kind: str, why: str, severity: str = "CRITICAL", at: apply.Location = where,
                first: str = statement.first_line) -> None:  # fmt: skip
            found.append(Finding(kind, at, first, why, severity))

        for tree in _trees(statement.text):
            _judge(tree, created, add, statements, transaction, statement)
            for inner, origin in _bodies(tree):
                if inner is None:
                    add(UNSEEN, f"{origin} builds SQL at run time: what it runs was not read", "LOW")
                    continue
                for nested in inner:
                    _judge(nested, created, add, statements, transaction, statement, inside=origin)
    return tuple(found)


def _trees(text: str) -> list[ast.Node]:
    try:
        return [raw.stmt for raw in pglast.parse_sql(text)]
    except pglast.parser.ParseError:
        return []


def _created(trees: list[ast.Node]) -> set[str]:
    """What the file creates, by schema.name (public when unqualified), its schemas as `schema.*`."""
    made: set[str] = set()
    for tree in trees:
        for node in nodes(tree):
            if isinstance(node, (ast.CreateStmt, ast.CreateSeqStmt, ast.ViewStmt)):
                relation = {ast.ViewStmt: "view", ast.CreateSeqStmt: "sequence"}.get(type(node), "relation")
                relation = getattr(node, relation)
                made.add(_name(relation.schemaname, relation.relname))
                for column in node.tableElts or () if isinstance(node, ast.CreateStmt) else ():
                    if isinstance(column, ast.ColumnDef):  # an identity or serial column's own sequence
                        made.add(_name(relation.schemaname, f"{relation.relname}_{column.colname}_seq"))
            elif isinstance(node, ast.CreateSchemaStmt):
                made.add(f"{node.schemaname}.*")
            elif isinstance(node, ast.CreateFunctionStmt):
                names = [part.sval for part in node.funcname]
                made.add(_name(names[0] if len(names) == 2 else None, names[-1]))
            elif isinstance(node, (ast.CreateEnumStmt, ast.CompositeTypeStmt)):
                names = [part.sval for part in (node.typeName if isinstance(node, ast.CreateEnumStmt)
                                                else (ast.String(sval=node.typevar.relname),))]  # fmt: skip
                made.add(_name(names[0] if len(names) == 2 else None, names[-1]))
    return made


def _name(schema: str | None, name: str) -> str:
    return f"{schema or 'public'}.{name}"


def _owned(created: set[str], schema: str | None, name: str) -> bool:
    """Whether the file created schema.name (or its schema, or, for `*`, the schema itself)."""
    return _name(schema, name) in created or f"{schema or 'public'}.*" in created


def _judge(tree, created, add, statements, transaction, statement, inside: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Add the findings of one parse tree (a statement, or one of a DO block's or a function's body)."""
    kind = type(tree).__name__
    where = f"{inside}: " if inside else ""
    in_function = (inside or "").startswith("function ")
    if in_function and kind in NOTIFYING:
        add(NOTE, where + "NOTIFY reaches the listeners of the server that runs it, at its commit", "LOW")
    elif kind in ESCAPING_STATEMENTS:
        add(ESCAPES, where + ESCAPING_STATEMENTS[kind])
    if isinstance(tree, ast.CopyStmt) and tree.filename is not None:
        add(ESCAPES, where + ("COPY ... PROGRAM runs a shell command on the database server's host" if
                              tree.is_program else "COPY reads or writes a file on the database server's host"))
    if isinstance(tree, ast.VacuumStmt) and tree.is_vacuumcmd:
        add(ESCAPES, where + "VACUUM cannot run in a transaction: it is not rolled back")
    if getattr(tree, "concurrent", False) or isinstance(tree, ast.ReindexStmt) and any(
            option.defname == "concurrently" for option in tree.params or ()):  # fmt: skip
        add(ESCAPES, where + "CONCURRENTLY cannot run in a transaction: what it builds is not rolled back")
    if isinstance(tree, ast.CreateExtensionStmt) and tree.extname in OUTSIDE_EXTENSIONS:
        add(ESCAPES, where + f"the extension {tree.extname} reaches outside the database")
    if isinstance(tree, ast.TransactionStmt) and inside is None:
        _transaction(tree, statement, transaction, add, where)
    for node in nodes(tree):
        if isinstance(node, ast.FuncCall):
            if in_function and node.funcname[-1].sval in NOTIFYING:
                add(NOTE, where + "pg_notify() reaches the listeners of the server that runs it, at its commit", "LOW")
                continue
            _call(node, created, add, where)
    _scope(tree, created, add, where)


def _transaction(tree: ast.TransactionStmt, statement, transaction, add, where: str) -> None:  # type: ignore[no-untyped-def]
    if tree.kind in (TransactionStmtKind.TRANS_STMT_PREPARE, TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED,
                     TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED):  # fmt: skip
        add(ESCAPES, where + "PREPARE TRANSACTION hands the transaction to the server, outside the deploy's control")
        return
    opening = (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START)
    savepoints = (TransactionStmtKind.TRANS_STMT_SAVEPOINT, TransactionStmtKind.TRANS_STMT_RELEASE,
                  TransactionStmtKind.TRANS_STMT_ROLLBACK_TO)  # fmt: skip
    if tree.kind in savepoints:
        return
    first, last = transaction[0] is statement, transaction[-1] is statement
    if (tree.kind in opening and first) or (tree.kind == TransactionStmtKind.TRANS_STMT_COMMIT and last):
        return
    add(SPLIT, where + "transaction control in the middle of the file: the deploy is no longer one transaction, and "
        "a failure after it leaves the database half migrated", "HIGH")


def _call(node: ast.FuncCall, created: set[str], add, where: str) -> None:  # type: ignore[no-untyped-def]
    name = node.funcname[-1].sval
    if name in ESCAPING_FUNCTIONS:
        add(ESCAPES, where + f"{name}() {ESCAPING_FUNCTIONS[name]}")
    elif name in SEQUENCE_FUNCTIONS:
        sequence = _literal(node.args[0]) if node.args else None
        if sequence is None:
            add(ESCAPES, where + f"{name}() of a sequence named at run time: no rollback undoes its advance")
        else:
            schema, _, relname = sequence.rpartition(".")
            if not _owned(created, schema or None, relname.strip('"')):
                add(ESCAPES, where + f"{name}('{sequence}') advances a sequence 0024 did not create: no rollback "
                    "undoes it, and every later value there moves on")


def _scope(tree: ast.Node, created: set[str], add, where: str) -> None:  # type: ignore[no-untyped-def]
    kind = type(tree).__name__
    if kind in ROLE_STATEMENTS:
        options = {option.defname: option for option in getattr(tree, "options", None) or ()}
        dangerous = [label for name, label in DANGEROUS_ROLE_OPTIONS.items() if name in options and getattr(
            options[name].arg, "boolval", True) is not False]  # fmt: skip
        if dangerous:
            add(SCOPE, where + f"gives a role {' and '.join(dangerous)}: it passes every privilege and policy of the "
                "database, and roles outlive the database (cluster-wide)")
        else:
            add(SCOPE, where + "changes a role: roles are cluster-wide, outside 0024's objects", "HIGH")
    elif kind in ("AlterDatabaseStmt", "AlterDatabaseSetStmt"):
        add(SCOPE, where + "changes a database's settings, for every session of it", "HIGH")
    elif kind == "AlterDefaultPrivilegesStmt":
        add(SCOPE, where + "changes the default privileges of objects made later, not 0024's", "HIGH")
    elif isinstance(tree, ast.GrantStmt):
        foreign = _foreign_objects(tree, created)
        if foreign:
            add(SCOPE, where + f"changes the privileges of {', '.join(foreign)}, which 0024 did not create", "HIGH")
    elif isinstance(tree, (ast.CreatePolicyStmt, ast.AlterPolicyStmt, ast.CreateTrigStmt)):
        relation = tree.table if not isinstance(tree, ast.CreateTrigStmt) else tree.relation
        if not _owned(created, relation.schemaname, relation.relname):
            table = _name(relation.schemaname, relation.relname)
            add(SCOPE, where + f"changes who reaches, or what happens to, {table}, which 0024 did not create", "HIGH")
    elif isinstance(tree, ast.AlterTableStmt) and not _owned(created, tree.relation.schemaname, tree.relation.relname):
        settings = {"AT_ChangeOwner": "the owner", "AT_EnableRowSecurity": "the row level security",
                    "AT_DisableRowSecurity": "the row level security", "AT_ForceRowSecurity": "the row level security",
                    "AT_NoForceRowSecurity": "the row level security", "AT_SetRelOptions": "the settings",
                    "AT_ResetRelOptions": "the settings"}  # fmt: skip
        changed = {settings[c.subtype.name] for c in tree.cmds if c.subtype.name in settings}
        if changed:
            table = _name(tree.relation.schemaname, tree.relation.relname)
            add(SCOPE, where + f"changes {', '.join(sorted(changed))} of {table}, which 0024 did not create", "HIGH")
    elif isinstance(tree, ast.AlterOwnerStmt) and not _owned(created, *_object_name(tree.object)):
        add(SCOPE, where + "changes the owner of an object 0024 did not create", "HIGH")


def _foreign_objects(tree: ast.GrantStmt, created: set[str]) -> list[str]:
    """The objects a GRANT or REVOKE names that the file did not create (every object of a schema, for ALL ...)."""
    if tree.targtype.name != "ACL_TARGET_OBJECT":
        return [f"every {tree.objtype.name.removeprefix('OBJECT_').lower()} in a schema"]
    if tree.objtype not in OWNED_KINDS:
        return [f"a {tree.objtype.name.removeprefix('OBJECT_').lower()}"]
    names = []
    for obj in tree.objects or ():
        schema, name = _object_name(obj)
        if not _owned(created, schema, name):
            names.append(f"schema {schema}" if name == "*" else _name(schema, name))
    return names


def _object_name(obj: object) -> tuple[str | None, str]:
    if isinstance(obj, ast.RangeVar):
        return obj.schemaname, obj.relname
    if isinstance(obj, ast.ObjectWithArgs):
        parts = [part.sval for part in obj.objname]
    elif isinstance(obj, ast.String):  # a schema
        return obj.sval, "*"
    elif isinstance(obj, tuple):
        parts = [getattr(part, "sval", "") for part in obj]
    else:
        return None, "?"
    return (parts[0] if len(parts) == 2 else None), parts[-1]


def _literal(node: ast.Node) -> str | None:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    value = getattr(node, "val", None) if isinstance(node, ast.A_Const) else None
    return getattr(value, "sval", None)


def _bodies(tree: ast.Node) -> list[tuple[list[ast.Node] | None, str]]:
    """The statements of a DO block's or a function's body (and of EXECUTE with a literal string), each with where
    it was found; None for SQL built at run time."""
    if isinstance(tree, ast.DoStmt):
        options = {option.defname: option.arg for option in tree.args}
        language = getattr(options.get("language"), "sval", "plpgsql")
        body = getattr(options.get("as"), "sval", "")
        return _body(language, body, "a DO block")
    if isinstance(tree, ast.CreateFunctionStmt):
        options = {option.defname: option.arg for option in tree.options or ()}
        language = getattr(options.get("language"), "sval", "sql")
        name = ".".join(part.sval for part in tree.funcname)
        if tree.sql_body is not None:
            return [([node for node in nodes(tree.sql_body) if isinstance(node, ast.Node)], f"function {name}")]
        body = options.get("as")
        text = body[0].sval if isinstance(body, tuple) and body else getattr(body, "sval", "")
        returns = "trigger" if tree.returnType is not None and tree.returnType.names[-1].sval == "trigger" else "void"
        return _body(language, text, f"function {name}", returns)
    return []


def _body(language: str, text: str, origin: str, returns: str = "void") -> list[tuple[list[ast.Node] | None, str]]:
    if language == "sql":
        return [(_trees(text), origin)]
    if language != "plpgsql":
        return [(None, f"{origin} ({language})")]
    try:
        parsed = pglast.parse_plpgsql(f"CREATE FUNCTION readiness_body() RETURNS {returns} LANGUAGE plpgsql AS "
                                      f"$readiness${text}$readiness$")  # fmt: skip
    except pglast.parser.ParseError:
        return [(None, f"{origin} (its PL/pgSQL could not be parsed)")]
    found: list[tuple[list[ast.Node] | None, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "PLpgSQL_stmt_dynexecute" in node:
                query = node["PLpgSQL_stmt_dynexecute"]["query"]["PLpgSQL_expr"]["query"]
                parsed = _trees(f"SELECT {query}")
                literal = _literal(parsed[0].targetList[0].val) if parsed else None
                found.append((_trees(literal), origin) if literal is not None else (None, f"{origin}: EXECUTE {query}"))
            for key, value in node.items():
                if key == "query" and isinstance(value, str):
                    found.append((_trees(value) or _trees(f"SELECT {value}"), origin))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(parsed)
    return found
