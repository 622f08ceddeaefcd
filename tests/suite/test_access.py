"""The access matrix from what the isolation checks observed: each cell against the report's expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.acting import access
from readiness.acting.access import ANON, MEMBER, OTHER, SERVICE, Observation
from readiness.report.formats.signoff_json import as_json
from readiness.report.signoff import sign
from readiness.report.tally import Tally

pytestmark = pytest.mark.suite


def test_cells_are_judged_against_the_report() -> None:
    """A member kept from their own row is withheld, not red (granting less is sound); service_role kept from one
    is red but no leak; another organisation reaching a row is a leak naming the check that saw it (not the checks
    that saw it as expected); cells no check tried are absent."""
    seen = [
        Observation("sync_progress", "SELECT", MEMBER, "1 row", True, "t::a"),
        Observation("sync_progress", "UPDATE", MEMBER, "0 rows updated", False, "t::b"),
        Observation("sync_progress", "SELECT", OTHER, "0 rows", False, "t::c"),
        Observation("sync_progress", "SELECT", OTHER, "1 row", True, "t::d"),
        Observation("sync_progress", "SELECT", SERVICE, "both", True, "t::e"),
        Observation("sync_progress", "DELETE", SERVICE, "0 rows deleted", False, "t::g"),
        Observation("sync_activity_log_default", "INSERT", ANON, "accepted", True, "t::f"),
    ]
    rows = access.matrix(seen, ("sync_preview_cache", "sync_progress", "sync_activity_log"))
    assert list(rows) == ["sync_progress", "sync_activity_log_default"]  # tables in order, untried ones left out
    cells = rows["sync_progress"]
    assert cells[("SELECT", MEMBER)].as_expected and cells[("SELECT", SERVICE)].as_expected
    withheld = cells[("UPDATE", MEMBER)]
    assert withheld.as_expected and withheld.withheld and withheld.verdict == "withheld" and not withheld.leak
    refused = cells[("DELETE", SERVICE)]
    assert not refused.as_expected and not refused.leak and refused.verdict == "refused" and refused.checks == ["t::g"]
    leak = cells[("SELECT", OTHER)]
    assert leak.leak and leak.checks == ["t::d"] and leak.observed == "0 rows; 1 row"
    assert rows["sync_activity_log_default"][("INSERT", ANON)].leak


def test_signoff_json_carries_the_matrix() -> None:
    tally = Tally(Path("m.sql"), Path("r.sql"))
    tally.observations[Observation("sync_progress", "SELECT", ANON, "2 rows", True, "t::x")] = None
    matrix = as_json(sign(tally, Path.cwd()))["access_matrix"]
    assert matrix["commands"] == ["SELECT", "INSERT", "UPDATE", "DELETE"] and ANON in matrix["actors"]  # type: ignore[index]
    (row,) = matrix["rows"]  # type: ignore[index]
    assert row["table"] == "sync_progress" and row["cells"] == [
        {"command": "SELECT", "actor": ANON, "observed": "2 rows", "expected": "reaches nothing", "as_expected": False,
         "leak": True, "withheld": False, "checks": ["t::x"]}
    ]  # fmt: skip
