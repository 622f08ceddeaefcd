"""Findings where CI shows them: SARIF results and GitLab code-quality entries at the migration's own lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.report.formats import codequality, sarif
from readiness.report.record import Outcome
from readiness.report.signoff import sign
from readiness.report.tally import Tally
from readiness.schema.files import DEFAULT_MIGRATION, DEFAULT_ROLLBACK
from readiness.verdicts import FAILED, Issue
from tests.suite.helpers import sarif_errors

pytestmark = pytest.mark.suite

POLICY = ("RLS on sync_activity_log does not keep tenants apart as the report requires (...): sync_activity_log_select "
          "lets any signed-in user read every organisation's rows ...")


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_finding_without_a_line_is_located_where_the_file_names_its_subject() -> None:
    """A blocking issue located at a check (not a file:line) is put on the line that first names an object it is
    about, the most specific (the policy, not its table); one about nothing the file has, at line 1, whatever its
    message names."""
    tally = Tally(DEFAULT_MIGRATION, DEFAULT_ROLLBACK)
    leak = Issue("CRITICAL", POLICY, "tests/test_02_x.py::test_a", requirement="report.isolation",
                 about=("sync_activity_log", "sync_activity_log_select"))
    tally.record(Outcome("tests/test_02_x.py::test_a[sync_activity_log]", FAILED, POLICY, issues=[leak], task=2))
    tally.record(Outcome("tests/test_05_x.py::test_b", FAILED, "no enum label 'paused' in sync_status_type",
                         requirement="report.enums", task=5))  # fmt: skip
    signoff = sign(tally, DEFAULT_MIGRATION.parents[2])
    document = sarif.sarif(signoff)
    assert sarif_errors(document) == []
    regions = {r["ruleId"]: r["locations"][0]["physicalLocation"] for r in document["runs"][0]["results"]}
    policy = regions["report:isolation"]
    assert policy["artifactLocation"] == {"uri": "sql/migrations/0024_sync_preview_progress_logging.sql",
                                          "uriBaseId": "%SRCROOT%"}  # fmt: skip
    assert policy["region"]["startLine"] == line_of(DEFAULT_MIGRATION, "CREATE POLICY sync_activity_log_select")
    assert regions["report:enums"]["region"] == {"startLine": 1}
    quality = {entry["check_name"]: entry for entry in codequality.codequality(signoff)}
    assert quality["report:isolation"]["severity"] == "blocker"
    assert quality["report:isolation"]["location"]["lines"]["begin"] == policy["region"]["startLine"]
