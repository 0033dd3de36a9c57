"""The FastAPI application. Nothing connects at import: the lifespan opens the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.routers import health, usage
from core.db import open_pool
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database pool opens when the app starts and closes when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or get_settings()
        # the API starts while the database is away and says so on /readyz
        pool = open_pool(s.db_url(), max_size=s.db_pool_max, name="wastepilot-api", wait=False)
        app.state.pool = pool
        app.state.settings = s
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="wastepilot API",
        version="1",
        summary="Food-waste disposer pilot usage for analysts; bid-support records for officers.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(usage.router)
    return app
