"""A mail catcher for `wastepilot run`: a real SMTP server on loopback (aiosmtpd) that keeps
every message the outbox sends as a file (``<state dir>/mail/<time>-<n>.eml``) instead of
delivering it, so alerts, workshop e-mails and digests can be read on a development machine.
Opened with any mail program, or as text."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

from wastepilot.localservices.state import free_port


class _Keeper:
    def __init__(self, folder: Path, told: Any) -> None:
        self.folder = folder
        self.told = told  # called with (recipients, subject) for each message
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            n = next(self.numbers)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{n:04d}.eml"
        path.write_bytes(envelope.content)
        subject = message_from_bytes(envelope.content).get("Subject", "")
        self.told(list(envelope.rcpt_tos), str(subject), path)
        return "250 kept (wastepilot mail catcher: not delivered)"


@contextmanager
def catching(folder: Path, told: Any = lambda *_: None) -> Iterator[str]:
    """An SMTP server on a free loopback port keeping messages in ``folder``; yields its
    ``smtp://`` URL (WASTEPILOT_SMTP_URL)."""
    from aiosmtpd.controller import Controller

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = Controller(_Keeper(folder, told), hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield f"smtp://127.0.0.1:{port}"
    finally:
        server.stop()
