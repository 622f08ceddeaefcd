"""Stopped clusters' data directories, kept between runs: initdb's output, and the loaded volume.

An entry is named by what made it (server, locale, OS user; for the volume also the SQL files,
the generator and the row count), so a change to any of them makes a new entry instead of
reusing a stale one. Entries are written under a temporary name and renamed into place: a
reader sees whole entries only. A run copies an entry and starts its copy, never the entry.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

from readiness import PROJECT_ROOT

ROOT_ENV = "READINESS_CACHE"
VOLUME_ENTRIES_KEPT = 3  # most recently used; a volume of 1M rows takes about 0.5 GB


def root() -> Path:
    """The cache directory: READINESS_CACHE, else .postgresql/cache in the project."""
    return Path(os.environ.get(ROOT_ENV) or PROJECT_ROOT / ".postgresql" / "cache")


def digest(*parts: bytes | str) -> str:
    """A short hash of `parts`, each length-prefixed so that no two lists of parts collide."""
    sha = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        sha.update(len(data).to_bytes(8, "big") + data)
    return sha.hexdigest()[:16]


def initdb_entry(pg_ctl: Path, version: str, superuser: str = "postgres") -> Path:
    """Where initdb's output for this server, locale, OS user and bootstrap superuser is kept."""
    locale = [os.environ.get(name, "") for name in ("LC_ALL", "LC_CTYPE", "LANG")]
    other = [superuser] if superuser != "postgres" else []  # the entries made before superusers were named stay valid
    return root() / f"initdb-{version}-{digest(str(pg_ctl.resolve()), str(os.geteuid()), *locale, *other)}"


def volume_entry(version: str, rows: int, inputs: list[Path], today: datetime.date | None = None) -> Path:
    """Where the volume loaded this week from these files (SQL and generator) at `rows` rows is kept.

    The week is part of the name: the volume's rows and partitions are dated relative to the
    day it was loaded, so it is loaded again each week rather than aged into other plans.
    """
    week = (today or datetime.date.today()).strftime("%G-W%V")
    return root() / f"volume-{version}-{rows}-{week}-{digest(str(os.geteuid()), *(p.read_bytes() for p in inputs))}"


def copy(entry: Path, datadir: Path) -> None:
    """Copy `entry` to the new directory `datadir`, keeping owners and modes (the server user's, as root)."""
    subprocess.run(["cp", "-a", str(entry), str(datadir)], check=True, capture_output=True)
    os.utime(entry)  # most recently used, for prune()


def store(datadir: Path, entry: Path, *, move: bool) -> None:
    """Make the stopped cluster at `datadir` the entry `entry` (moved, or copied); a run that stored it first wins."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = entry.with_name(f".{entry.name}.{os.getpid()}-{threading.get_ident()}")
    if not (move and _renamed(datadir, partial)):
        # cp -a keeps the owner (the server user's, as root); shutil.move across file systems does not
        subprocess.run(["cp", "-a", str(datadir), str(partial)], check=True, capture_output=True)
        if move:
            shutil.rmtree(datadir)
    try:
        partial.rename(entry)
    except OSError:  # stored meanwhile by another run
        shutil.rmtree(partial, ignore_errors=True)


def _renamed(source: Path, target: Path) -> bool:
    """Rename `source` to `target`; False when they are on different file systems."""
    try:
        source.rename(target)
    except OSError:
        return False
    return True


def prune(prefix: str, keep: int) -> None:
    """Remove all but the `keep` most recently used entries whose name starts with `prefix`."""
    entries = sorted(root().glob(f"{prefix}*"), key=lambda path: path.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        shutil.rmtree(stale, ignore_errors=True)
