"""Connections with timeouts that never hang, and that wait while a server is starting up."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

APPLICATION_NAME = "readiness-0024"


@dataclass(frozen=True)
class Timeouts:
    """Per-connection limits: the suite waits for no lock and runs no statement forever."""

    lock_ms: int = 2000
    statement_ms: int = 120_000

    def options(self) -> str:
        return f"-c lock_timeout={self.lock_ms} -c statement_timeout={self.statement_ms}"


STARTING_UP = "57P03"  # cannot_connect_now: the server is starting up (or shutting down, or in recovery)
READY_LIMIT_S = 60  # how long a first connection waits for a server's start-up to end


def connect(conninfo: str, timeouts: Timeouts, **kwargs: object) -> psycopg.Connection:
    """A connection with the suite's timeouts and application_name; waits while the server is starting up."""
    deadline = time.monotonic() + READY_LIMIT_S
    while True:
        try:
            return psycopg.connect(
                conninfo, options=timeouts.options(), application_name=APPLICATION_NAME, connect_timeout=10, **kwargs
            )
        except psycopg.OperationalError as error:
            if not starting_up(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def starting_up(error: psycopg.OperationalError) -> bool:
    """Whether the server refused the connection because it is still starting up."""
    return error.sqlstate == STARTING_UP or "the database system is starting up" in str(error)
