"""A policy's expression with every name bound to what it means: the row's columns, the relations a sub-select reads,
the functions it calls, a helper function's body with its arguments in place.

PostgreSQL prints a policy with qualified names (readiness.schema.catalog.qualified_names); here each column
reference is bound as PostgreSQL binds it, innermost sub-select first, then the policy's own row, and rewritten so
the later reading needs no scope: a column of the row becomes ROW.<column>, one of a relation a sub-select reads
becomes <schema.table>#<n>.<column> (n tells two readings of one table apart). Function names are qualified by the
schema PostgreSQL resolves them in, and a helper's SQL or single-RETURN PL/pgSQL body can be inlined with the
call's (bound) arguments in place of its parameters.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import pglast
import psycopg
from pglast import ast
from pglast.stream import RawStream

from readiness.rules import reach
from readiness.schema import catalog

ROW = "\x01row"  # the first field of a column reference to the policy's own row
RELATION = "\x02"  # the first field of a column reference to a relation a sub-select reads: \x02schema.table#n|alias

FUNCTION_SCHEMA = (
    "SELECT n.nspname FROM unnest(%s::text[]) WITH ORDINALITY s(nsp, i) JOIN pg_namespace n ON n.nspname = s.nsp "
    "WHERE EXISTS (SELECT FROM pg_proc p WHERE p.pronamespace = n.oid AND p.proname = %s) ORDER BY i LIMIT 1"
)
FUNCTION_BODY = """
SELECT l.lanname, p.prosrc, pg_get_functiondef(p.oid),
       (SELECT substr(s, 13) FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%%'),
       coalesce(p.proargnames, '{}'), p.proretset, format_type(p.prorettype, NULL)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = %s AND p.proname = %s AND p.prokind = 'f' AND p.pronargs = %s
"""


@dataclass(frozen=True)
class Body:
    """A function's body as one SELECT, bound with the call's arguments; `returns` its type, `set` if SETOF."""

    select: ast.SelectStmt
    returns: str
    set: bool


@dataclass
class Binder:
    """Binds expressions in one database: caches what it reads of the catalog."""

    conn: psycopg.Connection
    table: str  # the policy's table, schema-qualified
    _columns: dict[str, frozenset[str] | None] = field(default_factory=dict)
    _counter: itertools.count = field(default_factory=itertools.count)  # type: ignore[type-arg]

    def columns(self, relation: str) -> frozenset[str] | None:
        if relation not in self._columns:
            exists = catalog.relation_exists(self.conn, relation)
            self._columns[relation] = frozenset(catalog.columns(self.conn, relation)) if exists else None
        return self._columns[relation]

    def expression(self, text: str) -> ast.Node | None:
        """The policy expression `text` (as pg_get_expr prints it, names qualified), bound; None if unparsable."""
        try:
            node = pglast.parse_sql(f"SELECT {text}")[0].stmt.targetList[0].val
        except pglast.parser.ParseError:
            return None
        return self._bind(node, [], row=True, params={}, path=["pg_catalog"])

    def function_schema(self, name: str, path: list[str]) -> str | None:
        row = self.conn.execute(FUNCTION_SCHEMA, (path, name)).fetchone()
        return row[0] if row else None

    def body(self, call: ast.FuncCall) -> Body | None:
        """The body of the user function `call` names, as one bound SELECT, or None when it is not one: a SQL
        function of one SELECT, or a PL/pgSQL function whose only statement is RETURN or RETURN QUERY."""
        names = [part.sval for part in call.funcname]
        if len(names) != 2 or names[0] == "pg_catalog":
            return None
        args = list(call.args or ())
        rows = self.conn.execute(FUNCTION_BODY, (names[0], names[1], len(args))).fetchall()
        if len(rows) != 1:
            return None
        language, source, definition, pinned, argnames, returns_set, returns = rows[0]
        text = _body_text(language, source, definition)
        if text is None:
            return None
        try:
            statements = [raw.stmt for raw in pglast.parse_sql(text)]
        except pglast.parser.ParseError:
            statements = reach.parsed_statements(text)
        if len(statements) != 1 or not isinstance(statements[0], ast.SelectStmt):
            return None
        params: dict[object, ast.Node] = {number: arg for number, arg in enumerate(args, 1)}
        params.update({name: arg for name, arg in zip(argnames, args, strict=False) if name})
        path = reach.schemas_of(pinned, names[0])
        select = self._bind(statements[0], [], row=False, params=params, path=path)
        return Body(select, returns, bool(returns_set))

    # --- binding --------------------------------------------------------------------------------------------

    def _bind(self, node, scopes, row, params, path):  # type: ignore[no-untyped-def]
        node = copy.deepcopy(node)
        return self._walk(node, scopes, row, params, path)

    def _walk(self, node, scopes, row, params, path):  # type: ignore[no-untyped-def]
        if isinstance(node, tuple):
            return tuple(self._walk(item, scopes, row, params, path) for item in node)
        if not isinstance(node, ast.Node):
            return node
        if isinstance(node, ast.ColumnRef):
            return self._column(node, scopes, row, params)
        if isinstance(node, ast.ParamRef):
            return copy.deepcopy(params[node.number]) if node.number in params else node
        if isinstance(node, ast.FuncCall):
            names = [part.sval for part in node.funcname]
            if len(names) == 1:
                schema = self.function_schema(names[0], path)
                if schema:
                    node.funcname = (ast.String(sval=schema), ast.String(sval=names[0]))
            node.args = self._walk(node.args, scopes, row, params, path)
            return node
        if isinstance(node, ast.SelectStmt):
            scope = [item for source in node.fromClause or () for item in self._sources(source, scopes, row, params,
                                                                                        path)]  # fmt: skip
            inner = [*scopes, scope]
            for attribute in node.__slots__:
                if attribute != "fromClause":
                    setattr(node, attribute, self._walk(getattr(node, attribute), inner, row, params, path))
            return node
        for attribute in node.__slots__:
            setattr(node, attribute, self._walk(getattr(node, attribute), scopes, row, params, path))
        return node

    def _sources(self, source, scopes, row, params, path):  # type: ignore[no-untyped-def]
        """(token, alias, its columns or None when unknown) for each relation a FROM item brings into scope."""
        if isinstance(source, ast.RangeVar):
            schema = source.schemaname or reach.relation_schema(self.conn, path, source.relname)
            relation = f"{schema}.{source.relname}" if schema else source.relname
            alias = source.alias.aliasname if source.alias else source.relname
            token = f"{RELATION}{relation}#{next(self._counter)}|{alias}"
            return [(token, alias, self.columns(relation) if schema else None)]
        if isinstance(source, ast.JoinExpr):
            items = self._sources(source.larg, scopes, row, params, path)
            items += self._sources(source.rarg, scopes, row, params, path)
            source.quals = self._walk(source.quals, [*scopes, items], row, params, path)
            return items
        if isinstance(source, ast.RangeSubselect):
            source.subquery = self._walk(source.subquery, scopes, row, params, path)
        alias = getattr(getattr(source, "alias", None), "aliasname", None)
        return [(f"{RELATION}?#{next(self._counter)}|{alias}", alias, None)]

    def _column(self, node, scopes, row, params):  # type: ignore[no-untyped-def]
        fields = [getattr(part, "sval", None) for part in node.fields]
        if fields[0] and fields[0][0] in (ROW, RELATION):
            return node  # bound already (an argument put in place)
        *qualifier, name = fields
        if name is None:  # a.*: left as written
            return node
        if not qualifier and name in params:
            return copy.deepcopy(params[name])
        for scope in reversed(scopes):
            for token, alias, columns in scope:
                if qualifier and qualifier[-1] == alias or not qualifier and columns is not None and name in columns:
                    return _ref(token, name)
                if not qualifier and columns is None:
                    return node  # a relation of unknown columns may hold it: unbound, so never read as a pin
        own = self.columns(self.table) or frozenset()
        if row and name in own and (not qualifier or qualifier[-1] == self.table.split(".")[-1]):
            return _ref(ROW, name)
        return node


def _ref(token: str, name: str) -> ast.ColumnRef:
    return ast.ColumnRef(fields=(ast.String(sval=token), ast.String(sval=name)))


def _body_text(language: str, source: str, definition: str) -> str | None:
    if language == "sql":
        return source if source.strip() else reach.atomic_body(definition)
    if language != "plpgsql":
        return None
    try:
        function = pglast.parse_plpgsql(definition)[0]["PLpgSQL_function"]
    except (pglast.parser.ParseError, KeyError, IndexError):
        return None
    body = [s for s in function["action"]["PLpgSQL_stmt_block"].get("body", []) if s != {"PLpgSQL_stmt_return": {}}]
    if len(body) != 1:
        return None
    (kind, statement), = body[0].items()
    if kind == "PLpgSQL_stmt_return" and "expr" in statement:
        return f"SELECT {statement['expr']['PLpgSQL_expr']['query']}"
    if kind == "PLpgSQL_stmt_return_query" and "query" in statement:
        return str(statement["query"]["PLpgSQL_expr"]["query"])
    return None


def relation_of(node: ast.Node) -> tuple[str, str] | None:
    """(schema.table, token) of a bound column reference to a relation a sub-select reads; else None."""
    if not isinstance(node, ast.ColumnRef) or len(node.fields) != 2:
        return None
    token = getattr(node.fields[0], "sval", "") or ""
    if not token.startswith(RELATION):
        return None
    return token[1:].split("#")[0], token.split("|")[0]


def row_column(node: ast.Node) -> str | None:
    """The column of the policy's row a bound reference names; else None."""
    if isinstance(node, ast.ColumnRef) and len(node.fields) == 2 and getattr(node.fields[0], "sval", "") == ROW:
        return node.fields[1].sval  # type: ignore[no-any-return]
    return None


def shown(node: ast.Node) -> str:
    """A bound expression as a DBA reads it: the row's columns bare, a sub-select's by their alias."""
    node = copy.deepcopy(node)

    def unbind(current):  # type: ignore[no-untyped-def]
        if isinstance(current, tuple):
            return tuple(unbind(item) for item in current)
        if not isinstance(current, ast.Node):
            return current
        if isinstance(current, ast.TypeCast) and isinstance(current.arg, ast.A_Const):
            return current.arg  # 'failed'::public.sync_status_type as 'failed': the cast says nothing to a DBA
        if isinstance(current, ast.FuncCall) and current.funcname[0].sval == "pg_catalog":
            current.funcname = current.funcname[1:]
        if isinstance(current, ast.ColumnRef):
            token = getattr(current.fields[0], "sval", "") or ""
            if token == ROW:
                return ast.ColumnRef(fields=current.fields[1:])
            if token.startswith(RELATION):
                return ast.ColumnRef(fields=(ast.String(sval=token.split("|", 1)[1]), *current.fields[1:]))
            return current
        for attribute in current.__slots__:
            setattr(current, attribute, unbind(getattr(current, attribute)))
        return current

    return RawStream()(unbind(node))  # type: ignore[no-any-return]
