"""Signing in: throttled per account and per address, the password checked off the database.

- **Throttling that cannot be raced**, shared by every API process (PostgreSQL,
  migrations/014_sign_in_attempts.sql): each attempt is written and committed *before* its
  password is checked, then the last minute's attempts are counted. Of any number of attempts
  at once, the k-th to commit counts at least k, so at most ``ACCOUNT_FAILURES`` passwords of
  one account (``ADDRESS_FAILURES`` from one address) are checked a minute. Past that, attempts
  are answered 429 with ``Retry-After`` without checking the password, so a right guess in the
  throttled window does not get in either. A right password takes its attempt back (people
  signing in do not use up the limit); a success does not clear earlier failures (a guesser
  cannot clear them by signing in to an account of its own).
- **The client address** is the TCP peer's, or the one a configured proxy forwarded
  (``api_trusted_proxies``, api/server.py): nobody else chooses the address counted.
- **Hashing off the pool and off the threads**: the database is used through the admission
  queue (api/deps.py) for short statements only; argon2 runs after, at most ``HASHING`` at a
  time, and a sign-in waits for its turn on the event loop, holding neither a connection nor a
  worker thread, so that a flood of sign-ins never starves other requests.
- **Login CSRF**: a sign-in POST that a browser sends from another site (its ``Origin`` is not
  this site) is refused; the page's form also carries a token bound to a cookie of its own.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any
from urllib.parse import urlsplit

import psycopg
from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from api import queries as q
from api.deps import with_connection
from core import auth
from core.auth import Role

ACCOUNT_FAILURES = 10  # per username per minute
ADDRESS_FAILURES = 30  # per client address per minute
HASHING = 2  # argon2 checks at a time in this process

Conn = psycopg.Connection[Any]


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


Stored = tuple[int, str] | None  # a user's id and password hash (core/auth.py)


def _attempt(conn: Conn, username: str, user_key: str, addr_key: str) -> tuple[int, Stored] | float:
    """Record an attempt (committed at once): (its id, the user's stored hash) when it may be
    checked, else the seconds until it could be, with the attempt taken back."""
    conn.execute(q.SIGN_IN_FORGET_OLD)
    [(attempt,)] = conn.execute(q.SIGN_IN_ATTEMPT, (user_key, addr_key)).fetchall()
    conn.commit()  # counted by every other attempt from now on
    [(by_user, by_addr, user_left, addr_left)] = conn.execute(
        q.SIGN_IN_WINDOW, {"user": user_key, "addr": addr_key}
    ).fetchall()
    waits = []
    if int(str(by_user)) > ACCOUNT_FAILURES:
        waits.append(float(str(user_left or 1)))
    if int(str(by_addr)) > ADDRESS_FAILURES:
        waits.append(float(str(addr_left or 1)))
    if waits:
        conn.execute(q.SIGN_IN_TAKE_BACK, (attempt,))
        return max(1.0, *waits)
    return int(str(attempt)), auth.password_hash_of(conn, username)


async def sign_in(request: Request, username: str, password: str) -> tuple[int, Role] | None:
    """The user's id and role when the password is right (None when not); 429 when throttled,
    503 when the database is too busy to ask."""
    user_key, addr_key = _keys(request, username)
    allowed = await with_connection(request, lambda c: _attempt(c, username, user_key, addr_key))
    if not isinstance(allowed, tuple):
        raise HTTPException(
            429,
            "too many failed sign-ins: wait a minute and try again",
            {"Retry-After": str(math.ceil(allowed))},
        )
    attempt, stored = allowed
    hashing: asyncio.Semaphore = request.app.state.hashing
    async with hashing:
        request.app.state.password_checks.inc()
        user_id = await run_in_threadpool(auth.verify_password, stored, password)
    if user_id is None:
        return None  # the attempt stays counted for the minute

    def succeeded(conn: Conn) -> Role:
        conn.execute(q.SIGN_IN_TAKE_BACK, (attempt,))
        return auth.role_of(conn, user_id)

    return user_id, await with_connection(request, succeeded)


def forget_failures(conn: Conn) -> None:
    """Clear every counter (tests; an operator after a lock-out)."""
    conn.execute(q.SIGN_IN_FORGET_ALL)
