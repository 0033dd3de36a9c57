"""What every response carries, and what a request may send before it is read.

- Security headers on every answer: a content security policy allowing only this site's own
  scripts, styles and images (no inline script; no framing), ``nosniff``, no referrer to
  other sites, and ``Cache-Control: no-store`` on everything that is not a static asset
  (pages and JSON hold names, emails and household data).
- A body limit per route (FastAPI's ``max_body_size``, Starlette's body-limit middleware:
  ``DEFAULT_BODY_LIMIT`` for the app, ``SHEET_BODY_LIMIT`` on the sheet imports): a declared
  ``Content-Length`` above it is refused at once (413), a streamed body when it passes it.
- No body without a valid credential: a request with a body to anything but the sign-in routes
  (and a mail program's one-click unsubscribe: a POST of at most ``ONE_CLICK_MAX`` declared
  bytes to a digest's link, never read) is refused (401) before a byte of it is read — no JSON
  parsed, no upload spooled to a temporary file — when it has no credential (no
  ``Authorization`` header, no session cookie) or one that is unknown, expired or revoked
  (looked up through the admission queue; the lookup is kept for the route's own check).
- A sign-in from an address this process has found throttled is answered 429 before anything
  of it is read: a flood from one address costs a few microseconds a request, not a form
  parse and a trip through the app, so it does not slow everybody else on the event loop.

The credential check is a pure ASGI middleware, so that nothing of the body is touched
before it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Refusal = tuple[int, str, list[tuple[bytes, bytes]]]  # status, detail, extra headers

MiB = 1024 * 1024
DEFAULT_BODY_LIMIT = 1 * MiB  # JSON and forms
SHEET_BODY_LIMIT = 5 * MiB  # attendance sheets (the API and the page share it)
# where a body may come without a credential: signing in
# A sign-in refused before it is read (throttled address, full queue of password checks) is
# answered after this pause: it costs the server a sleeping coroutine, and a client that signs
# in over and over (a flood) slows to one attempt a second per connection instead of looping
# as fast as refusals come back.
EARLY_REFUSAL_DELAY_S = 1.0
ANONYMOUS_BODY_PATHS = frozenset(("/api/v1/auth/token", "/api/v1/auth/session", "/sign-in"))
# and a mail program's one-click unsubscribe (RFC 8058), which posts the 26 bytes
# "List-Unsubscribe=One-Click" to a digest's link: a small body of declared length, never read
ONE_CLICK_PREFIX = "/digest/unsubscribe/"
ONE_CLICK_MAX = 64

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
NO_STORE = (b"cache-control", b"no-store")


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        session_cookie: str,
        check: Callable[[Scope, str], Awaitable[Refusal | None]],
        early: Callable[[Scope], Refusal | None],
    ) -> None:
        self.app = app
        self.cookie = session_cookie.encode()
        self.check = check  # None for a valid token, else why not (api/auth.py: check_token)
        self.early = early  # a sign-in refused before it is read (api/signin.py: early_refusal)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        static = path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [h for h in HEADERS if h[0] not in have]
                if not static and b"cache-control" not in have:
                    extra.append(NO_STORE)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        has_body = (declared not in (None, b"0")) or b"transfer-encoding" in headers
        if path in ANONYMOUS_BODY_PATHS and scope["method"] == "POST":
            refusal = self.early(scope)
            if refusal is not None:
                await asyncio.sleep(EARLY_REFUSAL_DELAY_S)
                await _answer(send_with_headers, *refusal)
                return
        elif has_body and not _one_click(scope, headers):
            token = self._credential(headers)
            if token is None:
                await _answer(
                    send_with_headers,
                    401,
                    "sign in: send Authorization: Bearer <token> (a request with a body needs one)",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
            refusal = await self.check(scope, token)
            if refusal is not None:
                await _answer(send_with_headers, *refusal)
                return
        await self.app(scope, receive, send_with_headers)

    def _credential(self, headers: dict[bytes, bytes]) -> str | None:
        """The request's bearer token, else its session cookie, else None."""
        auth = headers.get(b"authorization", b"")
        if auth.lower().startswith(b"bearer "):
            return auth[7:].strip().decode("latin-1")
        for part in headers.get(b"cookie", b"").split(b";"):
            name, _, value = part.strip().partition(b"=")
            if name == self.cookie:
                return value.decode("latin-1")
        return None


def _one_click(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """A one-click unsubscribe: a POST to a digest's link with a small body of declared size."""
    declared = headers.get(b"content-length", b"")
    return (
        scope["method"] == "POST"
        and scope["path"].startswith(ONE_CLICK_PREFIX)
        and b"transfer-encoding" not in headers
        and declared.isdigit()
        and int(declared) <= ONE_CLICK_MAX
    )


async def _answer(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
