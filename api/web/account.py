"""Signing in and out of the pages.

The sign-in form carries a token bound to a cookie of its own (set by the form's page,
SameSite=Strict, so another site's page cannot send it), and a browser's post from another
site is refused by its Origin (login CSRF). Failed sign-ins are throttled (api/signin.py).
Signing out is a POST with the session's CSRF token, so a link or an image on another site
cannot sign anybody out.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import signin
from api.auth import end_session, start_session
from api.deps import Conn, with_connection
from api.web.common import HOME, check_csrf, current_user, page

router = APIRouter(include_in_schema=False)
FORM_COOKIE = "wp_signin"


@router.get("/")
def home(request: Request, conn: Conn) -> Response:
    p = current_user(request, conn)
    return RedirectResponse(HOME[p.role] if p else "/sign-in", 303)


def _form(
    request: Request, status: int = 200, *, next: str = "", username: str = "", error: str = ""
) -> HTMLResponse:
    token = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)
    resp = page(
        request,
        "sign_in.html",
        status,
        title="Sign in",
        errors={"username": error} if error else {},
        next=next,
        username=username,
        form_token=token,
        user=None,
    )
    resp.set_cookie(
        FORM_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return resp


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "") -> HTMLResponse:
    return _form(request, next=next)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=200)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    signin.check_origin(request)
    cookie = request.cookies.get(FORM_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), form_token.encode()):
        error = "The sign-in form had expired: enter your username and password again"
        return _form(request, 400, next=next, username=username, error=error)
    try:
        found = await signin.sign_in(request, username, password) if username and password else None
    except HTTPException as exc:
        if exc.status_code not in (429, 503):
            raise
        error = (
            "Too many failed sign-ins: wait a minute, then try again"
            if exc.status_code == 429
            else "Signing in is busy just now: try again in a few seconds"
        )
        throttled = _form(request, exc.status_code, next=next, username=username, error=error)
        throttled.headers.update(exc.headers or {})
        return throttled
    if found is None:
        error = "Enter a correct username and password"
        return _form(request, 401, next=next, username=username, error=error)
    _, role = found
    target = next if next.startswith("/") and not next.startswith("//") else HOME[role]
    resp = RedirectResponse(target, 303)
    await with_connection(request, lambda c: start_session(c, username, request, resp))
    resp.delete_cookie(FORM_COOKIE)
    return resp


@router.post("/sign-out")
def sign_out(
    request: Request, conn: Conn, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    check_csrf(request, csrf_token)
    resp = RedirectResponse("/sign-in", 303)
    end_session(conn, request, resp)
    return resp
