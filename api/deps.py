"""Dependencies shared by the routers: a database connection per request, lookups that 404."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from fastapi import Depends, HTTPException, Path, Request
from psycopg_pool import ConnectionPool

from api import queries as q
from core import clock
from core.settings import Settings
from core.topics import DEVICE_ID_PATTERN


def get_pool(request: Request) -> ConnectionPool:
    pool: ConnectionPool = request.app.state.pool
    return pool


Pool = Annotated[ConnectionPool, Depends(get_pool)]


async def db_slot(request: Request) -> AsyncIterator[None]:
    """Wait, without holding a worker thread, until the pool has a connection for this request.

    Sync routes and their sync dependencies run on a limited set of worker threads. Were more
    requests than pool connections to wait for a connection *on* those threads, the requests
    holding connections could find no thread left to finish on, and all would stall until the
    pool's timeout. Queueing here, on the event loop, first keeps that from happening."""
    slots: asyncio.Semaphore = request.app.state.db_slots
    async with slots:
        yield


def get_conn(
    pool: Annotated[ConnectionPool, Depends(get_pool)],
    _slot: Annotated[None, Depends(db_slot, scope="function")],
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A pooled connection for one request; committed if the route returns, rolled back if not."""
    with pool.connection() as conn:
        yield conn


# "function" scope: the transaction commits before the response is sent, so a client that was
# told 201 can read its change at once, and a failed commit is an error response, not a 201
Conn = Annotated[psycopg.Connection[tuple[object, ...]], Depends(get_conn, scope="function")]


def household_ref(
    ref: Annotated[
        str, Path(pattern=DEVICE_ID_PATTERN, description="Pseudonymous household reference")
    ],
    conn: Conn,
) -> str:
    """The household reference of the path, or 404 when no such household is registered."""
    if conn.execute(q.HOUSEHOLD_EXISTS, (ref,)).fetchone() is None:
        raise HTTPException(
            status_code=404, detail=f"no household {ref!r} is registered in the pilot"
        )
    return ref


HouseholdRef = Annotated[str, Depends(household_ref)]


def current_actor(request: Request) -> str:
    """Who is making the request, for the audit log: the signed-in user (the router's role
    check has already authenticated the request)."""
    p = getattr(request.state, "principal", None)
    return p.username if p is not None else "api"


Actor = Annotated[str, Depends(current_actor)]


def audited_conn(conn: Conn, actor: Actor) -> psycopg.Connection[tuple[object, ...]]:
    """The request's connection, with its transaction's changes attributed to the actor."""
    from core.audit import set_actor

    set_actor(conn, actor)
    return conn


AuditedConn = Annotated[psycopg.Connection[tuple[object, ...]], Depends(audited_conn)]


def app_settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


AppSettings = Annotated[Settings, Depends(app_settings)]


def checked_zone(tz: str) -> str:
    """``tz`` when it is an IANA time zone, else a 422 that says what to send."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise HTTPException(
            422, f"unknown time zone {tz!r}; use an IANA name such as Europe/London"
        ) from None
    return tz


def checked_period(
    start: datetime | None, end: datetime | None, *, default_days: int = 7
) -> tuple[datetime, datetime]:
    """[start, end) with the defaults (end = now by the pilot's clock, start = ``default_days``
    before), both with an offset and in 2000-2099, start before end; else a 422."""
    for t in (start, end):
        if t is not None and (t.tzinfo is None or not 2000 <= t.year < 2100):
            raise HTTPException(422, "start and end need an offset and a year 2000-2099")
    end = end or clock.now()
    start = start or end - timedelta(days=default_days)
    if start >= end:
        raise HTTPException(422, "start must be before end")
    return start, end
