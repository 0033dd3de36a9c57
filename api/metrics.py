"""Prometheus metrics of the API: requests by route template and status, and their latency."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# HTTP methods get their own label value; anything else a client makes up is "other", so that
# made-up methods cannot add series (each one did, with its whole name, before)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


class Measured:
    """Calls ``measure`` around every HTTP request (other scopes pass through)."""

    def __init__(self, app: ASGIApp, measure: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.measure = measure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.measure(scope, receive, send, self.app)


def instrument(app: FastAPI) -> CollectorRegistry:
    """Count and time every request (labelled by route template, never by raw path, so ids in
    paths do not explode the series) and serve them at /metrics."""
    registry = CollectorRegistry()
    requests = Counter(
        "wastepilot_api_requests_total",
        "HTTP requests answered",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "wastepilot_api_request_duration_seconds",
        "Time to answer a request",
        ["method", "route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )

    async def measure(scope: Scope, receive: Receive, send: Send, inner: ASGIApp) -> None:
        status = 500  # what the client gets if the app fails before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        t0 = time.perf_counter()
        try:
            await inner(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            method = method_label(scope["method"])
            requests.labels(method, template, str(status)).inc()
            latency.labels(method, template).observe(time.perf_counter() - t0)

    # a pure ASGI middleware: cheaper per request than @app.middleware("http"), which matters
    # when a flood of cheap requests shares the event loop with everybody else
    app.add_middleware(Measured, measure=measure)
    app.state.password_checks = Counter(
        "wastepilot_api_password_checks_total",
        "Passwords checked against their hash at sign-in (throttled attempts are not)",
        registry=registry,
    )
    app.mount("/metrics", make_asgi_app(registry))
    return registry
