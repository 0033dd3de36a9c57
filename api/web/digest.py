"""The page a digest's unsubscribe link opens: stop the daily digest, no sign-in needed (the
link's secret is the right to stop that one digest and nothing else). The page's button posts
no body; a mail program's one-click unsubscribe (RFC 8058) posts
``List-Unsubscribe=One-Click``, the one small body taken without a credential
(api/security.py)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from analytics import digest
from api.deps import Conn
from api.web.common import page

router = APIRouter(include_in_schema=False)
GONE = "This link has been used already, or the digest was stopped another way"


@router.get("/digest/unsubscribe/{secret}")
def unsubscribe_page(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    email = digest.address_of_link(conn, secret)
    if email is None:
        raise HTTPException(404, GONE)
    return page(request, "unsubscribe.html", title="Stop the daily digest", email=email,
                secret=secret)  # fmt: skip


@router.post("/digest/unsubscribe/{secret}")
def unsubscribe(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    email = digest.unsubscribe_by_link(conn, secret)
    if email is None:
        raise HTTPException(404, GONE)
    return page(request, "unsubscribe.html", title="Digest stopped", email=email, done=True)
