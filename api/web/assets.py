"""Serving the web pages and their assets (installed from npm by scripts/bootstrap)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
NODE = HERE / "node_modules"


def mount_web(app: FastAPI) -> None:
    """The pages, /static/govuk (GOV.UK Frontend), /static/chart.js and our own /static files.
    Missing npm assets leave the pages unstyled but working (their tables are plain HTML)."""
    from api.web.pages import router

    app.include_router(router)
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
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
