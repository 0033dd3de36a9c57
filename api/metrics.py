"""Prometheus metrics of the API: requests by route template and status, and their latency."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app

# HTTP methods get their own label value; anything else a client makes up is "other", so that
# made-up methods cannot add series (each one did, with its whole name, before)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


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

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = method_label(request.method)
        requests.labels(method, template, str(response.status_code)).inc()
        latency.labels(method, template).observe(time.perf_counter() - t0)
        return response

    app.state.password_checks = Counter(
        "wastepilot_api_password_checks_total",
        "Passwords checked against their hash at sign-in (throttled attempts are not)",
        registry=registry,
    )
    app.mount("/metrics", make_asgi_app(registry))
    return registry
