"""Decisions on the record: a team accepts a finding with a reason, by whom and until when; the sign-off lists it,
stops blocking on it, and blocks again once it has expired. A leak is never accepted. squawk's own config and
ignore comments, and timeouts the deploy sets itself, settle squawk's findings, shown as such."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from readiness.errors import ReadinessUsageError
from readiness.report.formats.signoff_json import as_json
from readiness.report.formats.summary import ENVIRONMENT as STEP_SUMMARY_ENV
from readiness.report.record import Outcome
from readiness.report.signoff import SignOff, sign
from readiness.report.tally import Tally
from readiness.rules import decisions, squawk
from readiness.schema.files import MIGRATION_0023, PREREQUISITE_FILES
from readiness.verdicts import FAILED, PASSED, Issue, Location
from tests.suite.helpers import mutate, sarif_errors
from tests.suite.targets import OPERATIONAL

pytestmark = pytest.mark.suite

SQUAWK_ISSUE = Issue("HIGH", "/x/0024.sql:13:1: squawk require-lock-timeout: Missing `set lock_timeout`",
                     "/x/0024.sql:13:1", rule="squawk:require-lock-timeout",
                     at=Location(Path("/x/0024.sql"), 13, 1))  # fmt: skip
ROLLBACK_ISSUE = Issue("HIGH", "/x/0024_down.sql:9:1: squawk require-lock-timeout: Missing `set lock_timeout`",
                       "/x/0024_down.sql:9:1", rule="squawk:require-lock-timeout",
                       at=Location(Path("/x/0024_down.sql"), 9, 1))  # fmt: skip


def decisions_file(tmp_path: Path, *entries: dict[str, str]) -> Path:
    path = tmp_path / "readiness.toml"
    tables = []
    for entry in entries:
        tables.append("[[accept]]\n" + "".join(
            f"{key} = {value}\n" if key == "until" else f'{key} = "{value}"\n' for key, value in entry.items()))
    path.write_text("\n".join(tables))
    return path


def accept(finding: str, until: str = "2027-03-31") -> dict[str, str]:
    return {"finding": finding, "reason": "Flyway sets lockTimeout on its connection", "by": "dba@example.com",
            "until": until}  # fmt: skip


def signoff(path: Path | None, *issues: Issue, today: date = date(2026, 12, 1)) -> SignOff:
    """Every task passing but task 7, whose squawk checks failed with `issues` (one check each)."""
    result = Tally(Path("m.sql"), Path("r.sql"), decisions=decisions.load(path), today=today)
    for number in range(1, 9):
        result.record(Outcome(f"tests/test_0{number}_x.py::test_ok", PASSED, requirement="report.tables", task=number))
    for index, issue in enumerate(issues):
        result.record(Outcome(f"tests/test_07_x.py::test_squawk[{index}]", FAILED, issue.message, issues=[issue],
                              requirement="rule.squawk", check="Application deployment safe", task=7))  # fmt: skip
    return sign(result, Path.cwd())


def test_accepted_finding_stops_blocking_and_is_listed(tmp_path: Path) -> None:
    path = decisions_file(tmp_path, accept("squawk:require-lock-timeout"))
    assert signoff(None, SQUAWK_ISSUE).verdict == "NOT APPROVED"
    decided = signoff(path, SQUAWK_ISSUE)
    assert decided.verdict == "APPROVED" and decided.blocking_issues == ()
    data = as_json(decided)
    (accepted,) = data["accepted"]  # type: ignore[misc]
    assert accepted["rule"] == "squawk:require-lock-timeout" and accepted["location"] == "/x/0024.sql:13:1"
    assert accepted["decision"] == {"finding": "squawk:require-lock-timeout", "reason": accept("")["reason"],
                                    "by": "dba@example.com", "until": "2027-03-31", "source": f"{path}:1",
                                    "kind": "accepted"}  # fmt: skip
    assert data["tasks"][6]["accepted"] == 1 and "1 accepted" in data["tasks"][6]["comments"]  # type: ignore[index]
    assert signoff(None, SQUAWK_ISSUE).readiness_checks == {"Application deployment safe": "FAIL"}
    assert decided.readiness_checks == {"Application deployment safe": "ACCEPTED"}, decided.readiness_checks


def test_expired_decision_blocks_again_naming_it(tmp_path: Path) -> None:
    path = decisions_file(tmp_path, accept("squawk:require-lock-timeout", until="2026-11-30"))
    expired = signoff(path, SQUAWK_ISSUE, today=date(2026, 12, 1))
    assert expired.verdict == "NOT APPROVED" and expired.accepted == ()
    (issue,) = expired.blocking_issues
    assert "expired on 2026-11-30" in issue.message and "dba@example.com" in issue.message, issue.message
    assert signoff(path, SQUAWK_ISSUE, today=date(2026, 11, 30)).verdict == "APPROVED"  # the last day still counts


def test_decision_narrowed_to_an_object_accepts_only_that(tmp_path: Path) -> None:
    path = decisions_file(tmp_path, accept("squawk:require-lock-timeout@0024_down.sql"))
    decided = signoff(path, SQUAWK_ISSUE, ROLLBACK_ISSUE)
    assert [issue.location for issue, _ in decided.accepted] == ["/x/0024_down.sql:9:1"]
    assert [issue.location for issue in decided.blocking_issues] == ["/x/0024.sql:13:1"]
    assert decided.verdict == "NOT APPROVED"
    line = decisions_file(tmp_path, accept("squawk:require-lock-timeout@0024.sql:130"))
    assert signoff(line, SQUAWK_ISSUE).accepted == ()  # 0024.sql:13 is not 0024.sql:130
    for named in ("0024.sql:13", "x/0024.sql:13:1", "/x/0024.sql"):
        assert len(signoff(decisions_file(tmp_path, accept(f"squawk:require-lock-timeout@{named}")),
                           SQUAWK_ISSUE).accepted) == 1, named  # fmt: skip
    elsewhere = decisions_file(tmp_path, accept("squawk:require-lock-timeout@y/0024.sql"))
    assert signoff(elsewhere, SQUAWK_ISSUE).accepted == ()  # another folder's 0024.sql


def test_decision_narrowed_to_an_object_reads_what_the_finding_is_about(tmp_path: Path) -> None:
    """An @object names an object the finding is about (its `about`, typed where it is found), by its name or its
    schema-qualified name: never a word its message happens to hold."""
    found = Issue("HIGH", "public.sync_progress: foreign key sync_progress_org_id_fkey (org_id) -> organization has no "
                  "index leading with its columns", "migration 0024", rule="splinter:unindexed_foreign_keys",
                  about=("public.sync_progress", "sync_progress_org_id_fkey"))  # fmt: skip
    for named, accepted in (("sync_progress", 1), ("public.sync_progress", 1), ("sync_progress_org_id_fkey", 1),
                            ("organization", 0), ("org_id", 0), ("sync", 0)):  # fmt: skip
        path = decisions_file(tmp_path, accept(f"splinter:unindexed_foreign_keys@{named}"))
        assert len(signoff(path, found).accepted) == accepted, named


def test_unmatched_decision_is_a_recommendation_to_remove_it(tmp_path: Path) -> None:
    path = decisions_file(tmp_path, accept("squawk:ban-drop-column"))
    decided = signoff(path)
    assert decided.verdict == "APPROVED"
    (stale,) = decided.recommendations
    assert stale.rule == "readiness:unmatched-decision" and "squawk:ban-drop-column" in stale.message
    assert stale.location == f"{path}:1"


def test_critical_finding_is_never_accepted(tmp_path: Path) -> None:
    """Accepting a leak is a usage error that says why; no decision accepts another CRITICAL finding either."""
    with pytest.raises(ReadinessUsageError, match="report:isolation cannot be accepted: it is a tenant-isolation leak"):
        decisions.load(decisions_file(tmp_path, accept("report:isolation")))
    critical = Issue("CRITICAL", "ALTER TABLE x - relation does not exist", "/x/0024.sql:5:1", rule="report:executes")
    decided = signoff(decisions_file(tmp_path, accept("report:executes")), critical)
    assert decided.verdict == "NOT APPROVED" and decided.accepted == ()
    assert "a CRITICAL finding is never accepted" in decided.blocking_issues[0].message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[[accept]]\nfinding = "squawk:x"\nreason = "r"\nuntil = 2027-01-01\n', "missing by"),
        ('[[accept]]\nfinding = "squawk:x"\nreason = "r"\nby = "me"\nuntil = "soon"\n', "is not a date"),
        ('[[accept]]\nfinding = "lock timeout"\nreason = "r"\nby = "me"\nuntil = 2027-01-01\n', "is not a rule id"),
        ('[[accept]]\nfinding = "report:no-such"\nreason = "r"\nby = "me"\nuntil = 2027-01-01\n', "no requirement"),
        ('[[accept]\nfinding = "squawk:x"\n', "is not valid TOML"),
        ('[deploy]\nlock_timeot = "5s"\n', "[deploy] lock_timeot"),
    ],
)
def test_bad_decisions_file_says_what_to_write(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "readiness.toml"
    path.write_text(text)
    with pytest.raises(ReadinessUsageError) as error:
        decisions.load(path)
    assert says in str(error.value) and str(path) in str(error.value), error.value


def test_decisions_file_found_beside_the_migration(tmp_path: Path) -> None:
    migration = tmp_path / "0024.sql"
    assert decisions.find(migration, None) is None
    beside = decisions_file(tmp_path, accept("squawk:require-lock-timeout"))
    assert decisions.find(migration, None) == beside
    assert decisions.find(migration, tmp_path / "other.toml") == tmp_path / "other.toml"


# --- squawk's own decisions, and timeouts the deploy sets itself ---------------------------------------------

UNSAFE = "BEGIN;\nALTER TABLE organization ADD COLUMN n int;\n{comment}CREATE TABLE t (id int);\nCOMMIT;\n"


def lint(tmp_path: Path, text: str, deploy: dict[str, tuple[str, str]] | None = None) -> dict[str, squawk.Finding]:
    path = tmp_path / "sub" / "0024.sql"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return {f"{f.rule}@{f.location.line}": f for f in squawk.lint(path, "17.0", "migration", True, deploy)}


def test_squawk_ignore_comment_settles_its_finding_only(tmp_path: Path) -> None:
    plain = lint(tmp_path, UNSAFE.format(comment=""))
    assert plain["prefer-bigint-over-int@3"].settled is None
    commented = lint(tmp_path, UNSAFE.format(comment="-- squawk-ignore prefer-bigint-over-int\n"))
    settled = commented["prefer-bigint-over-int@4"].settled
    assert settled is not None and settled.kind == decisions.SQUAWK and settled.source.endswith("0024.sql:3")
    assert "squawk-ignore prefer-bigint-over-int" in settled.reason
    assert commented["prefer-bigint-over-int@2"].settled is None  # the comment names the next statement only
    assert commented["require-lock-timeout@2"].decision == squawk.BLOCKING


def test_squawk_config_excluded_rules_settle_them(tmp_path: Path) -> None:
    (tmp_path / ".squawk.toml").write_text('excluded_rules = ["require-statement-timeout"]\n')  # above the file
    found = lint(tmp_path, UNSAFE.format(comment=""))
    settled = found["require-statement-timeout@2"].settled
    assert settled is not None and settled.source == str(tmp_path / ".squawk.toml") and settled.kind == "squawk"
    assert found["require-lock-timeout@2"].settled is None


def test_timeout_the_deploy_sets_satisfies_its_rule_saying_where(tmp_path: Path) -> None:
    where = "on the role deployer that deploys 0024 (ALTER ROLE deployer SET lock_timeout)"
    found = lint(tmp_path, UNSAFE.format(comment=""), deploy={"lock_timeout": ("5s", where)})
    settled = found["require-lock-timeout@2"].settled
    assert settled is not None and settled.kind == decisions.SATISFIED and where in settled.reason
    assert "lock_timeout = 5s" in settled.reason
    assert found["require-statement-timeout@2"].settled is None  # only the rule of the timeout that is set


# --- in a run: the sign-off, its reports, a target's role ------------------------------------------------------

NO_LOCK_TIMEOUT = ("SET LOCAL lock_timeout = '5s';\n", "")  # a sound 0024 whose deploy tool sets lock_timeout itself


def result_at(document: dict, rule: str) -> dict:  # type: ignore[type-arg]
    (found,) = [r for r in document["runs"][0]["results"] if r["ruleId"] == rule]
    return found


def test_sound_0024_without_lock_timeout_approved_under_a_decision_until_it_expires(
    readiness_run, tmp_path: Path
) -> None:
    """Our 0024 without its SET LOCAL lock_timeout, a decision beside it accepting squawk's require-lock-timeout:
    APPROVED (exit 0), the decision in the sign-off, signoff.json, SARIF (suppressed, at its line) and the job
    summary; once the decision has expired, NOT APPROVED again, the finding at its line, naming the decision."""
    decisions_file(tmp_path, accept("squawk:require-lock-timeout@0024_under_test.sql"))  # beside the migration
    summary = tmp_path / "step-summary.md"
    run = readiness_run(mutate(*NO_LOCK_TIMEOUT), env={STEP_SUMMARY_ENV: str(summary)})
    assert run.signoff["verdict"] == "APPROVED" and run.exit_code == 0, run.output
    (accepted,) = run.signoff["accepted"]
    assert accepted["rule"] == "squawk:require-lock-timeout" and accepted["location"].endswith(":13:1"), accepted
    assert accepted["decision"]["reason"] == accept("")["reason"] and accepted["decision"]["until"] == "2027-03-31"
    markdown = (tmp_path / "reports" / "readiness.md").read_text()
    assert "### Accepted risks" in markdown and accept("")["reason"] in markdown and "dba@example.com" in markdown
    assert summary.read_text().startswith("# Migration 0024 Production Readiness"), summary.read_text()[:200]
    html = (tmp_path / "reports" / "readiness.html").read_text()
    assert 'id="accepted">Accepted risks' in html and accept("")["reason"] in html
    junit = (tmp_path / "reports" / "junit.xml").read_text()
    squawk_case = junit[junit.index('name="test_squawk_finds_nothing_blocking[migration]"'):]
    assert squawk_case.index("<skipped") < squawk_case.index("</testcase>") and "ACCEPTED by dba@example.com" in (
        squawk_case[: squawk_case.index("</testcase>")]
    ), squawk_case[:600]
    document = json.loads((tmp_path / "reports" / "readiness.sarif").read_text())
    assert sarif_errors(document) == []
    suppressed = result_at(document, "squawk:require-lock-timeout")
    assert suppressed["locations"][0]["physicalLocation"]["region"] == {"startLine": 13, "startColumn": 1}
    assert accept("")["reason"] in suppressed["suppressions"][0]["justification"]
    quality = json.loads((tmp_path / "reports" / "codequality.json").read_text())
    assert [f for f in quality if f["check_name"] == "squawk:require-lock-timeout"] == []  # accepted: not a finding

    decisions_file(tmp_path, accept("squawk:require-lock-timeout@0024_under_test.sql", until="2026-01-31"))
    expired = readiness_run(mutate(*NO_LOCK_TIMEOUT), "tests/test_07_production.py")  # the task it decides
    assert expired.statuses()[7] == "FAIL" and expired.exit_code == 1, expired.output
    (issue,) = [i for i in expired.signoff["blocking_issues"] if i["rule"] != "report:all-tasks"]
    assert issue["rule"] == "squawk:require-lock-timeout" and "expired on 2026-01-31" in issue["message"], issue
    (expired_decision,) = expired.signoff["expired"]
    assert expired_decision["decision"]["until"] == "2026-01-31" and expired.signoff["accepted"] == []
    document = json.loads((tmp_path / "reports" / "readiness.sarif").read_text())
    assert sarif_errors(document) == []
    blocking = result_at(document, "squawk:require-lock-timeout")
    assert blocking["level"] == "error" and "suppressions" not in blocking
    location = blocking["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("0024_under_test.sql") and location["region"]["startLine"] == 13
    quality = json.loads((tmp_path / "reports" / "codequality.json").read_text())
    (found,) = [f for f in quality if f["check_name"] == "squawk:require-lock-timeout"]
    assert found["severity"] == "critical" and found["location"]["lines"]["begin"] == 13


def test_role_lock_timeout_on_the_target_satisfies_squawk_naming_it(readiness_run, target) -> None:
    """A target whose deploying role has lock_timeout set in its database (ALTER ROLE ... IN DATABASE ... SET):
    0024 without SET LOCAL lock_timeout is APPROVED, the sign-off naming where the timeout comes from."""
    dsn = target(OPERATIONAL, *PREREQUISITE_FILES, MIGRATION_0023)
    with psycopg.connect(dsn, autocommit=True) as conn:
        database, role = conn.info.dbname, conn.info.user
        conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET lock_timeout = '3s'").format(
            sql.Identifier(role), sql.Identifier(database)))  # fmt: skip
    run = readiness_run(mutate(*NO_LOCK_TIMEOUT), f"--dsn={dsn}")
    assert run.signoff["verdict"] == "APPROVED", run.output
    settled = [a for a in run.signoff["accepted"] if a["rule"] == "squawk:require-lock-timeout"]
    assert [a["decision"]["kind"] for a in settled] == ["satisfied"], settled
    assert f"lock_timeout = 3s is set on the role {role} in database {database}" in settled[0]["decision"]["reason"]
