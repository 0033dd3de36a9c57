"""paho's MQTT client, reading a backlog in fewer system calls.

paho reads each packet with at least three `recv` calls (command byte, length bytes, body) and
returns to `select()` after every single packet, so a worker draining a backlog of small QoS 1
messages spends a fifth of its time in those calls (measured with py-spy). This subclass reads
the socket in 64 KiB chunks and serves paho's small reads from that buffer, and handles every
packet already received before going back to `select()` — flushing pending writes (our batched
PUBACKs) every few hundred packets so acknowledgements are not held back by a long backlog.
When the socket is drained it calls ``on_read_done`` (the worker ships what it read then).

It also sends the PUBACKs of a committed batch as one write (``ack_many``: one lock, one
wake-up, one send instead of a call a message).

This is the only module that touches paho's private parts (`_sock_recv`, `_packet_read`,
`_loop_rc_handle`, `_packet_queue`, `_sock`); ruff's SLF rule keeps them out of every other
module. They were read in paho-mqtt 2.1 and 2.2 (``WRITTEN_FOR``): ``supported()`` is false on
any other release or when one of them is gone, and the worker then uses the plain client and
paho's public ``ack()`` (correct, slower); a test fails on an unknown paho release so that this
is read again before it is trusted.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import MQTTErrorCode

log = logging.getLogger(__name__)

_CHUNK = 65536
_WRITE_EVERY = 256
_PUBACK = struct.Struct("!BBH")  # MQTT PUBACK: type 0x40, remaining length 2, packet id
_PRIVATE = ("_sock_recv", "_packet_read", "_loop_rc_handle", "_packet_queue")

WRITTEN_FOR = ("2.1.", "2.2.")  # paho-mqtt releases whose private methods this was read against


def paho_version() -> str:
    return version("paho-mqtt")


def supported(paho: str | None = None) -> bool:
    """Whether this paho release is one the overrides were written for, and has their methods."""
    release = paho or paho_version()
    return release.startswith(WRITTEN_FOR) and all(hasattr(mqtt.Client, m) for m in _PRIVATE)


def ack_many(client: mqtt.Client, mids: list[int]) -> None:
    """Acknowledge QoS 1 messages ``mids`` (in this order) on the client's connection."""
    if not mids:
        return
    if isinstance(client, BufferedClient):
        blob = b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids])
        client._packet_queue(PUBACK, blob, 0, 1)
        return
    for mid in mids:
        if client.ack(mid, 1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.debug("ack of %s not sent; the broker will redeliver it", mid)


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object = None  # the socket the buffer's bytes came from
        self.on_read_done: Callable[[], None] | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: bytes of the old one are void
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(max(bufsize, _CHUNK))  # BlockingIOError when none
            if len(data) <= bufsize:
                return data  # everything asked for, or b"" when the broker closed
            self._rbuf, self._rpos = data, 0
        out = self._rbuf[self._rpos : self._rpos + bufsize]
        self._rpos += len(out)
        return out

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        handled = 0
        while True:  # until the socket and the buffer are both empty (MQTT_ERR_AGAIN)
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                if self.on_read_done is not None:
                    self.on_read_done()
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            handled += 1
            if handled % _WRITE_EVERY == 0 and self.want_write():
                rc = self.loop_write()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return rc
