"""The HTML sign-off as a person sees it: loaded in headless Chromium, it opens on the verdict and the table."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

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
