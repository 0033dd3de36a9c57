"""How the API is served: uvicorn, with the limits a server facing people and the internet needs
and uvicorn does not have (docs/security.md, "Under load and attack").

- **A deadline for a request's head** (``api_head_timeout_s``): a connection that has not sent
  a whole request head that long after it opened, or after its last answer, is closed. uvicorn
  closes a kept-alive connection after 5 idle seconds but restarts that clock on every byte, and
  has no clock at all for a new connection: slow or silent clients could hold connections for
  ever.
- **A cap on open connections** (``api_max_connections``), well below the process's open-file
  limit (raised to its hard limit at start): past it, the oldest connection still waiting for
  its head is closed to make room, so a flood of idle connections evicts itself while people's
  new connections get in. Past the open-file limit, the event loop would log an error for each
  refused accept and nobody would get in.
- **No Nagle delay on kept-alive connections**: asyncio turns Nagle's algorithm off only for
  sockets that say they are TCP; a socket bound before uvicorn gets it (tests, benchmarks, a
  supervisor's, uvicorn's own ``--workers``: Kludex/uvicorn#3149) says protocol 0, and every
  answer after a connection's first then waited ~40 ms for the client's delayed ACK. Each
  accepted connection sets ``TCP_NODELAY`` itself.
- **Forwarded addresses believed only from configured proxies** (``api_trusted_proxies``): by
  default uvicorn believes ``X-Forwarded-For`` from 127.0.0.1, so any local client could choose
  the address the sign-in throttle counts.

uvicorn's protocol class is private: it is subclassed here only, pyproject.toml allows only the
uvicorn minors this was checked against, and a test holds the two together.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
from collections import OrderedDict
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from core.settings import Settings

WRITTEN_FOR_UVICORN = ("0.54", "0.55")  # minor versions whose H11Protocol this was checked against


def _waiting(state: Any) -> OrderedDict[GuardedH11Protocol, asyncio.TimerHandle]:
    """The server's connections waiting for a request head, oldest first."""
    waiting: OrderedDict[GuardedH11Protocol, asyncio.TimerHandle] | None = getattr(
        state, "wastepilot_waiting", None
    )
    if waiting is None:
        waiting = OrderedDict()
        state.wastepilot_waiting = waiting
    return waiting


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a head deadline and a connection cap (set by ``protocol``)."""

    head_timeout_s: float = 10.0
    max_connections: int = 2000

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._await_head()
        if len(self.connections) > self.max_connections:
            waiting = _waiting(self.server_state)
            victim = next(iter(waiting), self)
            victim.drop()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_came()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._head_came()  # a request is under way: the app's limits apply now

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._await_head()  # kept alive: the next request's head has the same deadline

    def _await_head(self) -> None:
        waiting = _waiting(self.server_state)
        old = waiting.pop(self, None)
        if old is not None:
            old.cancel()
        waiting[self] = self.loop.call_later(self.head_timeout_s, self.drop)

    def _head_came(self) -> None:
        handle = _waiting(self.server_state).pop(self, None)
        if handle is not None:
            handle.cancel()

    def drop(self) -> None:
        """Close the connection at once."""
        self._head_came()
        if not self.transport.is_closing():
            self.transport.abort()  # no goodbye owed to a client that never asked anything


def protocol(settings: Settings) -> type[GuardedH11Protocol]:
    """The protocol class with this service's limits."""
    return type(
        "WastepilotH11Protocol",
        (GuardedH11Protocol,),
        {
            "head_timeout_s": settings.api_head_timeout_s,
            "max_connections": settings.api_max_connections,
        },
    )


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def config(app: Any, settings: Settings, **over: Any) -> uvicorn.Config:
    """The uvicorn configuration `wastepilot api` serves with (the tests and benchmarks serve
    the same)."""
    trusted = settings.api_trusted_proxies.strip()
    options: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "http": protocol(settings),
        "log_level": "info",
        # no access log: request paths hold household references and search terms (personal
        # data); requests are counted by route template on /metrics instead
        "access_log": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or "",
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": 10,
    }
    return uvicorn.Config(app, **(options | over))
