"""A target's DSN, which holds its password: what a message may say of it (host, port, database, user), and a DSN
libpq would misread, refused before it connects anywhere.

In a URL, libpq ends the user and password at the first `@` or `/`: an unencoded `@` in the password makes the
rest of it the host, and libpq's errors quote the part they could not read. So no message quotes libpq on a DSN
that holds a password; each names the target from the DSN as the person meant it.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

import psycopg
from psycopg import conninfo as libpq

from readiness.errors import ReadinessUsageError

URL_SCHEMES = ("postgresql://", "postgres://")
# What libpq misreads in a URL's password, unencoded: `@` and `/` end it, a space is refused, a `%` starts an escape.
MISREAD = re.compile(r"[@/\s]|%(?![0-9A-Fa-f]{2})")
QUERY = re.compile(r"\?(?=[A-Za-z_]+=)")  # where a URL's parameters start (?sslmode=...), which may hold an @ too
HIDDEN = "(password hidden)"
ENCODE_IT = (
    "URL-encode the password ({codes}; Python's urllib.parse.quote(password, safe='') does it), or leave it out "
    "of the DSN and set PGPASSWORD"
)
CODES = "%40 for @, %3A for :, %2F for /, %25 for %, %20 for a space"
SPACES = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a carriage return"}


class Dsn(str):
    """A DSN whose repr hides its password: pytest prints fixture values and locals in tracebacks."""

    def __repr__(self) -> str:
        return f"Dsn({describe(self)!r})"


def url_userinfo(dsn: str) -> tuple[str, str | None, str] | None:
    """A URL's (user, password as typed, the rest after the `@`), split at its last `@` as a person means it; None
    for key=value pairs or a URL without a user."""
    if not dsn.startswith(URL_SCHEMES):
        return None
    scheme, rest = dsn.split("://", 1)
    head, query = QUERY.split(rest, maxsplit=1) if QUERY.search(rest) else (rest, None)
    userinfo, at, after = head.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or "/" in user:  # no user: the `@` is the database name's
        return None
    rebuilt = f"{scheme}://{quote(unquote(user), safe='')}@{after}" + (f"?{query}" if query is not None else "")
    return user, (password if colon else None), rebuilt


def parts(dsn: str) -> dict[str, str]:
    """The DSN's connection parameters, its password left out; empty when libpq cannot read them."""
    split = url_userinfo(dsn)
    try:
        found = libpq.conninfo_to_dict(split[2] if split else dsn)
    except psycopg.ProgrammingError:
        return {}
    found.pop("password", None)
    return {name: str(value) for name, value in found.items()}


def describe(dsn: str) -> str:
    """host:port/dbname as user: all a message or report says of a DSN, never its password."""
    found = parts(dsn)
    if not found:
        return "an unparsable DSN"
    return (
        f"{found.get('host', 'localhost')}:{found.get('port', '5432')}/{found.get('dbname', '?')}"
        f" as {found.get('user', '?')}"
    )


def forms_of_password(dsn: str) -> list[str]:
    """The DSN's password as it may show in a message: as typed, decoded, encoded; longest first."""
    split = url_userinfo(dsn)
    typed = [split[1]] if split and split[1] else []
    try:
        typed.append(str(libpq.conninfo_to_dict(dsn).get("password") or ""))
    except psycopg.ProgrammingError:
        pass
    typed += re.findall(r"password\s*=\s*('(?:\\.|[^'])*'|[^\s&]+)", dsn)  # key=value pairs, a URL's query
    forms = {form for text in typed if text for form in (text, unquote(text), quote(unquote(text), safe=""))}
    return sorted(forms, key=len, reverse=True)


def redact(text: str, dsn: str) -> str:
    """`text` with every form of the DSN's password hidden."""
    for form in forms_of_password(dsn):
        text = text.replace(form, HIDDEN)
    return text


def check(dsn: str) -> None:
    """A DSN libpq reads as the person meant it, or a usage error naming the target and what to fix."""
    split = url_userinfo(dsn)
    misread = list(dict.fromkeys(MISREAD.findall(split[1]))) if split and split[1] else []  # in the order typed
    if misread:
        named = [SPACES.get(char, char) for char in misread]
        codes = ", ".join(f"{quote(char, safe='')} for {name}" for char, name in zip(misread, named, strict=True))
        raise ReadinessUsageError(
            f"The DSN given by --dsn / READINESS_DSN, for the target {describe(dsn)}, has a password libpq would "
            f"misread: it holds {', '.join(named)}, which a URL must escape. {ENCODE_IT.format(codes=codes)}."
        )
    try:
        libpq.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as error:
        raise ReadinessUsageError(unreadable(dsn, error)) from None


def unreadable(dsn: str, error: psycopg.ProgrammingError) -> str:
    """What to say of a DSN libpq cannot read: its own words only when the DSN holds no password to quote."""
    if forms_of_password(dsn) or "password" in dsn.lower():
        return (
            "The DSN given by --dsn / READINESS_DSN is not valid, and libpq's message is not shown as it may quote "
            "the password. Give postgresql://user:password@host:port/dbname and "
            f"{ENCODE_IT.format(codes=CODES)}; or key=value pairs with the password in single quotes (password='...')."
        )
    return f"The DSN given by --dsn / READINESS_DSN is not valid: {str(error).strip()}"
