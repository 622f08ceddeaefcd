"""The cluster cache: runs copy the volume an earlier run loaded, never a stale or a damaged one."""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

from readiness import cache, server
from readiness.database import DEFAULT_MIGRATION
from readiness.volume_cluster import cache_entry
from tests.suite.conftest import NESTED_VOLUME, ReadinessRun

LOADED = f"volume: {NESTED_VOLUME:,} activity-log rows"
COPIED = "volume: copied from the cache and started"


def volume_steps(run: ReadinessRun) -> set[str]:
    return {name for name in run.signoff["measurements"] if name in (LOADED, COPIED)}


def volume_entries(root: Path) -> list[str]:
    return sorted(path.name for path in root.glob("volume-*"))


def test_next_run_copies_the_volume_and_a_changed_migration_loads_its_own(readiness_run, tmp_path: Path) -> None:
    """A second run copies the volume the first loaded, with the same verdict; a changed 0024 is loaded anew."""
    env = {cache.ROOT_ENV: str(tmp_path / "cache")}
    first = readiness_run(None, env=env)
    assert (first.exit_code, first.signoff["verdict"]) == (0, "APPROVED"), first.output[-3000:]
    assert volume_steps(first) == {LOADED}, f"first run with an empty cache: {first.signoff['measurements']}"
    assert len(volume_entries(tmp_path / "cache")) == 1
    # The terminal says what the long steps are doing, during the tests (past pytest's capture).
    loading = f"volume for task 3: {NESTED_VOLUME:,} activity-log rows, 100 organisations; loading it in the background"
    assert loading in first.output, first.output[-3000:]
    assert "hypothesis: test_random_worlds_match_the_model, up to 25 random examples" in first.output

    second = readiness_run(None, env=env)
    assert (second.exit_code, second.signoff["verdict"]) == (0, "APPROVED"), second.output[-3000:]
    assert volume_steps(second) == {COPIED}, f"second run: {second.signoff['measurements']}"
    assert second.statuses() == first.statuses()
    assert "copying it from the cache" in second.output, second.output[-3000:]

    changed = DEFAULT_MIGRATION.read_text() + "\n-- one comment more: another migration file\n"
    third = readiness_run(changed, env=env)
    assert third.signoff["verdict"] == "APPROVED", third.output[-3000:]
    assert volume_steps(third) == {LOADED}, f"a changed migration must not get the cached volume: {third.signoff}"
    assert len(volume_entries(tmp_path / "cache")) == 2


def test_damaged_entry_is_dropped_and_the_volume_loaded_again(readiness_run, tmp_path: Path, monkeypatch) -> None:
    """An entry that does not start as a cluster is removed; the run loads the volume and stores a good entry."""
    monkeypatch.setenv(cache.ROOT_ENV, str(tmp_path / "cache"))  # for cache_entry() here
    entry = cache_entry(server.find_pg_ctl(None), DEFAULT_MIGRATION, NESTED_VOLUME)
    entry.mkdir(parents=True)
    (entry / "PG_VERSION").write_text("not a cluster\n")

    run = readiness_run(None, env={cache.ROOT_ENV: str(tmp_path / "cache")})
    assert (run.exit_code, run.signoff["verdict"]) == (0, "APPROVED"), run.output[-3000:]
    assert volume_steps(run) == {LOADED}, f"a damaged entry must be loaded anew: {run.signoff['measurements']}"
    assert (entry / "global" / "pg_control").is_file(), "the run should have stored a whole cluster as the entry"


def test_store_keeps_the_first_whole_entry_and_prune_the_newest(tmp_path: Path, monkeypatch) -> None:
    """Two runs storing one entry: the first stays whole, the second's copy is dropped; prune keeps the newest."""
    monkeypatch.setenv(cache.ROOT_ENV, str(tmp_path / "cache"))
    entry = cache.root() / "volume-x"
    for content in ("first", "second"):
        datadir = tmp_path / content
        datadir.mkdir()
        (datadir / "PG_VERSION").write_text(content)
        cache.store(datadir, entry, move=True)
        assert not datadir.exists(), "a moved data directory is gone from where it was"
    assert (entry / "PG_VERSION").read_text() == "first"
    assert [path.name for path in cache.root().iterdir()] == ["volume-x"], "no partial entry is left behind"

    for age, name in enumerate(["volume-old", "volume-older"], start=1):
        (cache.root() / name).mkdir()
        stamp = entry.stat().st_mtime - 100 * age
        os.utime(cache.root() / name, (stamp, stamp))
    cache.prune("volume-", keep=2)
    assert sorted(path.name for path in cache.root().iterdir()) == ["volume-old", "volume-x"]


def test_sweep_removes_only_clusters_left_stopped_for_an_hour(tmp_path: Path) -> None:
    """A killed run's cluster directory is removed; a running one, a fresh one and other directories are kept."""
    hours_ago = time.time() - 2 * 3600

    def workdir(name: str, *, old: bool, running: bool) -> Path:
        path = tmp_path / name
        (path / "data").mkdir(parents=True)
        if running:
            (path / "data" / "postmaster.pid").write_text("4242\n")
        if old:
            os.utime(path, (hours_ago, hours_ago))
        return path

    left = workdir(f"{server.WORKDIR_PREFIX}killed", old=True, running=False)
    kept = [
        workdir(f"{server.WORKDIR_PREFIX}running", old=True, running=True),
        workdir(f"{server.WORKDIR_PREFIX}starting", old=False, running=False),
        workdir("someone-elses", old=True, running=False),
    ]
    server.sweep(tmp_path)
    assert not left.exists(), "a stopped cluster untouched for two hours should be removed"
    assert all(path.exists() for path in kept), [path.name for path in kept if not path.exists()]


def test_volume_entry_is_named_by_its_inputs_and_week(tmp_path: Path, monkeypatch) -> None:
    """Another input file or another ISO week names another entry: a volume is never older than its week."""
    monkeypatch.setenv(cache.ROOT_ENV, str(tmp_path))
    sql_file = tmp_path / "0024.sql"
    sql_file.write_text("CREATE TABLE t ();")

    def entry_on(day: datetime.date) -> str:
        return cache.volume_entry("17.10", 1000, [sql_file], today=day).name

    monday, sunday, next_monday = datetime.date(2026, 11, 23), datetime.date(2026, 11, 29), datetime.date(2026, 11, 30)
    assert entry_on(monday) == entry_on(sunday)
    assert entry_on(next_monday) != entry_on(sunday)
    before = entry_on(monday)
    sql_file.write_text("CREATE TABLE t (id int);")
    assert entry_on(monday) != before
