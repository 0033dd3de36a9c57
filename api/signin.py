"""Signing in: throttled per account and per address, the password checked off the database.

- **Throttling** (the `limits` library, moving windows in this process's memory): after
  ``ACCOUNT_FAILURES`` wrong passwords for one username in a minute, or ``ADDRESS_FAILURES``
  from one address, further attempts are answered 429 with ``Retry-After`` — without checking
  the password, so a right guess in the throttled window does not get in either. A success
  does not reset the counters (a guesser cannot clear them by signing in to an account of
  its own). Several API processes each keep their own counters: the limit is per process.
- **Hashing off the connection pool**: the password hash is read with a connection taken for
  one query and given back; argon2 runs after, at most ``HASHING`` at a time, so that sign-in
  attempts (or a flood of them) never hold database connections that other requests wait for.
- **Login CSRF**: a sign-in POST that a browser sends from another site (its ``Origin`` is not
  this site) is refused; the page's form also carries a token bound to a cookie of its own.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from psycopg_pool import ConnectionPool

from core import auth
from core.auth import Role

ACCOUNT_FAILURES = 10  # per username per minute
ADDRESS_FAILURES = 30  # per client address per minute
HASHING = 2  # argon2 checks at a time in this process

_account = RateLimitItemPerMinute(ACCOUNT_FAILURES)
_address = RateLimitItemPerMinute(ADDRESS_FAILURES)
_limiter = MovingWindowRateLimiter(MemoryStorage())
_hashing = threading.BoundedSemaphore(HASHING)


def check_origin(request: Request) -> None:
    """Refuse a browser's cross-site POST (login CSRF): its Origin names another site."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-site form post (scripts send none)
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise HTTPException(403, "sign-in from another site is refused")


def _keys(request: Request, username: str) -> tuple[str, str]:
    address = request.client.host if request.client else "unknown"
    return f"user:{username.lower()}", f"addr:{address}"


def throttled(request: Request, username: str) -> float | None:
    """Seconds to wait when this account or address has failed too often, else None."""
    user_key, addr_key = _keys(request, username)
    waits = []
    for item, key in ((_account, user_key), (_address, addr_key)):
        if not _limiter.test(item, "sign-in", key):
            reset = _limiter.get_window_stats(item, "sign-in", key).reset_time
            waits.append(max(1.0, reset - time.time()))
    return max(waits) if waits else None


def _failed(request: Request, username: str) -> None:
    user_key, addr_key = _keys(request, username)
    _limiter.hit(_account, "sign-in", user_key)
    _limiter.hit(_address, "sign-in", addr_key)


def sign_in(
    pool: ConnectionPool[Any], request: Request, username: str, password: str
) -> tuple[int, Role] | None:
    """The user's id and role when the password is right (None when not); 429 when throttled.
    Takes database connections only for the lookups, never while hashing."""
    wait = throttled(request, username)
    if wait is not None:
        raise HTTPException(
            429,
            "too many failed sign-ins: wait a minute and try again",
            {"Retry-After": str(int(wait + 0.999))},
        )
    with pool.connection() as conn:
        stored = auth.password_hash_of(conn, username)
    with _hashing:
        user_id = auth.verify_password(stored, password)
    if user_id is None:
        _failed(request, username)
        return None
    with pool.connection() as conn:
        return user_id, auth.role_of(conn, user_id)


def forget_failures() -> None:
    """Clear every counter (tests; an operator's restart does the same)."""
    _limiter.storage.reset()
