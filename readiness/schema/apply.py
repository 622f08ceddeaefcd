"""Apply a SQL file statement by statement; a failure names file:line:column.

pglast carries PostgreSQL 17's own parser: it splits the file exactly as the server
would and gives each statement's offset; the server's error position (or, when it
gives none, the relation it names) places the failure inside the statement.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pglast
import psycopg
from pglast import parser
from psycopg import sql

from readiness.errors import ReadinessUsageError
from readiness.schema import catalog

TRANSACTION_CONTROL = "TransactionStmt"
COMMENTS = {"SQL_COMMENT", "C_COMMENT"}
_NAMED_OBJECT = re.compile(r'(?:relation|type|function|schema|column) "([^"]+)"')


@dataclass(frozen=True)
class Statement:
    """One statement of a SQL file, as PostgreSQL's parser splits it."""

    path: Path
    text: str
    offset: int  # character offset of the statement's first token in the file
    kind: str  # pglast node name: CreateStmt, TransactionStmt, ...

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0].strip()


@dataclass(frozen=True)
class Location:
    """A place in a SQL file, printed as file:line:column."""

    path: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


class ApplyError(Exception):
    """A statement of a SQL file failed: where, which statement, PostgreSQL's message."""

    def __init__(self, location: Location, statement: str, message: str, sqlstate: str | None):
        self.location = location
        self.statement = statement
        self.message = message
        self.sqlstate = sqlstate
        super().__init__(f"{location}: {statement} - {message}")


SUITE_TIMEOUTS = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
RESTORE_TIMEOUTS = "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)"


def location_of(path: Path, source: str, offset: int) -> Location:
    """The 1-based line and column of a character offset in `source`."""
    before = source[:offset]
    return Location(path, before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


# psql meta-commands, as DBAs write migrations for psql: those that change nothing in the database are
# skipped (blanked, so every line and column stays where it was); those that do are refused.
HARMLESS_META = {"set", "unset", "echo", "qecho", "timing", "pset", "encoding", "conninfo", "warn"}
META_COMMAND = re.compile(r"^[ \t]*\\([a-zA-Z!]+)[^\n]*$", re.MULTILINE)


def read_sql(path: Path) -> str:
    """The text of a SQL file, its harmless psql meta-commands blanked; a missing file is a usage error naming it,
    a psql meta-command that would change what runs is an ApplyError at its line."""
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReadinessUsageError(f"SQL file not found: {path}. Check the --migration/--rollback path.") from None
    for match in META_COMMAND.finditer(source):
        if match.group(1) not in HARMLESS_META:
            raise ApplyError(
                location_of(path, source, match.start(1) - 1),
                match.group(0).strip(),
                f"the psql meta-command \\{match.group(1)} runs or reads something the suite cannot see: "
                "inline what it brings into the file (or remove it) and run the suite again",
                None,
            )
    return META_COMMAND.sub(lambda match: " " * len(match.group(0)), source)


def meta_commands(path: Path) -> list[str]:
    """The psql meta-commands read_sql() skips, each with its line: the sign-off lists them."""
    source = path.read_text(encoding="utf-8")
    return [f"{location_of(path, source, m.start(1) - 1)}: {m.group(0).strip()}" for m in META_COMMAND.finditer(source)]


def split(path: Path) -> list[Statement]:
    """The statements of a SQL file, each with its offset; a syntax error raises ApplyError."""
    return list(_split(path, read_sql(path)))


@functools.lru_cache(maxsize=32)
def _split(path: Path, source: str) -> tuple[Statement, ...]:
    """split() for a given text: a run applies the same files many times, pglast parses each once."""
    try:
        raw_statements = pglast.parse_sql(source)
    except pglast.parser.ParseError as error:
        message, offset = error.args
        location = location_of(path, source, offset)
        line = source.splitlines()[location.line - 1].strip()
        raise ApplyError(location, line, message, "42601") from None
    statements = []
    for raw in raw_statements:
        chunk = (
            source[raw.stmt_location : raw.stmt_location + raw.stmt_len]
            if raw.stmt_len
            else source[raw.stmt_location :]
        )
        # skip the comments and blank lines that pglast counts as part of the statement
        lead = next(token.start for token in parser.scan(chunk) if token.name not in COMMENTS)
        statements.append(
            Statement(path, chunk[lead:].rstrip().rstrip(";"), raw.stmt_location + lead, type(raw.stmt).__name__)
        )
    return tuple(statements)


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


def apply_file(
    conn: psycopg.Connection, path: Path, limit: int | None = None, start: int = 0, keep_timeouts: bool = False
) -> int:
    """Run the statements of `path` from the `start`-th (0-based) up to the `limit`-th in the caller's transaction.

    Returns the position reached. The file's own BEGIN/COMMIT are skipped: the caller owns
    the transaction, so a dry run can always be rolled back. With `keep_timeouts`, the file's own
    SET lock_timeout / statement_timeout are skipped too: the caller's (a lock budget) stand.
    """
    source = read_sql(path)
    count = 0
    catalog.forget(conn)  # its DDL may change the tables whose columns this session read
    # The file may SET LOCAL its own lock_timeout and statement_timeout (a deploy should): in the caller's
    # transaction they would outlive the file, so the suite's own are put back after it.
    timeouts = conn.execute(SUITE_TIMEOUTS).fetchone()
    for statement in split(path):
        if statement.kind == TRANSACTION_CONTROL:
            continue
        if limit is not None and count >= limit:
            break
        if count < start or (keep_timeouts and sets_a_timeout(statement)):
            count += 1
            continue
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL(statement.text))  # type: ignore[arg-type]
        except psycopg.Error as error:
            location = location_of(path, source, statement.offset + error_offset(statement, error))
            raise ApplyError(
                location, statement.first_line, error.diag.message_primary or str(error), error.sqlstate
            ) from None
        count += 1
    conn.execute(RESTORE_TIMEOUTS, timeouts)
    return count


def first_reference(path: Path, name: str) -> Location | None:
    """Where a SQL file first names `name` (a table or a schema): the line a missing prerequisite breaks."""
    source = read_sql(path)
    wanted = name.split(".")[-1].lower()
    for statement in split(path):
        for token in parser.scan(statement.text):
            if statement.text[token.start : token.end + 1].strip('"').lower() == wanted:
                return location_of(path, source, statement.offset + token.start)
    return None
