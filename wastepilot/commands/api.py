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

    from api import server
    from api.app import create_app

    s = get_settings()
    server.raise_open_file_limit()
    config = server.config(create_app(s), s, host=host or s.api_host, port=port or s.api_port)
    uvicorn.Server(config).run()
