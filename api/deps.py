"""Dependencies shared by the routers: a database connection per request, lookups that 404."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Path, Request
from psycopg_pool import ConnectionPool

from core.topics import DEVICE_ID_PATTERN


def get_pool(request: Request) -> ConnectionPool:
    pool: ConnectionPool = request.app.state.pool
    return pool


def get_conn(
    pool: Annotated[ConnectionPool, Depends(get_pool)],
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A pooled connection for one request; committed if the route returns, rolled back if not."""
    with pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection[tuple[object, ...]], Depends(get_conn)]


def household_ref(
    ref: Annotated[
        str, Path(pattern=DEVICE_ID_PATTERN, description="Pseudonymous household reference")
    ],
    conn: Conn,
) -> str:
    """The household reference of the path, or 404 when no such household is registered."""
    if conn.execute("SELECT 1 FROM households WHERE ref = %s", (ref,)).fetchone() is None:
        raise HTTPException(
            status_code=404, detail=f"no household {ref!r} is registered in the pilot"
        )
    return ref


HouseholdRef = Annotated[str, Depends(household_ref)]
