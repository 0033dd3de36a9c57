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
GONE = {
    "confirm": "This link has been used already, or the digest was asked for again since",
    "unsubscribe": "This link has been used already, or the digest was stopped another way",
}
TITLES = {
    ("confirm", False): "Start the daily digest",
    ("confirm", True): "Digest started",
    ("unsubscribe", False): "Stop the daily digest",
    ("unsubscribe", True): "Digest stopped",
}


def _link_page(
    request: Request, email: str | None, action: str, secret: str, done: bool
) -> HTMLResponse:
    """The link's page (``done``: after its button), or a 404 that says only that the link is
    spent."""
    if email is None:
        raise HTTPException(404, GONE[action])
    return page(request, "digest_link.html", title=TITLES[action, done], email=email,
                secret=secret, action=action, done=done)  # fmt: skip


@router.get("/digest/confirm/{secret}")
def confirm_page(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    return _link_page(request, digest.address_to_confirm(conn, secret), "confirm", secret, False)


@router.post("/digest/confirm/{secret}")
def confirm(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    return _link_page(request, digest.confirm_by_link(conn, secret), "confirm", secret, True)


@router.get("/digest/unsubscribe/{secret}")
def unsubscribe_page(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    email = digest.address_of_link(conn, secret)
    return _link_page(request, email, "unsubscribe", secret, False)


@router.post("/digest/unsubscribe/{secret}")
def unsubscribe(request: Request, conn: Conn, secret: str) -> HTMLResponse:
    email = digest.unsubscribe_by_link(conn, secret)
    return _link_page(request, email, "unsubscribe", secret, True)
