"""Hostile and clumsy migration files (issue #29): nothing they do escapes the rollback, each is named at its line,
every run ends in bounded time with the true cause, and a file the suite cannot read is a usage error.

The hostile statements carry harmless markers one can look for afterwards: a file created by a shell command, a
replication slot, a sequence's value, a row written through dblink; a target the suite builds is fingerprinted
before and after, and the host's marker file must not exist.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from readiness.schema import scope
from readiness.schema.files import DEFAULT_MIGRATION, DEFAULT_ROLLBACK, MIGRATION_0023, PREREQUISITE_FILES
from readiness.schema.statements import split
from tests.suite.helpers import ReadinessRun
from tests.suite.targets import OPERATIONAL, state_of

pytestmark = pytest.mark.suite

TASKS_1_AND_7 = ("tests/test_01_schema.py", "tests/test_07_production.py")


def with_statements(*statements: str) -> str:
    """Our 0024 with `statements` before its COMMIT, each on lines of its own."""
    text = DEFAULT_MIGRATION.read_text()
    head, _, tail = text.rpartition("\nCOMMIT;")
    return f"{head}\n" + "\n".join(statements) + f"\nCOMMIT;{tail}"


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def issues_at(run: ReadinessRun, rule: str) -> dict[int, dict]:  # type: ignore[type-arg]
    """Blocking issues of `rule`, by the line of the migration they are at."""
    return {int(issue["location"].rsplit(":", 2)[-2]): issue for issue in run.signoff["blocking_issues"]
            if issue.get("rule") == rule and "0024_under_test.sql" in issue["location"]}  # fmt: skip


def test_escaping_statements_are_run_nowhere(readiness_run, target, tmp_path: Path) -> None:
    """A file with COPY ... TO PROGRAM, dblink, a replication slot, a target's sequence advanced and PREPARE
    TRANSACTION is NOT APPROVED, one CRITICAL per statement at its line; it is run nowhere: no file on the host, no
    slot, no table made through dblink, no prepared transaction, the sequence where it was, the target identical."""
    marker = tmp_path / "marker"
    tmp_path.chmod(0o777)  # the servers' OS user could write it, if the file ran
    dsn = target(OPERATIONAL, *PREREQUISITE_FILES, MIGRATION_0023)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE public.invoice_no_seq")
    hostile = {
        "program": f"COPY (SELECT 1) TO PROGRAM 'touch {marker}';",
        "dblink": "SELECT dblink_exec('dbname=postgres', 'CREATE TABLE readiness_marker (id int)');",
        "slot": "SELECT pg_create_physical_replication_slot('readiness_marker_slot');",
        "sequence": "DO $$ BEGIN IF to_regclass('public.invoice_no_seq') IS NOT NULL THEN "
                    "PERFORM nextval('public.invoice_no_seq'); END IF; END $$;",
        "prepared": "PREPARE TRANSACTION 'readiness_marker';",
    }  # fmt: skip
    text = with_statements(*hostile.values())
    before = state_of(dsn)
    run = readiness_run(text, f"--dsn={dsn}")
    assert (run.exit_code, run.signoff.get("verdict")) == (1, "NOT APPROVED"), run.output[-3000:]
    named = issues_at(run, "readiness:escapes-rollback")
    lines = {name: line_of(text, statement) for name, statement in hostile.items()}
    assert {name: named.get(line, {}).get("severity") for name, line in lines.items()} == dict.fromkeys(
        hostile, "CRITICAL"), run.signoff["blocking_issues"]  # fmt: skip
    assert "PROGRAM runs a shell command" in named[lines["program"]]["message"]
    assert "advances a sequence 0024 did not create" in named[lines["sequence"]]["message"]
    assert not marker.exists(), "COPY ... TO PROGRAM ran on the host"
    assert state_of(dsn) == before, "the hostile file changed the target"
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT last_value, is_called FROM public.invoice_no_seq").fetchone() == (1, False)
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('public.readiness_marker')").fetchone() == (None,)
    assert "0024 was run nowhere" in (run.reports / "readiness.md").read_text()


def test_changes_outside_0024_and_a_split_transaction_are_named(readiness_run) -> None:
    """Privileges of a table 0024 did not create, a SUPERUSER role made in a DO block, a role's and a database's
    settings, timeouts SET to 0 and a COMMIT; BEGIN; in the middle: each a task 7 finding at its line (the role
    CRITICAL); the role's settings are not run, so nothing else fails for them."""
    statements = {
        "grant": "GRANT ALL ON organization TO PUBLIC;",
        "superuser": "DO $$ BEGIN CREATE ROLE readiness_sneaky SUPERUSER; END $$;",
        "role setting": "ALTER ROLE postgres SET search_path = nowhere;",
        "database setting": "ALTER DATABASE app SET work_mem = '1MB';",
        "split": "COMMIT;\nBEGIN;",
    }
    text = with_statements(*statements.values()).replace("SET LOCAL lock_timeout = '5s';", "SET lock_timeout = 0;")
    run = readiness_run(text, *TASKS_1_AND_7)
    assert (run.exit_code, run.signoff.get("verdict"), run.statuses()[7]) == (1, "NOT APPROVED", "FAIL"), (
        run.output[-3000:]
    )
    scope = {**issues_at(run, "readiness:outside-scope"), **issues_at(run, "readiness:split-transaction")}
    found = {name: scope.get(line_of(text, statement), {}).get("severity") for name, statement in statements.items()}
    assert found == {"grant": "HIGH", "superuser": "CRITICAL", "role setting": "HIGH", "database setting": "HIGH",
                     "split": "HIGH"}, run.signoff["blocking_issues"]  # fmt: skip
    assert run.statuses()[1] == "PASS", run.output[-3000:]  # the role setting was not run: no false "does not exist"
    timeouts = [i["message"] for i in run.signoff["blocking_issues"] if i.get("rule") == "squawk:require-lock-timeout"]
    assert timeouts and "SET lock_timeout to 0" in timeouts[0] and "means no timeout at all" in timeouts[0], timeouts


