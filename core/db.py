"""Database access: connection pools, opened by entry points and passed down."""

from __future__ import annotations

import logging
import os
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from core import queries as q

log = logging.getLogger(__name__)
# a connection as the domains take it (rows as tuples, or as a cursor's row factory makes them)
Conn = psycopg.Connection[Any]


# How the services' connections (open_pool, connect) run queries (issue 32, bench/queries.py):
# - No statement is prepared server-side. psycopg prepares a query run five times on a
#   connection, and PostgreSQL then plans it once for any parameters (a "generic plan") after
#   five more runs: for the analysts' queries, whose periods decide which chunks, rollups and
#   indexes to read, that plan walked every household's hourly rollup rows of the period only to
#   filter them out - a pilot's year series went from 18 ms to 180-440 ms on a pool connection's
#   eleventh run. Planned each time with its own parameters, a query costs a few ms of planning.
# - No JIT compilation: the current KPIs at 10,000 households spent 100 of their 370 ms
#   compiling 410 expressions (a query over many chunks passes jit_above_cost), for a query
#   that then runs once. (Added to the options the URL or PGOPTIONS give, which an explicit
#   `options` would otherwise replace.)
def session(url: str) -> dict[str, Any]:
    given = conninfo_to_dict(url).get("options") or os.environ.get("PGOPTIONS", "")
    return {"prepare_threshold": None, "options": f"{given} -c jit=off".strip()}


def open_pool(
    url: str,
    *,
    max_size: int = 8,
    min_size: int = 1,
    name: str = "wastepilot",
    wait: bool = True,
) -> ConnectionPool:
    """Open a pool. With ``wait`` it must get a connection within 30 s, so a wrong URL fails at
    start-up; without, a service starts while the database is away and reports not-ready."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        kwargs={"autocommit": False, "application_name": name, **session(url)},
        # A dropped server (restart, failover) leaves dead connections: check before lending.
        check=ConnectionPool.check_connection,
    )
    pool.open(wait=wait, timeout=30)
    return pool


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    """One connection, for commands and jobs that need no pool."""
    return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, **session(url))


def answers(url: str, timeout: int = 2) -> tuple[bool, str]:
    """Whether the database at ``url`` answers a trivial query (a readiness probe), and why not."""
    try:
        with psycopg.connect(url, connect_timeout=timeout) as conn:
            conn.execute(q.PING)
    except psycopg.Error as exc:
        return False, f"database unavailable: {type(exc).__name__}"
    return True, "ok"


def ping(pool: ConnectionPool, timeout: float = 2.0) -> bool:
    """Whether the database answers a trivial query within ``timeout`` seconds."""
    try:
        with pool.connection(timeout=timeout) as conn:
            conn.execute(q.PING)
    except (
        psycopg.Error,
        TimeoutError,
        OSError,
    ) as exc:  # pool timeout is PoolTimeout(OperationalError)
        log.debug("database ping failed: %s", exc)
        return False
    return True


# PostgreSQL server settings that keep personal data out of its log: errors without their
# DETAIL (a unique violation's DETAIL quotes the key: an attendee's email) and without the
# statement that failed. Set by the local services and by docker-compose.yml (a test checks).
SERVER_PRIVACY_SETTINGS = {
    "log_error_verbosity": "terse",
    "log_min_error_statement": "panic",
    "log_parameter_max_length_on_error": "0",
}
