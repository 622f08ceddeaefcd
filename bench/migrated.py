"""What the benchmarks start from: a throw-away server with the project's 0024 built on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from readiness.databases.build import MigrationState, create_ephemeral
from readiness.postgres import server
from readiness.postgres.connection import Timeouts
from readiness.schema.files import DEFAULT_MIGRATION


@contextmanager
def migrated_server() -> Iterator[tuple[server.Executor, MigrationState, dict[str, float]]]:
    """The server, the database built on it, and the seconds the server start and the schema build took."""
    started = time.perf_counter()
    with server.ephemeral_server(server.find_pg_ctl(None)) as pg:
        ready = time.perf_counter()
        state = create_ephemeral(pg.host, pg.port, pg.user, Timeouts(), DEFAULT_MIGRATION)
        assert state.applied, state.blocked_reason
        yield pg, state, {"server start": ready - started, "schema build": time.perf_counter() - ready}