def test_slow_file_ends_at_the_suites_statement_timeout_naming_its_statement(readiness_run) -> None:
    """A statement that sleeps ten minutes stops at the suite's statement_timeout (the file's own SET of 0 does not
    override it), once, and the failure names the statement and the timeout."""
    text = with_statements("SELECT pg_sleep(600);").replace("SET LOCAL statement_timeout = '60s';",
                                                            "SET statement_timeout = 0;")  # fmt: skip
    run = readiness_run(text, "--statement-timeout=1500", *TASKS_1_AND_7)
    assert (run.exit_code, run.signoff.get("verdict")) == (1, "NOT APPROVED"), run.output[-3000:]
    (issue,) = [i for i in run.signoff["blocking_issues"] if i["requirement"]["id"] == "report.executes"]
    assert "SELECT pg_sleep(600)" in issue["message"] and "statement_timeout (1500ms)" in issue["message"], issue
    assert issue["location"].endswith(f":{line_of(text, 'SELECT pg_sleep(600);')}:1"), issue


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a SQL text file: it holds a NUL byte"),
        ("CREATE TABLE caf\u00e9 (id int);".encode("latin-1"), "is not UTF-8 text: byte 0xe9 at line 1"),
    ],
    ids=["binary", "latin-1"],
)
def test_unreadable_file_is_a_usage_error(readiness_run, tmp_path: Path, content: bytes, said: str) -> None:
    """A binary or non-UTF-8 file is a usage error (exit 4) saying what is wrong and what to do, never a
    traceback."""
    migration = tmp_path / "0024.sql"
    migration.write_bytes(content)
    run = readiness_run(None, f"--migration={migration}", "tests/test_07_production.py")
    assert run.exit_code == 4, run.output[-3000:]
    assert said in run.output and "Traceback" not in run.output and "INTERNALERROR" not in run.output, run.output


def test_byte_order_mark_is_read_and_said(readiness_run, tmp_path: Path) -> None:
    """A file starting with a UTF-8 byte-order mark (as Windows editors save it) is read without it, and the
    sign-off says so: no syntax error at an invisible character."""
    migration = tmp_path / "0024_bom.sql"
    migration.write_bytes(b"\xef\xbb\xbf" + DEFAULT_MIGRATION.read_bytes())
    rollback = tmp_path / "0024_down.sql"
    rollback.write_bytes(DEFAULT_ROLLBACK.read_bytes())
    run = readiness_run(None, f"--migration={migration}", f"--rollback={rollback}", *TASKS_1_AND_7)
    assert run.statuses()[1] == "PASS", run.output[-3000:]
    said = run.signoff["environment"].get("files starting with a UTF-8 byte-order mark (read without it, as psql does)")
    assert said == str(migration), run.signoff["environment"]
    assert os.fspath(rollback) not in said


def test_file_holding_a_lock_on_the_target_stalls_it_once_within_the_budget(readiness_run, target) -> None:
    """A file that locks organization and then sleeps is cancelled on the target at the lock budget, once: no
    retry stalls the target's writers again, and the finding names the file's statement, not other sessions."""
    dsn = target(OPERATIONAL, *PREREQUISITE_FILES, MIGRATION_0023)
    text = with_statements("LOCK TABLE organization IN ACCESS EXCLUSIVE MODE;", "SELECT pg_sleep(1);")
    run = readiness_run(text, f"--dsn={dsn}", "--lock-budget=200", "tests/test_07_production.py")
    assert (run.exit_code, run.signoff.get("verdict")) == (1, "NOT APPROVED"), run.output[-3000:]
    moments = run.signoff["lock_moments"]["moments"]
    assert len(moments) == 1, moments
    slow = [i["message"] for i in run.signoff["blocking_issues"] if "ran longer than the lock budget" in i["message"]]
    assert slow and slow[0].startswith("SELECT pg_sleep(1): ran longer than the lock budget (200 ms)"), (
        run.signoff["blocking_issues"]
    )
    assert "other sessions" not in " ".join(i["message"] for i in run.signoff["blocking_issues"])


def test_what_the_file_does_is_sorted_by_when_it_runs(tmp_path: Path) -> None:
    """NOTIFY at the deploy (a statement, a DO block) escapes: CRITICAL; in a function the file defines (a realtime
    trigger) it runs when called, on whatever server runs it: said, LOW. A role's settings are not run by the suite."""
    path = tmp_path / "0024.sql"
    path.write_text(
        "BEGIN;\n"
        "CREATE FUNCTION public.tell() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('sync', "
        "NEW.id::text); RETURN NEW; END $$;\n"
        "NOTIFY sync;\n"
        "DO $$ BEGIN PERFORM pg_notify('sync', 'x'); END $$;\n"
        "ALTER ROLE postgres SET search_path = nowhere;\n"
        "COMMIT;\n"
    )
    found = {(finding.location.line, finding.kind, finding.severity) for finding in scope.findings(path)}
    assert found == {(2, scope.NOTE, "LOW"), (3, scope.ESCAPES, "CRITICAL"), (4, scope.ESCAPES, "CRITICAL"),
                     (5, scope.SCOPE, "HIGH")}, found  # fmt: skip
    assert [scope.not_executed(statement) for statement in split(path)] == [False] * 4 + [True, False]
