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
  queue (api/deps.py) for short statements only; argon2 runs after, one check at a time (one
  core at most), and a sign-in waits for its turn on the event loop, holding neither a
  connection nor a worker thread; past ``HASH_QUEUE_MAX`` waiting, 503. The check runs on a
  thread of its own at the lowest CPU priority (``HASH_NICE``): when the machine is busy, the
  event loop, PostgreSQL and the signed-in people's requests come first. A flood of sign-ins
  slows sign-ins, not the people already signed in.
- **Login CSRF**: a sign-in POST that a browser sends from another site (its ``Origin`` is not
  this site) is refused; the page's form also carries a token bound to a cookie of its own.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from api import queries as q
from api.deps import RETRY_AFTER_S, busy, with_connection
from api.security import Refusal, Scope
from core import auth
from core.auth import Role
from core.db import Conn

ACCOUNT_FAILURES = 10  # per username per minute
ADDRESS_FAILURES = 30  # per client address per minute
HASHING = 1  # argon2 checks at a time in this process: one core at most (core/auth.py)
HASH_QUEUE_MAX = 50  # sign-ins waiting for their check; more are answered 503 at once
HASH_NICE = 19  # the hashing thread's niceness (Linux: a thread's own; 19 = lowest priority)
BLOCKED_KEYS_MAX = 10_000  # throttled keys remembered in memory before expired ones are pruned


def _lowest_priority() -> None:
    """Run this (hashing) thread at HASH_NICE: Linux schedules threads as tasks of their own,
    and lowering one's own priority needs no privilege."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)


def hashing_executor() -> ThreadPoolExecutor:
    """The threads argon2 checks run on (one per HASHING slot), at the lowest priority."""
    return ThreadPoolExecutor(HASHING, thread_name_prefix="argon2", initializer=_lowest_priority)


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


def _attempt(
    conn: Conn, username: str, user_key: str, addr_key: str
) -> tuple[int, Stored] | dict[str, float]:
    """Record an attempt (committed at once): (its id, the user's stored hash) when it may be
    checked, else the keys over their limit with the seconds until they are not, the attempt
    taken back."""
    conn.execute(q.SIGN_IN_FORGET_OLD)
    [(attempt,)] = conn.execute(q.SIGN_IN_ATTEMPT, (user_key, addr_key)).fetchall()
    conn.commit()  # counted by every other attempt from now on
    [(by_user, by_addr, user_left, addr_left)] = conn.execute(
        q.SIGN_IN_WINDOW, {"user": user_key, "addr": addr_key}
    ).fetchall()
    over = {}
    if int(str(by_user)) > ACCOUNT_FAILURES:
        over[user_key] = max(1.0, float(str(user_left or 1)))
    if int(str(by_addr)) > ADDRESS_FAILURES:
        over[addr_key] = max(1.0, float(str(addr_left or 1)))
    if over:
        conn.execute(q.SIGN_IN_TAKE_BACK, (attempt,))
        return over
    return int(str(attempt)), auth.password_hash_of(conn, username)


def _throttled(wait: float) -> HTTPException:
    return HTTPException(
        429,
        "too many failed sign-ins: wait a minute and try again",
        {"Retry-After": str(math.ceil(wait))},
    )


async def sign_in(request: Request, username: str, password: str) -> tuple[int, Role] | None:
    """The user's id and role when the password is right (None when not); 429 when throttled,
    503 when the database is too busy to ask.

    A key the database has found over its limit is remembered in this process until its window
    frees up, and further attempts with it are refused without asking the database again: a
    flood of refused sign-ins costs neither connections nor commits."""
    user_key, addr_key = _keys(request, username)
    blocked: dict[str, float] = request.app.state.sign_in_blocked
    now = time.monotonic()
    waits = [blocked[k] - now for k in (user_key, addr_key) if blocked.get(k, 0) > now]
    if waits:
        raise _throttled(max(waits))
    if hashing_full(request.app.state):  # nothing counted or asked: no password is checked
        raise busy()
    allowed = await with_connection(request, lambda c: _attempt(c, username, user_key, addr_key))
    if isinstance(allowed, dict):
        if len(blocked) > BLOCKED_KEYS_MAX:
            for k in [k for k, until in blocked.items() if until <= now]:
                del blocked[k]
        blocked.update({k: now + wait for k, wait in allowed.items()})
        raise _throttled(max(allowed.values()))
    attempt, stored = allowed
    checked = await _check(request, stored, password)
    if checked is None:
        return None  # the attempt stays counted for the minute
    user_id, upgraded = checked

    def succeeded(conn: Conn) -> Role:
        conn.execute(q.SIGN_IN_TAKE_BACK, (attempt,))
        if upgraded is not None and stored is not None:  # older argon2 parameters: rehashed
            auth.store_upgraded_hash(conn, user_id, stored[1], upgraded)
        return auth.role_of(conn, user_id)

    return user_id, await with_connection(request, succeeded)


def _verify(stored: Stored, password: str) -> tuple[int, str | None] | None:
    """The user's id, and a new hash when theirs has older parameters; None: wrong."""
    user_id = auth.verify_password(stored, password)
    if user_id is None or stored is None:
        return None
    return user_id, auth.upgraded_hash(stored, password)


async def _check(request: Request, stored: Stored, password: str) -> tuple[int, str | None] | None:
    """``auth.verify_password`` when a hashing slot is free, waited for on the event loop; 503
    at once when ``HASH_QUEUE_MAX`` sign-ins already wait (a flood: signed-in people keep the
    other core)."""
    state = request.app.state
    hashing: asyncio.Semaphore = state.hashing
    if hashing_full(state):
        raise busy()
    state.hash_waiting += 1
    try:
        await hashing.acquire()
    finally:
        state.hash_waiting -= 1
    try:
        state.password_checks.inc()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(state.hashers, _verify, stored, password)
    finally:
        hashing.release()


def hashing_full(state: Any) -> bool:
    """Whether ``HASH_QUEUE_MAX`` sign-ins already wait for a password check."""
    hashing: asyncio.Semaphore = state.hashing
    return hashing.locked() and state.hash_waiting >= HASH_QUEUE_MAX


def early_refusal(scope: Scope) -> Refusal | None:
    """For RequestGuard, before a sign-in is read: 503 when the password checks' queue is
    full, and 429 when its address is one this process found throttled (the username is in
    the body, not read yet: ``sign_in`` checks it). Either way the sign-in costs neither its
    body nor the database: under a flood most are refused here. The API's sign-ins only: the
    page's form answers a person with itself and the reason."""
    if not scope["path"].startswith("/api/"):
        return None
    if hashing_full(scope["app"].state):
        refused = busy()
        return 503, refused.detail, [(b"retry-after", str(RETRY_AFTER_S).encode())]
    client = scope.get("client")
    address = client[0] if client else "unknown"
    blocked: dict[str, float] = scope["app"].state.sign_in_blocked
    wait = blocked.get(f"addr:{address}", 0) - time.monotonic()
    if wait <= 0:
        return None
    detail = "too many failed sign-ins: wait a minute and try again"
    return 429, detail, [(b"retry-after", str(math.ceil(wait)).encode())]


def forget_failures(conn: Conn) -> None:
    """Clear every counter (tests; an operator after a lock-out). API processes still refuse
    the keys they found throttled until those windows would have freed up."""
    conn.execute(q.SIGN_IN_FORGET_ALL)
