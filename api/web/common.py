"""What every page shares: templates, who is signed in, the CSRF check, rendering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import SESSION_COOKIE, csrf_token, permit
from api.deps import Conn, with_connection
from core import auth, display
from core.audit import set_actor

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(display.FILTERS)  # the one formatting layer (core/display.py)
HOME = {"officer": "/officers/workshops", "analyst": "/analysts", "admin": "/officers/workshops"}


def current_user(request: Request, conn: Conn) -> auth.Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    return auth.authenticate(conn, token) if token else None


def need(request: Request, conn: Conn, role: str) -> auth.Principal:
    """The signed-in person, with the rights the page needs (the API's check: ``permit``,
    role and, for a form that writes, the session's scope); else to the sign-in page, or 403."""
    p = current_user(request, conn)
    if p is None:
        raise HTTPException(303, headers={"Location": f"/sign-in?next={quote(request.url.path)}"})
    try:
        permit(p, (role,), request.method)
    except HTTPException as exc:
        if p.role not in (role, "admin"):
            raise HTTPException(403, f"this page is for the {role} role") from exc
        raise HTTPException(
            403, "This session may only read records: sign in again to change them."
        ) from exc
    set_actor(conn, p.username)
    return p


def check_csrf(request: Request, sent: str) -> None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or sent != csrf_token(token):
        raise HTTPException(403, "the form has expired: go back, reload the page and try again")


def page(request: Request, name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("errors", {})
    session = request.cookies.get(SESSION_COOKIE)
    if session and "csrf" not in ctx:  # every page's sign-out form posts it
        ctx["csrf"] = csrf_token(session)
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


ERROR_TITLES = {
    403: "You cannot see this page",
    404: "Page not found",
    405: "This page cannot be used that way",
}
NOT_PAGES = ("/api/", "/static/", "/metrics", "/healthz", "/readyz", "/docs", "/openapi")


def wants_page(request: Request) -> bool:
    """A person's browser asking for one of the pages (not the API, assets or docs)."""
    return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith(
        NOT_PAGES
    )


async def signed_in(request: Request) -> auth.Principal | None:
    """Who is signed in, for an error page's menu; None when unknown or the database has no
    connection free within a second (an error page, a 503 above all, must not wait on it)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or getattr(request.app.state, "pool", None) is None:
        return None
    try:
        return await with_connection(request, lambda c: auth.authenticate(c, token), 1.0)
    except Exception:  # noqa: BLE001  (no menu is better than no error page)
        return None


def error_page(
    request: Request, status_code: int, message: str, user: auth.Principal | None = None
) -> Response:
    """The page for an error, with the menu when the person is signed in."""
    fallback = "There is a problem" if status_code < 500 else "Sorry, there is a problem"
    title = ERROR_TITLES.get(status_code, fallback)
    ctx: dict[str, Any] = {
        "title": title,
        "message": message,
        "status_code": status_code,
        "errors": {},
        "user": user,
    }
    session = request.cookies.get(SESSION_COOKIE)
    if user is not None and session:
        ctx["csrf"] = csrf_token(session)
    return templates.TemplateResponse(request, "error.html", ctx, status_code=status_code)


def script_json(data: object) -> str:
    """JSON for a <script type="application/json"> block: no "<" can end the block or open a
    comment in it."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_errors(app: FastAPI) -> None:
    """A person's browser gets a page for an error (what went wrong, a way on); API clients and
    redirects get FastAPI's own answer."""

    @app.exception_handler(RequestValidationError)
    async def invalid_page_request(request: Request, exc: RequestValidationError) -> Response:
        if not wants_page(request):
            return await request_validation_exception_handler(request, exc)
        user = await signed_in(request)
        return error_page(
            request, 400, "The web address has a value this page cannot use: check it.", user
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error_page(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code < 400 or not wants_page(request):
            return await http_exception_handler(request, exc)
        message = exc.detail if isinstance(exc.detail, str) else ""
        if exc.status_code == 404 and message in ("Not Found", ""):
            message = "If you typed the web address, check it is correct."
        if exc.status_code == 405:
            message = "This address is for a form's button: go back and use the button."
        user = await signed_in(request)
        answer = error_page(request, exc.status_code, message, user)
        answer.headers.update(exc.headers or {})
        return answer
