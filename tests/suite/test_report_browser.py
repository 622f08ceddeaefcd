"""The HTML sign-off as a person sees it: loaded in headless Chromium, it opens on the verdict and the table."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.suite.helpers import mutate

pytestmark = pytest.mark.suite

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def rendered(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, as Chromium dumps it."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs Debian's chromium when run as root)")
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


def test_report_opens_on_the_sign_off_in_a_browser(readiness_run, tmp_path: Path) -> None:
    """In Chromium the report shows the verdict first, the 8-task table, and one row per check with its status."""
    run = readiness_run(None, "tests/test_05_enums.py")
    dom = rendered(tmp_path / "reports" / "readiness.html", tmp_path / "chromium")
    verdict = re.search(r'id="verdict"[^>]*>([^<]*)<', dom)
    assert verdict is not None and verdict.group(1) == "Production Deployment Authorization: NOT APPROVED"
    assert dom.index('id="verdict"') < dom.index('id="results-table"'), "the sign-off is not above the test rows"
    for number, name in ((1, "Schema Validation"), (5, "Enum Types"), (8, "Rollback Procedure")):
        assert f"<td>{number}. {name}</td>" in dom
    assert "PASS</span>" in dom and "NOT RUN</span>" in dom
    rows = re.findall(r'class="results-table-row (\w+)"', dom)
    assert rows.count("passed") == run.task(5)["passed"] == 14, rows


def test_failing_report_reads_like_the_seed_in_a_browser(readiness_run, tmp_path: Path) -> None:
    """A failing run in Chromium: the 8-task table without a repeated Pass/Fail column, its blocking issue with the
    checks it affects, and the failing row showing what was expected and found, not a traceback."""
    run = readiness_run(mutate("'paused', 'timeout'", "'paused'"), "tests/test_05_enums.py")
    dom = rendered(tmp_path / "reports" / "readiness.html", tmp_path / "chromium")
    assert "<th>Pass/Fail</th>" not in dom
    assert (
        dom.index("<h3>Blocking Issues</h3>") < dom.index("<h3>Recommendations</h3>") < dom.index('id="results-table"')
    )
    issue = run.signoff["blocking_issues"][0]
    assert "enum sync_status_type" in issue["message"] and issue["checks"] == 1, issue
    assert "1 check (task 5)" in dom
    failed = dom[dom.index('class="results-table-row failed"') :]
    log = failed[failed.index('class="log"') : failed.index("</div>", failed.index('class="log"'))]
    assert "enum sync_status_type: expected labels" in log and "Traceback" not in log and "def test_" not in log, log


def test_access_matrix_shows_a_leak_in_red_naming_its_proof(readiness_run, tmp_path: Path) -> None:
    """A SELECT policy on sync_activity_log USING (true): in Chromium, the sign-off's access matrix shows that
    table's cell for a user of another organisation red, naming the check that proves the leak; the other
    tables' cells stay green."""
    select = "CREATE POLICY sync_activity_log_select ON sync_activity_log FOR SELECT TO authenticated\n    USING "
    member = "(org_id IN (SELECT ue.org_id FROM auth.users_extended ue WHERE ue.id = (SELECT auth.uid())))"
    readiness_run(mutate(select + member, select + "(true)"), "tests/test_02_rls.py")
    dom = rendered(tmp_path / "reports" / "readiness.html", tmp_path / "chromium")
    matrix = dom[dom.index('id="access-matrix"') : dom.index("</table>", dom.index('id="access-matrix"'))]
    rows = {re.search(r"<th>([^<]+)</th>", row).group(1): row for row in matrix.split("<tr>")[3:]}  # type: ignore[union-attr]
    leaks = re.findall(r'<td class="access leak"[^>]*>(.*?)</td>', rows["sync_activity_log"])
    assert leaks and re.search(r"\d+ rows? of another organisation", leaks[0]), leaks
    proof = "<code>tests/test_02_rls.py::test_member_sees_only_own_organisation[sync_activity_log]</code>"
    assert "LEAK: proved by" in leaks[0] and proof in leaks[0], leaks[0]
    assert 'class="access leak"' not in rows["sync_progress"] and 'class="access ok"' in rows["sync_progress"]
