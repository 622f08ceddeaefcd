"""Isolation proven from the policies' structure: every row they let through is of the caller's organisations.

The report's isolation requirement is an upper bound ("User can only access records for their org_id"). For a
command and a role subject to RLS, PostgreSQL lets a row through when one PERMISSIVE policy's expression holds and
every RESTRICTIVE one's does (postgres-facts.md). Each expression, bound (readiness.rules.bind), is put in
disjunctive form: NOT pushed inward, CASE, COALESCE and IN lists expanded, SQL and single-RETURN PL/pgSQL helpers
inlined with their arguments. A disjunct (a conjunction of conditions) is safe when one of its conditions pins the
row's org_id to the organisations auth.users_extended maps the caller to, or is constant false:

    org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = auth.uid() [AND ...])
    org_id = (SELECT ...the same...)            org_id = ANY (ARRAY(SELECT ...) or a helper returning them)
    EXISTS (SELECT FROM auth.users_extended ue WHERE ue.id = auth.uid() AND ue.org_id = <row>.org_id [AND ...])

where the caller is auth.uid(), or the JWT's sub (auth.jwt() ->> 'sub', the request.jwt.claim(s) settings), and
every disjunct of the sub-select's WHERE asks for it. A condition that reaches the caller, the mapping and the
row's org_id in a way not read here is undecided: never approved on that alone, the behaviour checks decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import psycopg
from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, BoolTestType, SubLinkType
from psycopg import sql

from readiness.rules import reach
from readiness.rules.bind import Binder, relation_of, row_column, shown
from readiness.schema import statements

MAPPING = "auth.users_extended"
ORG, USER_KEY = "org_id", "id"
MAX_DISJUNCTS = 256  # beyond, the expression is undecided rather than expanded further
MAX_INLINING = 6
PINNED, FALSE, OPEN, UNDECIDED, BY_CLAIMS = "pinned", "false", "open", "undecided", "claims"
CLAIMS = ("request.jwt.claim.sub", "request.jwt.claims", "request.jwt.claim")


@dataclass(frozen=True)
class Condition:
    """One condition of a disjunct: a bound expression, negated or not, and how it bears on isolation."""

    node: ast.Node
    negated: bool = False
    kind: str = OPEN

    @property
    def text(self) -> str:
        return f"NOT ({shown(self.node)})" if self.negated else shown(self.node)


Disjunct = tuple[Condition, ...]


def verdict(disjunct: Disjunct) -> str:
    """PINNED or FALSE when a condition keeps the disjunct to the caller's organisations (or to nothing), else
    UNDECIDED when one might, else BY_CLAIMS when one pins org_id otherwise than by the mapping, else OPEN."""
    kinds = {condition.kind for condition in disjunct}
    for kind in (FALSE, PINNED, UNDECIDED, BY_CLAIMS):
        if kind in kinds:
            return kind
    return OPEN


class Reader:
    """Puts a table's policy expressions in disjunctive form and judges each condition."""

    def __init__(self, conn: psycopg.Connection, table: str) -> None:
        self.conn, self.binder = conn, Binder(conn, table)

    def disjuncts(self, text: str | None) -> list[Disjunct] | None:
        """The disjuncts of a policy expression; None for no expression."""
        if text is None:
            return None
        node = self.binder.expression(text)
        if node is None:
            return [(Condition(ast.A_Const(isnull=True), kind=UNDECIDED),)]
        return [tuple(self._judged(c) for c in d) for d in self._dnf(node, False, 0)]

    # --- disjunctive form -----------------------------------------------------------------------------------

    def _dnf(self, node: ast.Node, negated: bool, depth: int) -> list[Disjunct]:
        node = _unwrapped(node)
        if isinstance(node, ast.BoolExpr):
            if node.boolop == BoolExprType.NOT_EXPR:
                return self._dnf(node.args[0], not negated, depth)
            parts = [self._dnf(arg, negated, depth) for arg in node.args]
            conjunction = (node.boolop == BoolExprType.AND_EXPR) != negated
            return _and(parts) if conjunction else _or(parts)
        if isinstance(node, ast.A_Const) and (node.isnull or isinstance(node.val, ast.Boolean)):
            holds = not node.isnull and node.val.boolval != negated
            return [()] if holds else [(Condition(node, negated, FALSE),)]
        if isinstance(node, ast.CaseExpr) and node.arg is None:
            return self._case(node, negated, depth)
        if isinstance(node, ast.CoalesceExpr) and not negated:
            return _or([self._dnf(arg, False, depth) for arg in node.args])
        if isinstance(node, ast.BooleanTest) and node.booltesttype == BoolTestType.IS_TRUE and not negated:
            return self._dnf(node.arg, False, depth)
        items = _listed(node)
        if items is not None:  # x IN (a, b), x = ANY (ARRAY[a, b]) is x = a OR x = b; NOT IN, <> ALL the converse
            equal = node.name[0].sval == "="
            parts = [self._dnf(ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="=" if equal else "<>"),),
                                          lexpr=node.lexpr, rexpr=item), negated, depth) for item in items]
            return _or(parts) if equal != negated else _and(parts)
        if isinstance(node, ast.FuncCall) and depth < MAX_INLINING:
            body = self.binder.body(node)
            if body is not None and body.returns == "boolean" and not body.set:
                inlined = _single_value(body.select)
                if inlined is not None:
                    return self._dnf(inlined, negated, depth + 1)
        return [(Condition(node, negated),)]

    def _case(self, node: ast.CaseExpr, negated: bool, depth: int) -> list[Disjunct]:
        """CASE WHEN c1 THEN r1 ... ELSE e: r1 where c1 holds, r2 where c1 does not and c2 does, ..."""
        branches, before = [], []
        for when in node.args:
            branches.append(_and([*(self._dnf(c, True, depth) for c in before), self._dnf(when.expr, False, depth),
                                  self._dnf(when.result, negated, depth)]))  # fmt: skip
            before.append(when.expr)
        default = node.defresult if node.defresult is not None else ast.A_Const(isnull=True)
        branches.append(_and([*(self._dnf(c, True, depth) for c in before), self._dnf(default, negated, depth)]))
        return _or(branches)

    # --- judging a condition --------------------------------------------------------------------------------

    def _judged(self, condition: Condition) -> Condition:
        if condition.kind == FALSE:
            return condition
        shape = self._pins(condition.node, 0)
        if shape is not None:  # a shape read here: it pins, or it is read as opening rows (negated, or not asking)
            return Condition(condition.node, condition.negated, PINNED if shape and not condition.negated else OPEN)
        if self._constant_false(condition):
            return Condition(condition.node, condition.negated, FALSE)
        row_org, caller, mapping = self._mentions(condition.node)
        kind = OPEN
        if row_org and caller:
            kind = UNDECIDED if mapping else BY_CLAIMS
        return Condition(condition.node, condition.negated, kind)

    def _pins(self, node: ast.Node, depth: int) -> bool | None:
        """Whether `node` holds only for rows whose org_id is one of the caller's organisations: True, False for a
        shape read here that does not, None for a shape not read here."""
        node = _unwrapped(node)
        if isinstance(node, ast.SubLink):
            if node.subLinkType == SubLinkType.ANY_SUBLINK and _is_row_org(node.testexpr) and _is_eq(node.operName):
                return self._organisations(node.subselect, depth)
            if node.subLinkType == SubLinkType.EXISTS_SUBLINK:
                return self._exists_pins(node.subselect)
        if isinstance(node, ast.A_Expr) and _is_eq(node.name):
            if node.kind == A_Expr_Kind.AEXPR_OP and _is_row_org(node.rexpr):
                return self._org_value(node.lexpr, depth)
            if node.kind in (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_OP_ANY) and _is_row_org(node.lexpr):
                return self._org_value(node.rexpr, depth)
        return None

    def _org_value(self, node: ast.Node, depth: int) -> bool | None:
        """Whether a value (a scalar, an array, a set) holds only organisations of the caller (None: not read)."""
        node = _stripped(node)
        if isinstance(node, ast.SubLink) and node.subLinkType in (SubLinkType.EXPR_SUBLINK, SubLinkType.ARRAY_SUBLINK):
            return self._organisations(node.subselect, depth)
        if isinstance(node, ast.FuncCall) and depth < MAX_INLINING:
            body = self.binder.body(node)
            return None if body is None else self._organisations(body.select, depth + 1)
        return None

    def _organisations(self, select: ast.Node, depth: int) -> bool | None:
        """Whether a SELECT returns only organisations auth.users_extended maps the caller to (None: not read)."""
        if not isinstance(select, ast.SelectStmt) or select.op != 0 or len(select.targetList or ()) != 1:
            return None
        target = _stripped(select.targetList[0].val)
        if isinstance(target, ast.FuncCall) and [p.sval for p in target.funcname][-1] in ("array_agg", "unnest") \
                and len(target.args or ()) == 1:  # fmt: skip
            target = _stripped(target.args[0])
        if not select.fromClause:
            return self._org_value(target, depth)
        found = relation_of(target)
        if found is None or found[0] != MAPPING:
            return None
        if target.fields[1].sval != ORG:
            return False  # another column of the mapping (its id): not an organisation
        return self._every_disjunct_asks(select.whereClause, found[1], require_row=False)

    def _exists_pins(self, select: ast.Node) -> bool | None:
        """EXISTS (SELECT FROM auth.users_extended u WHERE u.id = <caller> AND u.org_id = <row>.org_id ...)."""
        if not isinstance(select, ast.SelectStmt) or select.op != 0:
            return None
        tokens = {found[1] for node in statements.nodes(select.whereClause) if (found := relation_of(node))
                  and found[0] == MAPPING}  # fmt: skip
        if not tokens:
            return None
        return any(self._every_disjunct_asks(select.whereClause, token, require_row=True) for token in tokens)

    def _every_disjunct_asks(self, where: ast.Node | None, token: str, require_row: bool) -> bool:
        """Every disjunct of a sub-select's WHERE has <token>.id = the caller (and <token>.org_id = <row>.org_id)."""
        if where is None:
            return False
        for disjunct in self._dnf(where, False, MAX_INLINING):
            conditions = [c.node for c in disjunct if not c.negated]
            if not any(self._names(c, token, USER_KEY, self._is_caller) for c in conditions):
                return False
            if require_row and not any(self._names(c, token, ORG, _is_row_org) for c in conditions):
                return False
        return True

    def _names(self, node: ast.Node, token: str, column: str, other) -> bool:  # type: ignore[no-untyped-def]
        """Whether `node` is <token>.<column> = X (either way round) with other(X)."""
        node = _unwrapped(node)
        if not (isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and _is_eq(node.name)):
            return False
        for side, value in ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr)):
            found = relation_of(_stripped(side))
            if found and found[1] == token and _stripped(side).fields[1].sval == column and other(value):
                return True
        return False

    def _is_caller(self, node: ast.Node, depth: int = 0) -> bool:
        """auth.uid(), the JWT's sub, or a helper returning one of them."""
        node = _stripped(node)
        if isinstance(node, ast.FuncCall):
            name = tuple(part.sval for part in node.funcname)
            if name == ("auth", "uid") or name[-1] == "nullif" and self._is_caller(node.args[0], depth):
                return True
            if name[-1] == "current_setting" and _claim(node) == "request.jwt.claim.sub":
                return True
            body = self.binder.body(node) if depth < MAX_INLINING else None
            inlined = _single_value(body.select) if body is not None else None
            return inlined is not None and self._is_caller(inlined, depth + 1)
        if isinstance(node, ast.A_Expr) and node.name[0].sval == "->>" and _text(node.rexpr) == "sub":
            claims = _stripped(node.lexpr)
            if isinstance(claims, ast.FuncCall) and [p.sval for p in claims.funcname][-1] == "nullif":
                claims = _stripped(claims.args[0])
            name = tuple(p.sval for p in claims.funcname) if isinstance(claims, ast.FuncCall) else ()
            return name == ("auth", "jwt") or name[-1:] == ("current_setting",) and _claim(claims) in CLAIMS
        return False

    def _constant_false(self, condition: Condition) -> bool:
        """A condition of constants alone (1 = 0) that PostgreSQL evaluates to false or NULL."""
        if any(isinstance(n, (ast.ColumnRef, ast.FuncCall, ast.SubLink, ast.ParamRef)) for n in statements.nodes(
                condition.node)):  # fmt: skip
            return False
        query = sql.SQL("SELECT ({})::boolean").format(sql.SQL(condition.text))  # constants and operators only
        try:
            with self.conn.transaction():
                value = self.conn.execute(query).fetchone()
        except psycopg.Error:
            return False
        return value is not None and value[0] is not True

    def _mentions(self, node: ast.Node) -> tuple[bool, bool, bool]:
        """Whether a condition reads the row's org_id, the caller and auth.users_extended (through functions too)."""
        row_org = caller = mapping = False
        for current in statements.nodes(node):
            row_org |= row_column(current) == ORG
            found = relation_of(current)
            mapping |= bool(found) and found[0] == MAPPING  # type: ignore[index]
            if isinstance(current, ast.FuncCall):
                name = tuple(part.sval for part in current.funcname)
                caller |= name in reach.CALLER_FUNCTIONS or name[-1] == "current_setting" and _claim(current) in CLAIMS
                if len(name) == 2 and name[0] != "pg_catalog":
                    found_reach = reach.Reach()
                    reach.into_function(self.conn, [name[0]], name[1], found_reach, set(), 0, as_caller=False)
                    caller |= found_reach.caller
                    mapping |= MAPPING in found_reach.relations
        return row_org, caller, mapping


