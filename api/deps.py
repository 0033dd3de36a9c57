"""Dependencies shared by the routers: a database connection per request, lookups that 404."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
import psycopg
from fastapi import Depends, HTTPException, Path, Request, UploadFile
from fastapi.responses import StreamingResponse
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from bids.sheetbudget import read_sheet_within_budget
from bids.sheets import ATTENDANCE, MAX_FILE_BYTES, Layout, SheetRow
from core import clock
from core.registry import household_exists
from core.settings import Settings
from core.topics import DEVICE_ID_PATTERN

# the small dependencies are async: FastAPI runs a sync one on a worker thread, and each trip
# there and back waits its turn on a busy event loop


async def get_pool(request: Request) -> ConnectionPool:
    pool: ConnectionPool = request.app.state.pool
    return pool


Pool = Annotated[ConnectionPool, Depends(get_pool)]


T = TypeVar("T")
RETRY_AFTER_S = 5


def busy() -> HTTPException:
    return HTTPException(
        503,
        "the service is busy: try again in a few seconds",
        {"Retry-After": str(RETRY_AFTER_S)},
    )


@asynccontextmanager
async def admitted(request: Request, wait_s: float | None = None) -> AsyncIterator[None]:
    """A place among the requests that use the database, which are as many as the pool has
    connections: the one admission rule of routes, pages, authentication and sign-in.

    Waiting happens here, on the event loop, never on a worker thread: sync routes run on a
    limited set of threads, and were requests to wait for a connection *on* them, the requests
    holding connections could find no thread left to finish on. Past ``api_queue_max`` waiting,
    or after ``api_queue_wait_s`` (or ``wait_s``), the answer is 503 with Retry-After — an
    overloaded API says so at once rather than failing after a pool time-out or hanging."""
    state = request.app.state
    settings: Settings = state.settings
    slots: asyncio.Semaphore = state.db_slots
    if slots.locked() and state.db_waiting >= settings.api_queue_max:
        raise busy()
    state.db_waiting += 1
    try:
        async with asyncio.timeout(wait_s or settings.api_queue_wait_s):
            await slots.acquire()
    except TimeoutError:
        raise busy() from None
    finally:
        state.db_waiting -= 1
    try:
        yield
    finally:
        slots.release()


async def db_slot(request: Request) -> AsyncIterator[None]:
    """The request's place in the admission queue (``admitted``), for as long as it runs."""
    async with admitted(request):
        yield


async def with_connection(
    request: Request,
    work: Callable[[psycopg.Connection[tuple[object, ...]]], T],
    wait_s: float | None = None,
) -> T:
    """``work(conn)`` on a worker thread with a pooled connection, once admitted (waiting at
    most ``wait_s``); committed if it returns. For async routes and dependencies that need the
    database briefly."""
    pool: ConnectionPool = request.app.state.pool

    def call() -> T:
        with pool.connection() as conn:
            return work(conn)

    async with admitted(request, wait_s):
        return await run_in_threadpool(call)


class AdmittedStream(StreamingResponse):
    """A streamed answer that keeps its request's place in the admission queue (``place``,
    entered by the route, so that a 503 can still be sent) until the last byte is sent or the
    client has gone."""

    def __init__(self, place: AsyncExitStack, content: AsyncIterator[Any], **kw: Any) -> None:
        super().__init__(content, **kw)
        self.place = place

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.place.aclose()


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
    if not household_exists(conn, ref):
        raise HTTPException(
            status_code=404, detail=f"no household {ref!r} is registered in the pilot"
        )
    return ref


HouseholdRef = Annotated[str, Depends(household_ref)]


async def current_actor(request: Request) -> str:
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


async def app_settings(request: Request) -> Settings:
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


async def read_upload(
    request: Request, file: UploadFile, layout: Layout = ATTENDANCE
) -> list[SheetRow]:
    """An uploaded sheet's rows, read within its budget (bids/sheetbudget.py) before any
    database connection is taken. A read waits for one of the few sheet readers on the event
    loop, holding no worker thread meanwhile."""
    data = await file.read(MAX_FILE_BYTES + 1)
    readers: anyio.CapacityLimiter = request.app.state.sheet_readers
    return await anyio.to_thread.run_sync(
        read_sheet_within_budget, file.filename or "", data, layout, limiter=readers
    )
