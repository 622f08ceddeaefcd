"""Apply a SQL file statement by statement; a failure names file:line:column.

The file is split by PostgreSQL's own parser (readiness.schema.statements); the server's error position (or, when
it gives none, the relation it names) places a failure inside its statement. A file that does what no rollback
undoes is never run (readiness.schema.scope), and the suite's own lock_timeout and statement_timeout hold over
whatever the file sets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import pglast
import psycopg
from pglast import parser
from psycopg import sql

from readiness.schema import catalog, scope
from readiness.schema.statements import (  # noqa: F401  (re-exported: the file's statements, where they are)
    TRANSACTION_CONTROL,
    ApplyError,
    Location,
    Statement,
    location_of,
    meta_commands,
    read_sql,
    split,
)

_NAMED_OBJECT = re.compile(r'(?:relation|type|function|schema|column) "([^"]+)"')
SUITE_TIMEOUTS = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
RESTORE_TIMEOUTS = "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)"


def error_offset(statement: Statement, error: psycopg.Error) -> int:
    """Offset inside the statement: the server's position, else the object its message names."""
    if error.diag.statement_position:
        return int(error.diag.statement_position) - 1
    named = _NAMED_OBJECT.search(error.diag.message_primary or "")
    if named:
        wanted = named.group(1).split(".")[-1].lower()
        for token in parser.scan(statement.text):
            if statement.text[token.start : token.end + 1].strip('"').lower() == wanted:
                return token.start
    return 0


TIMEOUT_SETTINGS = {"lock_timeout", "statement_timeout", "transaction_timeout", "idle_in_transaction_session_timeout"}


def sets_a_timeout(statement: Statement) -> bool:
    """Whether the statement is SET [LOCAL] lock_timeout / statement_timeout (or another timeout)."""
    if statement.kind != "VariableSetStmt":
        return False
    return getattr(pglast.parse_sql(statement.text)[0].stmt, "name", None) in TIMEOUT_SETTINGS


class NotRun(ApplyError):
    """The file does what no rollback undoes (readiness.schema.scope): it was run nowhere."""


QUERY_CANCELED, DUPLICATE_OBJECT = "57014", "42710"
# The roles a file's statements created on each of the suite's servers (host, port, role): roles are cluster-wide,
# so the same file applied again in another database there finds them; that is the suite's doing, not the file's.
_ROLES_MADE: set[tuple[object, object, str]] = set()
# A file whose statement outran the suite's statement_timeout, by file and text: it is not run again in this run.
_TOO_SLOW: dict[tuple[Path, str], ApplyError] = {}


def apply_file(
    conn: psycopg.Connection, path: Path, limit: int | None = None, start: int = 0,
    before: Callable[[Statement], None] | None = None, trusted: bool = False, once: bool = True,
) -> int:  # fmt: skip
    """Run the statements of `path` from the `start`-th (0-based) up to the `limit`-th in the caller's transaction.

    Returns the position reached. The file's own BEGIN/COMMIT are skipped: the caller owns the transaction, so a dry
    run can always be rolled back. So are its SET lock_timeout / statement_timeout (the suite's own limits hold
    wherever it runs a file; task 7 judges the file's) and its role and database settings (readiness.schema.scope).
    A file that does what no rollback undoes is not run at all (NotRun); one whose statement outran the suite's
    statement_timeout is not run again (the same ApplyError). `before` is called with each statement about to run.
    `trusted`: the suite's own SQL (prerequisites, 0023, platform fixtures), run as it is written. `once` False: a
    statement cancelled by a timeout the caller set (a lock budget) does not mark the file as too slow.
    """
    source = read_sql(path)
    escapes = () if trusted else scope.escaping(path)
    if escapes:
        first = escapes[0]
        more = f" (and {len(escapes) - 1} more statement(s) of the kind)" if len(escapes) > 1 else ""
        raise NotRun(first.location, first.statement, f"{first.why}{more}: the file was run nowhere, on no server "
                     "(what it would do cannot be rolled back)", None)  # fmt: skip
    if (path, source) in _TOO_SLOW:
        raise _TOO_SLOW[(path, source)]
    count = 0
    catalog.forget(conn)  # its DDL may change the tables whose columns this session read
    # Statements inside DO blocks or functions may still set_config() a timeout: the suite's are put back after.
    timeouts = conn.execute(SUITE_TIMEOUTS).fetchone()
    for statement in split(path):
        if statement.kind == TRANSACTION_CONTROL:
            continue
        if limit is not None and count >= limit:
            break
        if count < start or sets_a_timeout(statement) or scope.not_executed(statement):
            count += 1
            continue
        if before is not None:
            before(statement)
        roles = scope.roles_created(statement)
        server = (conn.info.host, conn.info.port)
        try:
            with conn.transaction() if roles else nullcontext(), conn.cursor() as cur:
                cur.execute(sql.SQL(statement.text))  # type: ignore[arg-type]
            _ROLES_MADE.update((*server, role) for role in roles)
        except psycopg.Error as error:
            if error.sqlstate == DUPLICATE_OBJECT and roles and all((*server, r) in _ROLES_MADE for r in roles):
                count += 1  # made by an earlier apply of the file on this server of the suite's
                continue
            location = location_of(path, source, statement.offset + error_offset(statement, error))
            failure = ApplyError(location, statement.first_line, message_of(error, timeouts, once), error.sqlstate)
            if error.sqlstate == QUERY_CANCELED and once:
                _TOO_SLOW[(path, source)] = failure
            raise failure from None
        count += 1
    conn.execute(RESTORE_TIMEOUTS, timeouts)
    return count


def message_of(error: psycopg.Error, timeouts: tuple[str, str], once: bool) -> str:
    """PostgreSQL's message; for a statement the suite's statement_timeout cancelled, what that means."""
    message = error.diag.message_primary or str(error)
    if error.sqlstate == QUERY_CANCELED and once:
        return (f"{message}: the statement ran longer than the suite's statement_timeout ({timeouts[1]}) on a database "
                "holding only the prerequisites and 0023; it is not run again in this run")  # fmt: skip
    return message


def first_reference(path: Path, name: str) -> Location | None:
    """Where a SQL file first names `name` (a table or a schema): the line a missing prerequisite breaks."""
    source = read_sql(path)
    wanted = name.split(".")[-1].lower()
    for statement in split(path):
        for token in parser.scan(statement.text):
            if statement.text[token.start : token.end + 1].strip('"').lower() == wanted:
                return location_of(path, source, statement.offset + token.start)
    return None
