"""Bearer-token authentication and role checks for the API.

401 when the request has no token or a bad one (unknown, expired, revoked); 403 when the token's
user has the wrong role, or the token is read-only and the request writes. Nothing else runs
before these checks pass, so no data is read on behalf of a caller that fails them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import queries as q
from api.deps import Conn, with_connection
from api.routers.notify import DELIVERY_PATH, REFUSED, callback_token_ok
from api.security import Refusal, Scope
from core.auth import Principal, Role, authenticate

bearer = HTTPBearer(
    auto_error=False,
    description="An API token (`wastepilot tokens create USER`, or POST /api/v1/auth/token)",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


SESSION_COOKIE = "wp_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE = ("GET", "HEAD", "OPTIONS")


def csrf_token(session_token: str) -> str:
    """The CSRF token of a cookie session: derived from the session's own secret, which lives
    in an HttpOnly cookie, so another site can neither read nor compute it."""
    return hashlib.sha256(b"csrf:" + session_token.encode()).hexdigest()[:40]


async def principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller: from `Authorization: Bearer <token>`, or from the session cookie of the web
    pages — then a request that writes must also carry the session's CSRF token in the
    `X-CSRF-Token` header. The token is looked up through the admission queue on a connection
    held for that query only, so a route that works without the database (reading an uploaded
    sheet) holds none meanwhile."""
    token = creds.credentials if creds is not None else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise HTTPException(401, "sign in: send Authorization: Bearer <token>", _CHALLENGE)
    checked = request.scope.get("state", {}).get(_CHECKED)  # by check_token, for a body
    p: Principal | None
    if checked is not None and checked[0] == token:
        p = checked[1]
    else:
        p = await with_connection(request, lambda conn: authenticate(conn, token))
    if p is None:
        raise HTTPException(401, "the token is unknown, expired or revoked", _CHALLENGE)
    if creds is None and request.method not in SAFE:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token(token).encode()):
            raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header for this session")
    request.state.principal = p
    return p


Caller = Annotated[Principal, Depends(principal)]
_CHECKED = "wastepilot_checked_token"


async def check_token(scope: Scope, token: str) -> Refusal | None:
    """For RequestGuard, before a request's body is read: None when the token is valid (the
    lookup is kept for ``principal``), else the refusal — 401, or 503 when the database is too
    busy to ask. GOV.UK Notify's delivery receipts carry the callback's own token instead."""
    request = Request(scope)
    if scope["path"] == DELIVERY_PATH:
        if callback_token_ok(request.app.state.settings, token):
            return None
        return 401, REFUSED, [(b"www-authenticate", b"Bearer")]
    try:
        p = await with_connection(request, lambda conn: authenticate(conn, token))
    except HTTPException as exc:
        extra = [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
        return exc.status_code, str(exc.detail), extra
    if p is None:
        return 401, "the token is unknown, expired or revoked", [(b"www-authenticate", b"Bearer")]
    scope.setdefault("state", {})[_CHECKED] = (token, p)
    return None


def permit(p: Principal, roles: tuple[str, ...], method: str) -> None:
    """The rights check of every path, API and pages alike: 403 unless the caller has one of
    ``roles`` (admins have all) and, for a request that writes, a token with write scope."""
    if p.role != "admin" and p.role not in roles:
        raise HTTPException(
            403, f"a {p.role} may not do this: it needs the {' or '.join(roles)} role"
        )
    if p.scope == "read" and method not in SAFE:
        raise HTTPException(403, "this token is read-only: use a token with write scope")


def allow(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through the given roles (and admins)."""

    async def check(request: Request, p: Caller) -> Principal:
        permit(p, roles, request.method)
        return p

    return check


def start_session(conn: Conn, username: str, request: Request, response: Response) -> str:
    """A 12-hour write token for a signed-in person, set as the HttpOnly, SameSite=Strict
    session cookie of the web pages; returns the token."""
    from core.auth import create_token

    _, token = create_token(conn, username, scope="write", days=0.5, name="web session")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=12 * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return token


def end_session(conn: Conn, request: Request, response: Response) -> None:
    """Revoke the session's token and clear its cookie."""
    from core.auth import hash_token

    token = request.cookies.get(SESSION_COOKIE)
    if token:
        conn.execute(
            q.REVOKE_TOKEN_BY_HASH,
            (hash_token(token),),
        )
    response.delete_cookie(SESSION_COOKIE)
