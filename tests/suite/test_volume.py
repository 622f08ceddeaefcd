"""The volume generator gives every organisation each kind of row task 3's plans query.

Users get their place n in the volume by the order of random UUIDs: a kind of row that
followed n (as cache keys once did) went missing for some organisations in some loads, and
task 3 failed on a sound migration. Checked here over all 100 organisations of a small load;
and that what is dated relative to the load keeps its proportions while the volume is cached.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from readiness import PROJECT_ROOT
from readiness.databases import volume
from readiness.databases.build import create_with_prerequisites
from readiness.databases.volume_cluster import VolumeHandle
from readiness.postgres.connection import Timeouts, connect
from readiness.schema.apply import apply_file
from readiness.schema.files import DEFAULT_MIGRATION
from tests.suite.helpers import mutate

pytestmark = pytest.mark.suite

DBNAME = "readiness_volume_check"
PER_ORGANISATION = {
    "previews with a cache key": "SELECT DISTINCT org_id FROM sync_preview_cache WHERE cache_key IS NOT NULL",
    "previews without one": "SELECT DISTINCT org_id FROM sync_preview_cache WHERE cache_key IS NULL",
    "running jobs": "SELECT DISTINCT org_id FROM sync_progress WHERE status = 'in_progress'",
    "finished jobs": "SELECT DISTINCT org_id FROM sync_progress WHERE completed_at IS NOT NULL",
    "previews of each sync type": (
        "SELECT org_id FROM sync_preview_cache GROUP BY 1 HAVING count(DISTINCT sync_type) = 4"
    ),
    "syncs with log rows": "SELECT DISTINCT p.org_id FROM sync_progress p JOIN sync_activity_log l USING (sync_id)",
}


@pytest.fixture(scope="module")
def loaded(pg_server) -> Iterator[psycopg.Connection]:  # type: ignore[no-untyped-def]
    """A small volume (the organisations, users, previews and jobs in full; 60,000 log rows)."""
    janitor = DatabaseJanitor(user=pg_server.user, host=pg_server.host, port=pg_server.port, dbname=DBNAME)
    conninfo = create_with_prerequisites(pg_server.host, pg_server.port, pg_server.user, Timeouts(), DBNAME)
    try:
        with connect(conninfo, Timeouts()) as conn:
            apply_file(conn, DEFAULT_MIGRATION)
        volume.load(conninfo, 60_000, lambda info, **kw: connect(info, Timeouts(statement_ms=0), **kw))
        with connect(conninfo, Timeouts()) as conn:
            yield conn
    finally:
        janitor.drop()


def test_expired_previews_stay_few_while_the_volume_is_cached(loaded: psycopg.Connection) -> None:
    """1 preview in 62 is expired, now and a week on (the cache keeps a volume for its ISO week)."""
    share = "SELECT avg((expires_at < now() + %s::interval)::int)::float FROM sync_preview_cache"
    now, week_on = (loaded.execute(share, (later,)).fetchone()[0] for later in ("0 days", "7 days"))
    assert (round(now, 3), round(week_on, 3)) == (round(1 / 62, 3), round(1 / 62, 3)), (
        f"expired previews: {now:.1%} now, {week_on:.1%} a week on; expected {1 / 62:.1%} both: the plan for "
        "auto_cleanup_preview_cache() turns to a sequential scan when most are expired"
    )


@pytest.mark.parametrize("kind", PER_ORGANISATION)
def test_every_organisation_has_rows_of_each_kind(loaded: psycopg.Connection, kind: str) -> None:
    """Each of the volume's organisations has rows of `kind`."""
    having = {row[0] for row in loaded.execute(PER_ORGANISATION[kind])}
    organisations = {row[0] for row in loaded.execute("SELECT id FROM organization WHERE slug LIKE 'volume-%'")}
    assert len(organisations) == volume.ORGS
    missing = organisations - having
    assert not missing, f"{len(missing)} of {volume.ORGS} organisations have no {kind}"


def test_a_volume_server_that_stopped_answering_is_described(tmp_path) -> None:
    """When the volume's server stops answering after it was ready, the failure says whether its postmaster lives,
    whether its directory is there, and how its log ends (a server that vanished under load was once undiagnosable)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "postmaster.pid").write_text("999999999\n")  # no such process
    (tmp_path / "postgresql.log").write_text("LOG:  starting\nLOG:  checkpoint complete\n")
    handle = VolumeHandle("127.0.0.1", 1, "postgres", str(tmp_path / "volume-status"))
    assert handle.server_now() == (
        f"postmaster gone; {tmp_path} exists; its log ends: LOG:  starting | LOG:  checkpoint complete"
    )
    (tmp_path / "data" / "postmaster.pid").write_text(f"{os.getpid()}\n")
    assert handle.server_now().startswith(f"postmaster {os.getpid()} alive; ")
    gone = VolumeHandle("127.0.0.1", 1, "postgres", str(tmp_path / "gone" / "volume-status"))
    assert gone.server_now() == f"postmaster gone, no postmaster.pid; {tmp_path / 'gone'} is gone; its log ends: no log"


def test_a_rule_the_volume_breaks_blocks_task_3_in_words(readiness_run) -> None:  # type: ignore[no-untyped-def]
    """A migration whose own CHECK refuses rows the volume makes (no supplier log rows here) is not failed with the
    driver's words: task 3's checks at volume are BLOCKED, naming the constraint as a limit of the gate."""
    text = mutate("\nCOMMIT;", "\nALTER TABLE sync_activity_log ADD CONSTRAINT no_supplier_rows "
                               "CHECK (entity_type <> 'supplier');\nCOMMIT;")  # fmt: skip
    run = readiness_run(text, str(PROJECT_ROOT / "tests" / "test_03_indexes.py"))
    task = run.signoff["tasks"][2]
    assert task["status"] == "BLOCKED", task
    assert "constraint no_supplier_rows of sync_activity_log" in task["comments"], task["comments"]
    assert "limit of the gate's generator, not a fault of 0024" in task["comments"], task["comments"]
    assert "CheckViolation" not in json.dumps(run.signoff), "the driver's words reached the sign-off"
