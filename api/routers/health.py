"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from core.db import ping

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to serve: the database answers", response_model=None)
def readyz(request: Request) -> JSONResponse:
    """200 when the database answers a query within two seconds, else 503."""
    if ping(request.app.state.pool):
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready", "reason": "database unavailable"}, status_code=503)
