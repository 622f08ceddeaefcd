"""What a policy's expression reaches, resolved through the catalog: the caller's identity, and the tables it reads.

An expression is read as PostgreSQL prints it with every name schema-qualified (search_path ''), so the
answer is the same whatever the session's search_path. Each function it calls is looked up in pg_proc and
its body followed in turn (SQL and PL/pgSQL bodies parsed by pglast, names in them resolved through the
function's own pinned search_path), so a policy through a SECURITY DEFINER helper, as Supabase's docs
recommend (`org_id IN (SELECT private.user_org_ids())`), reaches what the helper reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pglast
import psycopg
from pglast import ast

# The calls that identify the caller: auth.uid() and auth.jwt() (its `sub`), or the JWT claims read directly.
CALLER_FUNCTIONS = {("auth", "uid"), ("auth", "jwt")}
CLAIM_SETTINGS = ("request.jwt.claim",)  # request.jwt.claims and request.jwt.claim.sub both start so
DEPTH_LIMIT = 8  # functions followed into functions; deeper is a loop or a library

FUNCTION_BODIES = """
SELECT p.oid, l.lanname, p.prosrc, pg_get_functiondef(p.oid),
       (SELECT substr(s, 13) FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%%'),
       n.nspname
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


def _schemas(pinned: str | None, own: str) -> list[str]:
    """The schemas an unqualified name in a function's body is looked up in: its pinned search_path, or, unpinned
    (the caller's path decides), its own schema and public."""
    if pinned is None:
        return ["pg_catalog", own, "public"]
    names = [part.strip().strip('"') for part in pinned.split(",")]
    return ["pg_catalog", *(name for name in names if name and name != "$user")]


def _statements(source: str) -> list[ast.Node]:
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


def _nodes(node: object):  # type: ignore[no-untyped-def]
    if isinstance(node, (tuple, list)):
        for item in node:
            yield from _nodes(item)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    for attribute in node.__slots__:
        yield from _nodes(getattr(node, attribute))


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
        _follow(conn, _statements(text), ["pg_catalog"], reach, set(), 0)
    return reach


def _follow(
    conn: psycopg.Connection, trees: list[ast.Node], path: list[str], reach: Reach, seen: set[int], depth: int
) -> None:
    for node in _nodes(trees):
        if isinstance(node, ast.RangeVar):
            schema = node.schemaname or _relation_schema(conn, path, node.relname)
            if schema:
                reach.relations.add(f"{schema}.{node.relname}")
        elif isinstance(node, ast.FuncCall):
            name = tuple(part.sval for part in node.funcname)
            if _is_claims(node):
                reach.caller = True
                continue
            schemas = [name[0]] if len(name) == 2 else path
            if any((schema, name[-1]) in CALLER_FUNCTIONS for schema in schemas):
                reach.caller = True
            elif depth < DEPTH_LIMIT:
                _into_function(conn, schemas, name[-1], reach, seen, depth)


def _relation_schema(conn: psycopg.Connection, path: list[str], name: str) -> str | None:
    row = conn.execute(RELATION_SCHEMA, (path, name)).fetchone()
    return row[0] if row else None


def _into_function(
    conn: psycopg.Connection, schemas: list[str], name: str, reach: Reach, seen: set[int], depth: int
) -> None:
    """Follow every user function of that name in `schemas` (overloads too) into its body."""
    for oid, language, source, definition, pinned, own in conn.execute(FUNCTION_BODIES, (schemas, name)).fetchall():
        if oid in seen or own == "pg_catalog":
            continue
        seen.add(oid)
        reach.functions.add(f"{own}.{name}")
        if language == "sql":
            trees = _statements(source) if source.strip() else _statements(_atomic_body(definition))
        elif language == "plpgsql":
            trees = [tree for query in _plpgsql_queries(definition) for tree in _statements(query)]
        else:
            continue
        _follow(conn, trees, _schemas(pinned, own), reach, seen, depth + 1)


def _atomic_body(definition: str) -> str:
    """The statements of a SQL-standard body (BEGIN ATOMIC ... END) as pg_get_functiondef prints it."""
    body = definition.split("BEGIN ATOMIC", 1)[-1].rsplit("END", 1)[0]
    return body
