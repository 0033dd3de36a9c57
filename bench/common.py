"""What every benchmark shares: the local services' settings, a fresh database, log lines,
the readings they publish."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from core.settings import Settings
from core.wire import format_ts
from wastepilot.localservices.state import free_port, use_local_services
from wastepilot.prepare import database_url, fresh_database

use_local_services()  # Settings finds the services of `wastepilot services up`

__all__ = [
    "database_url", "free_port", "fresh_database", "log", "reading", "served_app", "settings",
]  # fmt: skip


def settings() -> Settings:
    return Settings()


def log(msg: str) -> None:
    print(msg, flush=True)


def reading(dev: str, seq: int, ts: datetime, **over: Any) -> dict[str, Any]:
    """A run reading as a device sends it (contract JSON fields)."""
    return {
        "v": 1,
        "device_id": dev,
        "seq": seq,
        "ts": format_ts(ts),
        "kind": "run",
        "run_s": 11.5,
        "energy_wh": 2.4,
        "water_l": 1.2,
        "peak_a": 5.1,
    } | over


@contextmanager
def served_app(url: str) -> Iterator[str]:
    """The app on database `url`, served by uvicorn as `wastepilot api` serves it, on a free
    port of this process; yields its base URL."""
    import uvicorn

    from api.app import create_app
    from api.server import config as server_config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    s = Settings(database_url=url)
    server = uvicorn.Server(server_config(create_app(s), s, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
