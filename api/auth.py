"""Bearer-token authentication and role checks for the API.

401 when the request has no token or a bad one (unknown, expired, revoked); 403 when the token's
user has the wrong role, or the token is read-only and the request writes. Nothing else runs
before these checks pass, so no data is read on behalf of a caller that fails them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import Conn
from core.auth import Principal, Role, authenticate

bearer = HTTPBearer(
    auto_error=False,
    description="An API token (`wastepilot tokens create USER`, or POST /api/v1/auth/token)",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def principal(
    request: Request,
    conn: Conn,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from the `Authorization: Bearer <token>` header."""
    if creds is None:
        raise HTTPException(401, "sign in: send Authorization: Bearer <token>", _CHALLENGE)
    p = authenticate(conn, creds.credentials)
    if p is None:
        raise HTTPException(401, "the token is unknown, expired or revoked", _CHALLENGE)
    request.state.principal = p
    return p


Caller = Annotated[Principal, Depends(principal)]


def allow(*roles: Role) -> Callable[..., Principal]:
    """A dependency that lets through the given roles (and admins)."""

    def check(request: Request, p: Caller) -> Principal:
        if p.role != "admin" and p.role not in roles:
            raise HTTPException(
                403, f"a {p.role} may not do this: it needs the {' or '.join(roles)} role"
            )
        if p.scope == "read" and request.method not in ("GET", "HEAD", "OPTIONS"):
            raise HTTPException(403, "this token is read-only: use a token with write scope")
        return p

    return check
