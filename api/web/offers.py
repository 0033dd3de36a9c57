"""The page a person opens from a waiting-list offer's e-mail: take the place or decline it.

No sign-in: the link's secret is the right to answer (only its SHA-256 is stored, and it stops
working once the offer is answered or runs out). The buttons post no body, so nothing is read
from someone without a credential (api/security.py)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import AppSettings, Conn
from api.errors import USER_ERRORS
from api.web.common import page
from bids import notices
from core.audit import set_actor
from core.errors import NotFound

router = APIRouter(include_in_schema=False)
TOKEN_MAX = 64  # secrets.token_urlsafe(24) is 32 characters


def _offer(conn: Conn, token: str) -> dict[str, object]:
    if len(token) > TOKEN_MAX:
        raise HTTPException(404, "this offer has been answered or has run out")
    try:
        return notices.offer_by_token(conn, token)
    except NotFound as exc:
        raise HTTPException(404, str(exc).capitalize()) from exc


@router.get("/offers/{token}")
def offer_page(request: Request, conn: Conn, token: str) -> HTMLResponse:
    offer = _offer(conn, token)
    return page(request, "offer.html", title="A place is free", offer=offer, token=token)


@router.post("/offers/{token}/{answer}")
def answer_offer(request: Request, conn: Conn, s: AppSettings, token: str, answer: str) -> Response:
    if answer not in ("accept", "decline"):
        raise HTTPException(404, "Not Found")
    _offer(conn, token)
    set_actor(conn, "the person, by their offer link")
    try:
        got = notices.answer_offer(conn, s, token, answer == "accept")
    except USER_ERRORS as exc:
        raise HTTPException(409, str(exc).capitalize()) from exc
    return page(request, "offer.html", title="Thank you", offer=got, answered=answer)
