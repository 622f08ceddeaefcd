"""The cluster cache: runs copy the volume an earlier run loaded, never a stale or a damaged one."""

from __future__ import annotations

import datetime
import os
import signal
import time
from pathlib import Path

from readiness.databases.volume_cluster import VolumeCluster, cache_entry
from readiness.postgres import cache, server
from readiness.postgres.connection import Timeouts
from readiness.schema.files import DEFAULT_MIGRATION
from tests.suite.helpers import NESTED_VOLUME, ReadinessRun

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


def test_a_volume_whose_server_died_is_not_stored(nested_cache: Path, monkeypatch) -> None:
    """A volume server killed after the volume was ready (its UNLOGGED log would be emptied by crash recovery)
    is not stored in the cache; one stopped by the run is."""
    monkeypatch.setenv(cache.ROOT_ENV, str(nested_cache / "died"))
    for killed in (True, False):
        cluster = VolumeCluster(server.find_pg_ctl(None), DEFAULT_MIGRATION, 1000, Timeouts(), nested_cache / "v.log")
        assert not cluster.from_cache
        cluster.start()
        cluster.handle.wait()
        if killed:
            pid = int((Path(cluster.executor.datadir) / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while cluster.executor.running() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "postmaster gone" in cluster.handle.server_now()
        cluster.stop()
        assert cluster.entry.is_dir() is not killed, f"killed={killed}: entry stored: {cluster.entry.is_dir()}"


def test_an_entry_left_by_a_server_that_died_is_loaded_again(nested_cache: Path, monkeypatch) -> None:
    """An entry stored from a server that was not shut down (as runs stored one before this check) is dropped at
    the next run, which loads the volume again: crash recovery would have emptied its UNLOGGED activity log."""
    monkeypatch.setenv(cache.ROOT_ENV, str(nested_cache / "left-running"))
    pg_ctl = server.find_pg_ctl(None)
    first = VolumeCluster(pg_ctl, DEFAULT_MIGRATION, 1000, Timeouts(), nested_cache / "v.log")
    first.start()
    first.handle.wait()
    cache.copy(Path(first.executor.datadir), first.entry)  # a copy of a running cluster: its state "in production"
    first.stop()
    assert not server.shut_down_cleanly(first.entry)
    second = VolumeCluster(pg_ctl, DEFAULT_MIGRATION, 1000, Timeouts(), nested_cache / "v.log")
    assert not second.from_cache, "an entry of a server that was not shut down must not be copied"
    second.start()
    second.handle.wait()
    second.stop()
    assert server.shut_down_cleanly(second.entry), "the volume loaded again should be the entry now"


def test_sweep_passes_over_another_users_cluster(tmp_path: Path, monkeypatch) -> None:
    """A stale directory whose data this user may not read (root's, seen by a normal user) is left alone, and the
    sweep goes on: it used to raise PermissionError, and every run of that user failed at its start."""
    hours_ago = time.time() - 2 * 3600
    for name in ("others", "ours"):
        (tmp_path / f"{server.WORKDIR_PREFIX}{name}" / "data").mkdir(parents=True)
        os.utime(tmp_path / f"{server.WORKDIR_PREFIX}{name}", (hours_ago, hours_ago))
    exists = Path.exists

    def unreadable(path: Path) -> bool:
        if "others" in str(path) and path.name == "postmaster.pid":
            raise PermissionError(13, "Permission denied", str(path))
        return exists(path)

    monkeypatch.setattr(Path, "exists", unreadable)
    server.sweep(tmp_path)
    assert (tmp_path / f"{server.WORKDIR_PREFIX}others").exists()
    assert not exists(tmp_path / f"{server.WORKDIR_PREFIX}ours")