# --- helpers ------------------------------------------------------------------------------------------------


def _and(parts: list[list[Disjunct]]) -> list[Disjunct]:
    result: list[Disjunct] = [()]
    for part in parts:
        result = [left + right for left, right in product(result, part)]
        if len(result) > MAX_DISJUNCTS:
            return [(Condition(ast.A_Const(isnull=True), kind=UNDECIDED),)]
    return result


def _or(parts: list[list[Disjunct]]) -> list[Disjunct]:
    result = [disjunct for part in parts for disjunct in part]
    return result if len(result) <= MAX_DISJUNCTS else [(Condition(ast.A_Const(isnull=True), kind=UNDECIDED),)]


def _unwrapped(node: ast.Node) -> ast.Node:
    """`(SELECT x)` without FROM as x: PostgreSQL's InitPlan wrapper changes when, not what, it evaluates."""
    while (isinstance(node, ast.SubLink) and node.subLinkType == SubLinkType.EXPR_SUBLINK
           and (inner := _single_value(node.subselect)) is not None):  # fmt: skip
        node = inner
    return node


def _stripped(node: ast.Node) -> ast.Node:
    """Without casts and `(SELECT x)` wrappers."""
    while True:
        if isinstance(node, ast.TypeCast):
            node = node.arg
        elif isinstance(node, ast.SubLink) and node.subLinkType == SubLinkType.EXPR_SUBLINK and (
                inner := _single_value(node.subselect)) is not None:  # fmt: skip
            node = inner
        else:
            return node


