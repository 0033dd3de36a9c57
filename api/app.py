"""The FastAPI application. Nothing connects at import: the lifespan opens the pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api import signin
from api.auth import SESSION_COOKIE, allow, check_token
from api.errors import USER_ERRORS, status_of
from api.metrics import instrument
from api.routers import (
    admin,
    alerts,
    analytics,
    bids,
    councils,
    health,
    notify,
    reports,
    usage,
    workshops,
)
from api.security import DEFAULT_BODY_LIMIT, RequestGuard
from api.web.assets import mount_web
from api.web.common import error_page, signed_in, wants_page
from bids import sheetbudget
from core.db import open_pool
from core.errors import WastepilotError
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database pool opens when the app starts and closes when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or get_settings()
        # the API starts while the database is away and says so on /readyz
        pool = open_pool(s.db_url(), max_size=s.db_pool_max, name="wastepilot-api", wait=False)
        app.state.pool = pool
        app.state.db_slots = asyncio.Semaphore(s.db_pool_max)  # api/deps.py: admitted()
        app.state.db_waiting = 0
        app.state.hashing = asyncio.Semaphore(signin.HASHING)
        app.state.hash_waiting = 0
        app.state.hashers = signin.hashing_executor()
        app.state.sign_in_blocked = {}  # api/signin.py: keys found throttled, until when
        app.state.sheet_readers = anyio.CapacityLimiter(sheetbudget.PARALLEL)
        app.state.settings = s
        try:
            yield
        finally:
            pool.close()
            app.state.hashers.shutdown(wait=False)

    app = FastAPI(
        title="wastepilot API",
        version="1",
        summary="Food-waste disposer pilot usage for analysts; bid-support records for officers.",
        lifespan=lifespan,
        max_body_size=DEFAULT_BODY_LIMIT,  # per route where more is needed (sheet imports)
        docs_url=None,  # served from local assets by mount_web
        redoc_url=None,
    )
    app.state.metrics = instrument(app)
    app.include_router(health.router)
    app.include_router(admin.public)
    app.include_router(notify.router)  # GOV.UK Notify's receipts, by the callback's own token
    analysts = [Depends(allow("analyst"))]
    officers = [Depends(allow("officer"))]
    for r in (usage.router, analytics.router, alerts.router):
        app.include_router(r, dependencies=analysts)
    for r in (councils.router, workshops.router, bids.router, reports.router):
        app.include_router(r, dependencies=officers)
    app.include_router(admin.router, dependencies=[Depends(allow("admin"))])
    mount_web(app)
    # outermost: headers on every answer, and no body read before its size and credential
    app.add_middleware(
        RequestGuard,
        session_cookie=SESSION_COOKIE,
        check=check_token,
        early=signin.early_refusal,
    )

    async def domain_error(request: Request, exc: Exception) -> Response:
        # a domain error of a kind (core/errors.py): its status by the kind, its message shown
        assert isinstance(exc, WastepilotError)  # noqa: S101  (registered for those only)
        status = status_of(exc) or 500
        if wants_page(request):
            return error_page(request, status, str(exc), await signed_in(request))
        headers = {"Retry-After": "30"} if status == 503 else None
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    for kind in USER_ERRORS:
        app.add_exception_handler(kind, domain_error)

    @app.exception_handler(psycopg.DataError)
    async def data_error(request: Request, exc: psycopg.DataError) -> Response:
        # the database refused a value the models let through (e.g. a date out of its range)
        if wants_page(request):
            message = "The web address has a value out of range: check it."
            return error_page(request, 400, message, await signed_in(request))
        return JSONResponse(
            {"detail": f"a value is out of range: {exc.diag.message_primary or exc}"},
            status_code=422,
        )

    return app
