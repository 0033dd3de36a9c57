"""`wastepilot api`: the HTTP API and pages."""

from __future__ import annotations

from typing import Annotated

import typer

from core.settings import get_settings


def api_cmd(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default WASTEPILOT_API_HOST)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default WASTEPILOT_API_PORT)")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app

    s = get_settings()
    app_ = create_app(s)
    # no access log: request paths hold household references and search terms (personal
    # data); requests are counted by route template on /metrics instead
    uvicorn.run(
        app_,
        host=host or s.api_host,
        port=port or s.api_port,
        log_level="info",
        access_log=False,
    )
