"""Under pytest-xdist (-n 2) a readiness run signs off exactly as one process does."""

from __future__ import annotations

import pytest

from tests.suite.helpers import ReadinessRun, mutate
from tests.suite.test_broken_rls import ORG_MEMBER

pytestmark = pytest.mark.suite

LOG_SELECT = "CREATE POLICY sync_activity_log_select ON sync_activity_log FOR SELECT TO authenticated\n    USING "
MIGRATIONS = {
    "sound": None,
    "log open to every row": mutate(LOG_SELECT + ORG_MEMBER, LOG_SELECT + "(true)"),
    "not applying": mutate(
        "org_id UUID NOT NULL REFERENCES organization(id) ON DELETE CASCADE,\n    sync_id UUID NOT NULL,",
        "org_id UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,\n    sync_id UUID NOT NULL,",
    ),
}


def sign_off(run: ReadinessRun) -> dict:  # type: ignore[type-arg]
    """What a DBA signs: exit status, verdict, each task's status, where the blocking issues are.

    Not the counts or messages of failures: on a broken migration a property test's random
    examples may find the fault in one run and not the other, whatever the number of workers.
    """
    return {
        "exit status": run.exit_code,
        "verdict": run.signoff["verdict"],
        "tasks": run.statuses(),
        "blocking issues": sorted({(i["severity"], i["location"]) for i in run.signoff["blocking_issues"]}),
    }


@pytest.mark.parametrize("migration", MIGRATIONS)
def test_two_workers_sign_off_as_one_process(readiness_run, migration: str) -> None:
    """The same verdict, task statuses and blocking issues with -n 2 as without; all checks counted."""
    one = readiness_run(MIGRATIONS[migration])
    two = readiness_run(MIGRATIONS[migration], "-n", "2")  # the same report folder: `one` is read already
    assert one.signoff and two.signoff, one.output[-2000:] + two.output[-2000:]
    assert sign_off(two) == sign_off(one), f"-n 2:\n{two.output[-3000:]}\none process:\n{one.output[-3000:]}"
    checks = [[t["passed"] + t["failed"] + t["blocked"] for t in run.signoff["tasks"]] for run in (one, two)]
    assert checks[0] == checks[1], f"checks per task, one process then -n 2: {checks}"
    assert "server start (data directory + start)" in two.signoff["measurements"], "the controller starts the server"
