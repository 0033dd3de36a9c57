"""Serving the web pages and their assets (installed from npm by scripts/bootstrap)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
NODE = HERE / "node_modules"


def mount_web(app: FastAPI) -> None:
    """The pages, /static/govuk (GOV.UK Frontend), /static/chart.js and our own /static files.
    Missing npm assets leave the pages unstyled but working (their tables are plain HTML)."""
    from api.web.common import page_errors
    from api.web.pages import router

    app.include_router(router)
    page_errors(app)
    app.mount(
        "/static/govuk",
        StaticFiles(directory=NODE / "govuk-frontend/dist/govuk", check_dir=False),
        name="govuk",
    )
    app.mount(
        "/static/chart.js",
        StaticFiles(directory=NODE / "chart.js/dist", check_dir=False),
        name="chartjs",
    )
    app.mount(
        "/static/swagger",
        StaticFiles(directory=NODE / "swagger-ui-dist", check_dir=False),
        name="swagger",
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI from this site's own assets (FastAPI's default page loads it from a
        CDN, with an inline script the pages' content security policy refuses)."""
        return HTMLResponse(DOCS_PAGE)


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>wastepilot API - documentation</title>
  <link rel="stylesheet" href="/static/swagger/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/static/swagger/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""
