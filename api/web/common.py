"""What every page shares: templates, who is signed in, the CSRF check, rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.auth import SESSION_COOKIE, csrf_token
from api.deps import Conn
from core import auth
from core.audit import set_actor

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
LONDON = ZoneInfo("Europe/London")
HOME = {"officer": "/officers/workshops", "analyst": "/analysts", "admin": "/officers/workshops"}


def current_user(request: Request, conn: Conn) -> auth.Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    return auth.authenticate(conn, token) if token else None


def need(request: Request, conn: Conn, role: str) -> auth.Principal:
    p = current_user(request, conn)
    if p is None:
        raise HTTPException(303, headers={"Location": f"/sign-in?next={quote(request.url.path)}"})
    if p.role not in (role, "admin"):
        raise HTTPException(403, f"this page is for the {role} role")
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
