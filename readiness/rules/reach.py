"""What a policy's expression reaches, resolved through the catalog: the caller's identity, and the tables it reads.

An expression is read as PostgreSQL prints it with every name schema-qualified (search_path ''), so the
answer is the same whatever the session's search_path. Each function it calls is looked up in pg_proc and
its body followed in turn (SQL and PL/pgSQL bodies parsed by pglast, names in them resolved through the
function's own pinned search_path), so a policy through a SECURITY DEFINER helper, as Supabase's docs
recommend (`org_id IN (SELECT private.user_org_ids())`), reaches what the helper reaches.

It also gathers what the calling role itself must be allowed (`needs`): USAGE on each schema, EXECUTE on each
function, SELECT (or the command's privilege) on each table it reaches as the caller; inside a SECURITY DEFINER
function the owner acts, so what the function reaches is not the caller's to hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pglast
import psycopg
from pglast import ast

from readiness.schema.statements import nodes as _nodes

# The calls that identify the caller: auth.uid() and auth.jwt() (its `sub`), or the JWT claims read directly.
CALLER_FUNCTIONS = {("auth", "uid"), ("auth", "jwt")}
CLAIM_SETTINGS = ("request.jwt.claim",)  # request.jwt.claims and request.jwt.claim.sub both start so
DEPTH_LIMIT = 8  # functions followed into functions; deeper is a loop or a library

FUNCTION_BODIES = """
SELECT p.oid, l.lanname, p.prosrc, pg_get_functiondef(p.oid),
       (SELECT substr(s, 13) FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%%'),
       n.nspname, p.prosecdef, format('%%I.%%I(%%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = ANY (%s) AND p.proname = %s AND p.prokind = 'f'
"""
RELATION_SCHEMA = (
    "SELECT n.nspname FROM unnest(%s::text[]) WITH ORDINALITY s(nsp, i) JOIN pg_namespace n ON "
    "n.nspname = s.nsp JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = %s ORDER BY i LIMIT 1"
)


@dataclass
class Reach:
    """What an expression reaches: whether it asks who calls, the tables it reads, the functions it calls."""

    caller: bool = False
    relations: set[str] = field(default_factory=set)  # schema.table
    functions: set[str] = field(default_factory=set)  # schema.name
    needs: set[Need] = field(default_factory=set)  # what the caller itself must hold


@dataclass(frozen=True, order=True)
class Need:
    """A privilege the calling role must hold: USAGE on a schema, EXECUTE on a function, SELECT on a table."""

    kind: str  # "schema", "function", "table"
    name: str  # schema; schema.function(argument types); schema.table
    privilege: str  # USAGE, EXECUTE, SELECT, INSERT, UPDATE, DELETE


# The privilege a DML statement needs on its target table; every other table a statement names is read.
WRITES = {ast.InsertStmt: "INSERT", ast.UpdateStmt: "UPDATE", ast.DeleteStmt: "DELETE"}


def schemas_of(pinned: str | None, own: str) -> list[str]:
    """The schemas an unqualified name in a function's body is looked up in: its pinned search_path, or, unpinned
    (the caller's path decides), its own schema and public."""
    if pinned is None:
        return ["pg_catalog", own, "public"]
    names = [part.strip().strip('"') for part in pinned.split(",")]
    return ["pg_catalog", *(name for name in names if name and name != "$user")]


def parsed_statements(source: str) -> list[ast.Node]:
    """The parse trees of a SQL text, or of an expression when it is not a statement."""
    for text in (source, f"SELECT {source}"):
        try:
            return [raw.stmt for raw in pglast.parse_sql(text)]
        except pglast.parser.ParseError:
            continue
    return []


def _plpgsql_queries(definition: str) -> list[str]:
    """Every SQL expression and statement of a PL/pgSQL function (pg_get_functiondef's text)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "query" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    try:
        walk(pglast.parse_plpgsql(definition))
    except pglast.parser.ParseError:
        return []
    return found


def _is_claims(call: ast.FuncCall) -> bool:
    """current_setting('request.jwt.claim...'): the JWT read without auth.uid()."""
    name = tuple(part.sval for part in call.funcname)
    if name[-1] != "current_setting" or not call.args:
        return False
    first = call.args[0]
    value = getattr(getattr(first, "val", None), "sval", None)
    return isinstance(value, str) and value.startswith(CLAIM_SETTINGS)


def expression(conn: psycopg.Connection, text: str | None) -> Reach:
    """What a policy expression (printed with qualified names) reaches."""
    reach = Reach()
    if text:
        _follow(conn, parsed_statements(text), ["pg_catalog"], reach, set(), 0, as_caller=True)
    return reach


def trigger_function(conn: psycopg.Connection, schema: str, name: str) -> Reach:
    """What a trigger's function schema.name reaches when it fires, and what the role whose statement fires it
    must hold."""
    reach = Reach()
    into_function(conn, [schema], name, reach, set(), 0, as_caller=True, called=False)
    return reach


def _follow(
    conn: psycopg.Connection,
    trees: list[ast.Node],
    path: list[str],
    reach: Reach,
    seen: set[int],
    depth: int,
    as_caller: bool,
) -> None:
    written = {
        id(tree.relation): privilege
        for tree in _nodes(trees)
        for kind, privilege in WRITES.items()
        if isinstance(tree, kind)
    }
    for node in _nodes(trees):
        if isinstance(node, ast.RangeVar):
            schema = node.schemaname or relation_schema(conn, path, node.relname)
            if schema:
                reach.relations.add(f"{schema}.{node.relname}")
                if as_caller:
                    reach.needs.add(Need("schema", schema, "USAGE"))
                    reach.needs.add(Need("table", f"{schema}.{node.relname}", written.get(id(node), "SELECT")))
        elif isinstance(node, ast.FuncCall):
            name = tuple(part.sval for part in node.funcname)
            if _is_claims(node):
                reach.caller = True
                continue
            schemas = [name[0]] if len(name) == 2 else path
            if any((schema, name[-1]) in CALLER_FUNCTIONS for schema in schemas):
                reach.caller = True
            if depth < DEPTH_LIMIT:
                into_function(conn, schemas, name[-1], reach, seen, depth, as_caller)


def relation_schema(conn: psycopg.Connection, path: list[str], name: str) -> str | None:
    """The schema an unqualified relation `name` resolves to on the search `path`, None when none holds it."""
    row = conn.execute(RELATION_SCHEMA, (path, name)).fetchone()
    return row[0] if row else None


def into_function(
    conn: psycopg.Connection,
    schemas: list[str],
    name: str,
    reach: Reach,
    seen: set[int],
    depth: int,
    as_caller: bool,
    called: bool = True,
) -> None:
    """Follow every user function of that name in `schemas` (overloads too) into its body; `called` False for a
    trigger's function, which PostgreSQL fires without checking the caller's EXECUTE."""
    rows = conn.execute(FUNCTION_BODIES, (schemas, name)).fetchall()
    for oid, language, source, definition, pinned, own, definer, signature in rows:
        if oid in seen or own == "pg_catalog":
            continue
        seen.add(oid)
        if name not in {n for s, n in CALLER_FUNCTIONS if s == own}:
            reach.functions.add(f"{own}.{name}")
        if as_caller and called:
            reach.needs.update((Need("schema", own, "USAGE"), Need("function", signature, "EXECUTE")))
        if language == "sql":
            trees = parsed_statements(source) if source.strip() else parsed_statements(atomic_body(definition))
        elif language == "plpgsql":
            trees = [tree for query in _plpgsql_queries(definition) for tree in parsed_statements(query)]
        else:
            continue
        _follow(conn, trees, schemas_of(pinned, own), reach, seen, depth + 1, as_caller and not definer)


def atomic_body(definition: str) -> str:
    """The statements of a SQL-standard body (BEGIN ATOMIC ... END) as pg_get_functiondef prints it."""
    body = definition.split("BEGIN ATOMIC", 1)[-1].rsplit("END", 1)[0]
    return body
