"""Applying SQL statement by statement: split by PostgreSQL's parser, failures located at file:line:column."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from readiness.errors import ReadinessUsageError
from readiness.schema.apply import ApplyError, apply_file, split

pytestmark = pytest.mark.suite


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.sql"
    path.write_text(text)
    return path


def test_split_skips_leading_comments_and_keeps_offsets(tmp_path: Path) -> None:
    """Statements start at their first token, past comments, with dollar-quoted bodies kept whole."""
    path = write(tmp_path, "-- header\nBEGIN;\n/* c */ DO $$ BEGIN PERFORM 1; END $$;\n\nSELECT 'é;';\nCOMMIT;\n")
    statements = split(path)
    assert [(s.kind, s.text) for s in statements] == [
        ("TransactionStmt", "BEGIN"),
        ("DoStmt", "DO $$ BEGIN PERFORM 1; END $$"),
        ("SelectStmt", "SELECT 'é;'"),
        ("TransactionStmt", "COMMIT"),
    ]
    assert [s.offset for s in statements] == [10, 25, 57, 70]


def test_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    """A syntax error is reported at its file:line:column with the offending line."""
    path = write(tmp_path, "SELECT 1;\n\nCREATE TABLE t (id int,, x int);\n")
    with pytest.raises(ApplyError) as error:
        split(path)
    assert str(error.value) == f'{path}:3:24: CREATE TABLE t (id int,, x int); - syntax error at or near ","'


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    """A SQL file that does not exist is a usage error naming the path."""
    with pytest.raises(ReadinessUsageError, match="SQL file not found: .*nope.sql"):
        split(tmp_path / "nope.sql")


def test_server_error_position_is_mapped_to_the_file(db: psycopg.Connection, tmp_path: Path) -> None:
    """An error the server positions (a missing column) is reported at that file:line:column."""
    path = write(tmp_path, "SELECT 1;\n-- note\nSELECT\n    nosuchcolumn\nFROM organization;\n")
    with pytest.raises(ApplyError) as error:
        apply_file(db, path)
    assert (error.value.location.line, error.value.location.column) == (4, 5)
    assert error.value.sqlstate == "42703"
    assert error.value.message == 'column "nosuchcolumn" does not exist'


def test_missing_relation_is_located_at_its_reference(db: psycopg.Connection, tmp_path: Path) -> None:
    """'relation does not exist' without a server position is located at the name in the statement."""
    path = write(tmp_path, "CREATE TABLE t (\n  id int,\n  org uuid REFERENCES nosuch_org(id)\n);\n")
    with pytest.raises(ApplyError) as error:
        apply_file(db, path)
    assert str(error.value) == f'{path}:3:23: CREATE TABLE t ( - relation "nosuch_org" does not exist'


def test_file_transaction_control_is_left_to_the_caller(db: psycopg.Connection, tmp_path: Path) -> None:
    """A file's own COMMIT is not run: the caller's transaction can still roll everything back."""
    path = write(tmp_path, "BEGIN;\nCREATE TABLE rolled_back_probe (id int);\nCOMMIT;\n")
    with db.transaction(force_rollback=True):
        assert apply_file(db, path) == 1
    assert db.execute("SELECT to_regclass('rolled_back_probe')").fetchone() == (None,)
