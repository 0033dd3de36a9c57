"""The pages a digest's links open, no sign-in needed: the confirmation link that starts an
analyst's daily digest (its secret, e-mailed to the address, shows the address is theirs) and
the unsubscribe link that stops it (its secret is the right to stop that one digest and nothing
else). The page's button posts
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


CONFIRM_GONE = "This link has been used already, or the digest was asked for again since"


@router.get("/digest/confirm/{secret}")
def confirm_page(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    email = digest.address_to_confirm(conn, secret)
    if email is None:
        raise HTTPException(404, CONFIRM_GONE)
    return page(request, "digest_link.html", title="Start the daily digest", email=email,
                secret=secret, action="confirm")  # fmt: skip


@router.post("/digest/confirm/{secret}")
def confirm(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    email = digest.confirm_by_link(conn, secret)
    if email is None:
        raise HTTPException(404, CONFIRM_GONE)
    return page(request, "digest_link.html", title="Digest started", email=email,
                action="confirm", done=True)  # fmt: skip


@router.get("/digest/unsubscribe/{secret}")
def unsubscribe_page(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    email = digest.address_of_link(conn, secret)
    if email is None:
        raise HTTPException(404, GONE)
    return page(request, "digest_link.html", title="Stop the daily digest", email=email,
                secret=secret, action="unsubscribe")  # fmt: skip


@router.post("/digest/unsubscribe/{secret}")
def unsubscribe(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    email = digest.unsubscribe_by_link(conn, secret)
    if email is None:
        raise HTTPException(404, GONE)
    return page(request, "digest_link.html", title="Digest stopped", email=email,
                action="unsubscribe", done=True)  # fmt: skip
