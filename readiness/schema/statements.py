"""A SQL file's statements, as PostgreSQL's own parser splits them, each placed at its file:line:column.

pglast carries PostgreSQL 17's parser: it splits the file exactly as the server would and gives each
statement's offset. The file is read as UTF-8 text; anything else is a usage error that says so.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pglast
from pglast import ast, parser

from readiness.errors import ReadinessUsageError
from readiness.verdicts import Location

TRANSACTION_CONTROL = "TransactionStmt"
COMMENTS = {"SQL_COMMENT", "C_COMMENT"}
BYTE_ORDER_MARK = "\ufeff"


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


class ApplyError(Exception):
    """A statement of a SQL file failed: where, which statement, PostgreSQL's message."""

    def __init__(self, location: Location, statement: str, message: str, sqlstate: str | None):
        self.location = location
        self.statement = statement
        self.message = message
        self.sqlstate = sqlstate
        super().__init__(f"{location}: {statement} - {message}")


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
    source = text_of(path)
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


def text_of(path: Path) -> str:
    """The file's text, read as UTF-8 (a byte-order mark dropped, as psql drops it); a missing, binary or
    non-UTF-8 file is a usage error naming what is wrong and what to do."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReadinessUsageError(f"SQL file not found: {path}. Check the --migration/--rollback path.") from None
    except OSError as error:
        raise ReadinessUsageError(f"SQL file {path} cannot be read: {error.strerror}.") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ReadinessUsageError(
            f"{path} is not a SQL text file: it holds a NUL byte (at byte {nul}), as a binary file does. Give the "
            "migration's .sql file, saved as UTF-8 text."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ReadinessUsageError(
            f"{path} is not UTF-8 text: byte 0x{data[error.start]:02x} at line {line} is not valid UTF-8 (a file "
            "saved as Latin-1 or Windows-1252?). PostgreSQL reads a migration as the database's encoding, UTF-8 on "
            "Supabase and Neon: save the file as UTF-8 and run again."
        ) from None
    return text.removeprefix(BYTE_ORDER_MARK)


def has_byte_order_mark(path: Path) -> bool:
    """Whether the file starts with a UTF-8 byte-order mark (read without it; the sign-off says so)."""
    try:
        return path.read_bytes().startswith(BYTE_ORDER_MARK.encode())
    except OSError:
        return False


def meta_commands(path: Path) -> list[str]:
    """The psql meta-commands read_sql() skips, each with its line: the sign-off lists them."""
    source = text_of(path)
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




def nodes(node: object):  # type: ignore[no-untyped-def]
    """Every parse-tree node in `node` (a node, or a tuple or list of them), depth first."""
    if isinstance(node, (tuple, list)):
        for item in node:
            yield from nodes(item)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    for attribute in node.__slots__:
        yield from nodes(getattr(node, attribute))
