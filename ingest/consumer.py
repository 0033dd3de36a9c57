"""ingest's MQTT side: one client on the shared subscription, its read bursts, and its probe.

The client connects with MQTT 5, clean start off and a session expiry (the broker keeps the
session and its messages while the worker is away), Receive Maximum (the broker sends at most
that many unacknowledged messages: the bound on the worker's memory) and manual
acknowledgement. It subscribes through ``$share/<group>/…`` so that the broker splits the
messages between the workers of a group, plus a probe topic of its own.

The network thread only collects messages: what a read burst brought (or 256 messages / 64 KiB
of it, while a backlog streams in) goes to ``on_batch`` in one call, with the packet ids to
acknowledge later.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from core.mqtturl import parse_mqtt_url
from core.topics import ingest_subscriptions
from ingest import mqttclient

log = logging.getLogger(__name__)

# A batch for the pipeline closes at this many messages or bytes of payload while a backlog
# streams in (and whenever a read burst ends): small enough that a database batch of arrays can
# stay near WASTEPILOT_INGEST_BATCH_SIZE readings, large enough to make the hand-over cheap.
SHIP_MESSAGES = 256
SHIP_BYTES = 64 * 1024

Message = tuple[str, bytes, float]  # topic, payload, received_at (epoch seconds)
OnBatch = Callable[[list[Message], list[int]], None]


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    mqtt_url: str
    client_id: str
    group: str
    prefix: str
    session_expiry_s: int
    receive_maximum: int
    keepalive_s: int


class Consumer:
    """``start()`` connects (and reconnects, with backoff); ``stop()`` disconnects."""

    def __init__(
        self,
        cfg: ConsumerConfig,
        on_batch: OnBatch,
        on_connected: Callable[[], None],
        on_disconnected: Callable[[], None],
    ) -> None:
        self.cfg = cfg
        self._on_batch = on_batch
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._messages: list[Message] = []
        self._mids: list[int] = []
        self._bytes = 0
        self._lock = threading.Lock()  # the network thread and flush() from others
        self.paused = False  # stopping: take nothing more (the broker keeps it)
        self.connected = False
        self.probe_topic = f"{cfg.prefix}/ingest/probe/{cfg.client_id}"
        self.probe_seen = time.monotonic()
        self._addr = parse_mqtt_url(cfg.mqtt_url)
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        cls = mqttclient.BufferedClient if mqttclient.supported() else mqtt.Client
        client = cls(
            CallbackAPIVersion.VERSION2,
            client_id=self.cfg.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self._buffered = isinstance(client, mqttclient.BufferedClient)
        if isinstance(client, mqttclient.BufferedClient):
            client.on_read_done = self.flush
        if self._addr.username:
            client.username_pw_set(self._addr.username, self._addr.password)
        if self._addr.tls:
            client.tls_set(ca_certs=self._addr.ca_file)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_message = self._message
        return client

    @property
    def pending(self) -> int:
        """Messages read and not yet handed on."""
        return len(self._messages)

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        props.ReceiveMaximum = self.cfg.receive_maximum
        self.client.connect_async(
            self._addr.host,
            self._addr.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, mids: list[int]) -> None:
        mqttclient.ack_many(self.client, mids)

    def publish_probe(self) -> None:
        self.client.publish(self.probe_topic, b"probe", qos=1)

    def drop_connection(self) -> None:
        """Make the broker and paho see the connection lost; paho reconnects. (Shutting the
        socket down, not closing it under paho's select.)"""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def flush(self) -> None:
        """Hand on what was read (called when a read burst ends)."""
        with self._lock:
            if not self._messages:
                return
            messages, mids = self._messages, self._mids
            self._messages, self._mids, self._bytes = [], [], 0
            # under the lock: a later batch must not overtake this one
            self._on_batch(messages, mids)

    # --- paho callbacks (network thread) ----------------------------------------------------

    def _connected(
        self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Properties | None
    ) -> None:
        if rc.is_failure:
            log.error("broker refused %s: %s", self.cfg.client_id, rc)
            return
        # What the last connection delivered leaves first, so that a batch's messages share
        # one connection (its packet ids mean nothing on the new one).
        self.flush()
        self._on_connected()
        self.connected = True
        subs = [
            (t, SubscribeOptions(qos=1))
            for t in ingest_subscriptions(self.cfg.prefix, self.cfg.group)
        ]
        subs.append((self.probe_topic, SubscribeOptions(qos=1, noLocal=False)))
        client.subscribe(subs)
        self.probe_seen = time.monotonic()
        log.info(
            "%s connected to %s (session present: %s)",
            self.cfg.client_id,
            self._addr.redacted(),
            flags.session_present,
        )

    def _disconnected(
        self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Properties | None
    ) -> None:
        was = self.connected
        self.connected = False
        if was:
            self._on_disconnected()
        if not self.paused:
            log.warning("%s disconnected (%s); reconnecting", self.cfg.client_id, rc)

    def _message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        if topic == self.probe_topic:
            self.probe_seen = time.monotonic()
            if msg.qos:
                client.ack(msg.mid, msg.qos)
            return
        if self.paused:
            return  # not acknowledged: the broker keeps it for this session
        payload = msg.payload
        # paho hands over bytes; the conversion is only for the type checker's bytearray
        data = payload if isinstance(payload, bytes) else bytes(payload)
        with self._lock:
            self._messages.append((topic, data, time.time()))
            if msg.qos:
                self._mids.append(msg.mid)
            self._bytes += len(data)
            full = len(self._messages) >= SHIP_MESSAGES or self._bytes >= SHIP_BYTES
        if full or not self._buffered:
            self.flush()