def _single_value(select: ast.Node) -> ast.Node | None:
    """x of `SELECT x` without FROM, WHERE or set operation."""
    if (isinstance(select, ast.SelectStmt) and not select.fromClause and select.whereClause is None
            and select.op == 0 and len(select.targetList or ()) == 1):  # fmt: skip
        return select.targetList[0].val  # type: ignore[no-any-return]
    return None


def _listed(node: ast.Node) -> tuple[ast.Node, ...] | None:
    """The items of `x IN (a, b)`, `x = ANY (ARRAY[a, b])` or `x <> ALL (ARRAY[a, b])`; else None."""
    if not isinstance(node, ast.A_Expr) or node.name[0].sval not in ("=", "<>"):
        return None
    if node.kind == A_Expr_Kind.AEXPR_IN and isinstance(node.rexpr, tuple):
        return node.rexpr
    array = _stripped(node.rexpr) if node.rexpr is not None else None
    wanted = A_Expr_Kind.AEXPR_OP_ANY if node.name[0].sval == "=" else A_Expr_Kind.AEXPR_OP_ALL
    if node.kind == wanted and isinstance(array, ast.A_ArrayExpr) and array.elements:
        return tuple(array.elements)
    return None


def _is_row_org(node: ast.Node | None) -> bool:
    return node is not None and row_column(_stripped(node)) == ORG


def _is_eq(name: tuple[ast.String, ...] | None) -> bool:
    return not name or name[-1].sval == "="


def _text(node: ast.Node) -> str | None:
    node = _stripped(node)
    value = getattr(node, "val", None) if isinstance(node, ast.A_Const) else None
    return getattr(value, "sval", None)


def _claim(call: ast.FuncCall) -> str | None:
    """The setting current_setting(...) reads, when it is a literal."""
    return _text(call.args[0]) if call.args else None
