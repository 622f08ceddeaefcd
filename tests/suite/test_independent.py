"""Sound 0024s written by another hand from the report alone (tests/suite/family/others/, see its README) are APPROVED,
however much less than ours they grant; their broken copies are caught, named, not hidden behind false blocks.

`ledger`: bigint identity keys; the activity log append-only for users (its UPDATE and DELETE policies USING (false),
and no UPDATE or DELETE privilege); anon with no privilege at all; CHECK constraints between timestamps
(expires_at > computed_at, updated_at >= started_at) and between counters; elapsed as an interval; monthly log
partitions without a default, made ahead by a helper function the rollback drops.
`guarded`: uuid keys not named id; tenants kept apart by a RESTRICTIVE policy per table (through a SECURITY DEFINER
helper) under the report's 12 permissive policies, which only say who may act at all; quarterly partitions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.acting.access import ANON, MEMBER, OTHER
from tests.suite.family.mutants import widened
from tests.suite.helpers import ReadinessRun

pytestmark = pytest.mark.suite

OTHERS = Path(__file__).parent / "family" / "others"


def files(name: str) -> tuple[str, str]:
    return (OTHERS / f"{name}.sql").read_text(), (OTHERS / f"{name}_down.sql").read_text()


def cells(run: ReadinessRun) -> dict[tuple[str, str, str], dict]:  # type: ignore[type-arg]
    return {(row["table"], c["command"], c["actor"]): c for row in run.signoff["access_matrix"]["rows"]
            for c in row["cells"]}  # fmt: skip


@pytest.mark.parametrize("name", ["ledger", "guarded"])
def test_sound_0024_by_another_hand_is_approved(readiness_run, name: str) -> None:
    """A sound 0024 written by another hand is APPROVED with every task PASS; no cell of the access matrix is red, and
    what it withholds from an organisation's own users is listed as a design difference, never a block."""
    migration, rollback = files(name)
    run = readiness_run(migration, rollback_text=rollback)
    assert (run.exit_code, run.signoff.get("verdict")) == (0, "APPROVED"), [
        (issue["message"][:400], issue["location"]) for issue in run.signoff.get("blocking_issues", [])
    ] or run.output[-3000:]
    assert set(run.statuses().values()) == {"PASS"}, run.statuses()
    red = {key: cell["observed"] for key, cell in cells(run).items() if not cell["as_expected"]}
    assert red == {}, red
    if name == "ledger":  # append-only for users, and anon refused outright
        withheld = cells(run)[("sync_activity_log", "UPDATE", MEMBER)]
        assert withheld["withheld"] and "refused 42501" in withheld["observed"], withheld
        assert "refused 42501" in cells(run)[("sync_progress", "SELECT", ANON)]["observed"]
        listed = [d for d in run.signoff["design_differences"] if "sync_activity_log rows what ours lets them" in
                  d["found"]]  # fmt: skip
        assert listed, run.signoff["design_differences"]
    else:
        listed = [d["found"] for d in run.signoff["design_differences"] if d["subject"] ==
                  "policies beyond the report's twelve"]  # fmt: skip
        assert listed and "sync_progress_tenant_guard" in listed[0], run.signoff["design_differences"]


BROKEN = {
    # the issue's own example: the ledger's sync_progress_select opened to every organisation's failed jobs
    "ledger, a SELECT widened": ("ledger", "sync_progress_select", "select", "status = 'failed'",
                                 "sync_progress_select lets any signed-in user read every organisation's rows where "
                                 "status = 'failed'", ("sync_progress", "SELECT")),
    # a guard widened: every command of the table opens those rows, whatever the permissive policies say
    "guarded, the guard widened": ("guarded", "sync_preview_cache_tenant_guard", "select", "cache_key IS NULL",
                                   "lets any signed-in user read every organisation's rows where", (
                                       "sync_preview_cache", "SELECT")),
}  # fmt: skip


@pytest.mark.parametrize(("name", "policy", "command", "condition", "message", "cell"), BROKEN.values(),
                         ids=BROKEN.keys())  # fmt: skip
def test_broken_copy_is_caught_and_named(
    readiness_run, name: str, policy: str, command: str, condition: str, message: str, cell: tuple[str, str]
) -> None:
    """The same sound file with one policy widened by `OR <a condition on the row>` is NOT APPROVED by task 2, the
    condition named, the leak seen by a user of another organisation; and nothing else blocks."""
    migration, rollback = files(name)
    run = readiness_run(widened(migration, policy, command, condition), "tests/test_02_rls.py",
                        rollback_text=rollback)  # fmt: skip
    assert (run.exit_code, run.signoff.get("verdict"), run.statuses()[2]) == (1, "NOT APPROVED", "FAIL"), (
        run.output[-3000:]
    )
    issues = run.signoff["blocking_issues"]
    isolation = [issue for issue in issues if issue["requirement"]["id"] == "report.isolation"]
    assert len(isolation) == 1 and message in isolation[0]["message"], issues
    others = [issue["message"][:200] for issue in issues if issue not in isolation and
              issue["requirement"]["id"] != "report.all-tasks"]  # fmt: skip
    assert others == [], others
    assert cells(run)[(*cell, OTHER)]["leak"], cells(run)[(*cell, OTHER)]
