"""An ingest worker: an MQTT 5 shared-subscription consumer feeding a batching writer thread.

Delivery: QoS 1, persistent session (clean start off, session expiry), manual acknowledgement
*after* the batch holding a message has committed. The broker sends at most Receive Maximum
unacknowledged messages, which bounds this worker's memory however long the database is away.

The paho network thread only enqueues; parsing, validation and writing happen on the writer
thread (STYLE.md, "Avoid" 2).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from core.mqtturl import parse_mqtt_url
from core.settings import Settings
from core.topics import ingest_subscriptions
from ingest import mqttclient
from ingest.metrics import IngestMetrics
from ingest.validate import Checked, Limits, check_message
from ingest.writer import DatabaseUnavailable, Received, Writer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What one worker needs; built from Settings by the CLI, or directly by tests."""

    db_url: str
    mqtt_url: str
    client_id: str
    group: str
    limits: Limits
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 5000
    batch_size: int = 2000
    batch_max_ms: int = 100
    dead_letter_max_bytes: int = 16 * 1024
    retry_max_s: float = 30.0
    keepalive_s: int = 30
    probe_interval_s: float = 10.0
    stall_after_s: float = 30.0

    @classmethod
    def from_settings(cls, s: Settings, index: int | None = None) -> WorkerConfig:
        """Worker ``index`` of a process (None: the only one, with the client id as set)."""
        client_id = s.ingest_client_id if index is None else f"{s.ingest_client_id}-{index}"
        return cls(
            db_url=s.db_url(),
            mqtt_url=s.mqtt_url_for("ingest"),
            client_id=client_id,
            group=s.ingest_group,
            limits=Limits.from_settings(s),
            session_expiry_s=s.ingest_session_expiry_s,
            receive_maximum=s.ingest_receive_maximum,
            batch_size=s.ingest_batch_size,
            batch_max_ms=s.ingest_batch_max_ms,
            dead_letter_max_bytes=s.ingest_dead_letter_max_bytes,
            retry_max_s=s.ingest_retry_max_s,
        )


class _Inbound(NamedTuple):
    # a NamedTuple: built once per message on paho's thread, so it must be cheap
    topic: str
    payload: bytes
    mid: int
    qos: int
    epoch: int
    received_at: float


_PUBACK = struct.Struct("!BBH")  # MQTT PUBACK: type 0x40, remaining length 2, packet id


_STOP = object()


class IngestWorker:
    """One consumer on the shared subscription. ``start()``, then ``stop()`` to flush and leave."""

    def __init__(
        self,
        cfg: WorkerConfig,
        metrics: IngestMetrics | None = None,
        on_commit: Callable[[list[Received]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self._on_commit = on_commit
        self.metrics = metrics or IngestMetrics()
        # SimpleQueue (C, no task tracking): a put per message is on paho's thread. It needs
        # no bound of its own: the broker sends at most Receive Maximum unacknowledged messages.
        self._queue: queue.SimpleQueue[_Inbound | object] = queue.SimpleQueue()
        self._writer = Writer(cfg.db_url, dead_letter_max_bytes=cfg.dead_letter_max_bytes)
        self._epoch = 0
        self._epoch_lock = threading.Lock()
        self._connected = False
        self._db_ok = False
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._thread = threading.Thread(
            target=self._run_writer, name=f"writer-{cfg.client_id}", daemon=True
        )
        self._watchdog = threading.Thread(
            target=self._run_watchdog, name=f"watchdog-{cfg.client_id}", daemon=True
        )
        self._probe_topic = f"{cfg.limits.prefix}/ingest/probe/{cfg.client_id}"
        self._probe_seen = time.monotonic()
        self.batches = 0  # committed batches, for tests and the summary line
        self._received = 0  # messages validated (this worker)
        self._acked = 0  # messages done with (acknowledged, or left to redelivery)
        self.client = self._make_client()

    # --- MQTT side (network thread) ------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        addr = parse_mqtt_url(self.cfg.mqtt_url)
        cls = mqttclient.BufferedClient if mqttclient.supported() else mqtt.Client
        client = cls(
            CallbackAPIVersion.VERSION2,
            client_id=self.cfg.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if addr.username:
            client.username_pw_set(addr.username, addr.password)
        if addr.tls:
            client.tls_set(ca_certs=addr.ca_file)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._addr = addr
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        props.ReceiveMaximum = self.cfg.receive_maximum
        return props

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Properties | None
    ) -> None:
        if rc.is_failure:
            log.error("broker refused %s: %s", self.cfg.client_id, rc)
            return
        with self._epoch_lock:
            # Messages of an earlier connection can no longer be acknowledged; the broker
            # redelivers them and the idempotent insert absorbs the repeat.
            self._epoch += 1
        self._connected = True
        self.metrics.connected.inc()
        subs = [
            (t, SubscribeOptions(qos=1))
            for t in ingest_subscriptions(self.cfg.limits.prefix, self.cfg.group)
        ]
        subs.append((self._probe_topic, SubscribeOptions(qos=1, noLocal=False)))
        client.subscribe(subs)
        self._probe_seen = time.monotonic()
        log.info(
            "%s connected to %s (session present: %s)",
            self.cfg.client_id,
            self._addr.redacted(),
            flags.session_present,
        )

    def _on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Properties | None
    ) -> None:
        if self._connected:
            self.metrics.connected.dec()
        self._connected = False
        if not self._stopping.is_set():
            log.warning("%s disconnected (%s); reconnecting", self.cfg.client_id, rc)

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._probe_topic:
            self._probe_seen = time.monotonic()
            if msg.qos:
                client.ack(msg.mid, msg.qos)
            return
        self._queue.put(
            # paho hands over bytes; the conversion is only for the type checker's bytearray
            _Inbound(
                msg.topic,
                msg.payload if isinstance(msg.payload, bytes) else bytes(msg.payload),
                msg.mid,
                msg.qos,
                self._epoch,
                time.time(),
            )
        )

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self.client.connect_async(
            self._addr.host,
            self._addr.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False,
            properties=self._connect_properties(),
        )
        self.client.loop_start()
        self._watchdog.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write and acknowledge what was received, then leave; the session stays on the broker."""
        self._stopping.set()
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            # The database is still away: give up on the held batch without acknowledging it;
            # the broker keeps those messages for this client id.
            self._abandon.set()
            self._thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()
        self._writer.close()

    def _drop_connection(self) -> None:
        # Shutting the socket down (not closing it under paho's select) makes the broker see
        # the connection gone and paho see a lost connection, which it reconnects.
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def ready(self) -> tuple[bool, str]:
        """Ready = connected to the broker and the database accepted the last write or ping."""
        if not self._connected:
            return False, f"{self.cfg.client_id}: not connected to the broker"
        if not self._db_ok:
            return False, f"{self.cfg.client_id}: database unavailable"
        return True, f"{self.cfg.client_id}: ready"

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def database_ok(self) -> bool:
        return self._db_ok

    # --- writer thread --------------------------------------------------------------------

    def _run_writer(self) -> None:
        """Take messages off the queue, validate them, and write them in batches.

        A batch is written when it holds ``batch_size`` readings, when its first message has
        waited ``batch_max_ms``, or as soon as the queue is empty: at low rates a message is
        written at once; at high rates a batch holds what arrived while the last one was
        committing. (Validating and writing on two threads was measured slower: three Python
        threads contend for the GIL, and batches shrink.)
        """
        self._db_ok = self._writer.ping()
        self.metrics.database_up.set(1 if self._db_ok else 0)
        batch: list[tuple[_Inbound, Checked]] = []
        size = 0
        first_at = 0.0
        max_age = self.cfg.batch_max_ms / 1000
        stopping = False
        limits = self.cfg.limits
        now = datetime.now(UTC)
        while True:
            try:
                if batch or stopping:
                    item = self._queue.get_nowait()
                else:
                    item = self._queue.get(timeout=1.0)
            except queue.Empty:
                item = None
            if item is _STOP:
                stopping = True
            elif isinstance(item, _Inbound):
                if not batch:
                    first_at = time.monotonic()
                    now = datetime.now(UTC)
                checked = check_message(item.topic, item.payload, limits, now)
                batch.append((item, checked))
                size += len(checked.readings) + len(checked.rejects) + 1
                if size < self.cfg.batch_size and time.monotonic() - first_at < max_age:
                    continue
            if batch:
                self.metrics.received.inc(len(batch))
                self._received += len(batch)
                if not self._flush(batch):
                    return  # abandoned: nothing more is acknowledged
                batch, size = [], 0
            elif stopping:
                return
            elif item is None and not self._db_ok:
                self._db_ok = self._writer.ping()
                self.metrics.database_up.set(1 if self._db_ok else 0)

    def _flush(self, batch: list[tuple[_Inbound, Checked]]) -> bool:
        received = [
            Received(i.topic, c, datetime.fromtimestamp(i.received_at, UTC), i.payload)
            for i, c in batch
        ]
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                result = self._writer.write(received)
                break
            except DatabaseUnavailable as exc:
                self._db_ok = False
                self.metrics.database_up.set(0)
                self.metrics.retries.inc()
                self.metrics.buffer.set(self._held())
                log.warning(
                    "database unavailable (%s); %d messages held, retrying in %.1fs",
                    exc,
                    len(batch),
                    delay,
                )
                if self._abandon.wait(delay):
                    return False
                delay = min(delay * 2, self.cfg.retry_max_s)
        self._db_ok = True
        self.metrics.database_up.set(1)
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(result.inserted + result.duplicates)
        self.metrics.written.inc(result.inserted)
        self.metrics.duplicates.inc(result.duplicates)
        self.metrics.statuses.inc(result.statuses)
        for reason, n in result.reasons.items():
            self.metrics.dead_letters.labels(reason).inc(n)
        # lag sampled once per batch (its last message): a histogram per message costs more
        # than the rest of the bookkeeping together
        last = batch[-1][1].readings
        if last:
            self.metrics.lag_seconds.observe(max(0.0, time.time() - last[0].ts.timestamp()))
        self._ack(batch)
        if self._on_commit is not None:
            self._on_commit(received)
        self.metrics.buffer.set(self._held())
        self.batches += 1
        return True

    def _held(self) -> int:
        """Messages received and not yet acknowledged (Receive Maximum bounds it)."""
        return self._received - self._acked + self._queue.qsize()

    def _ack(self, batch: list[tuple[_Inbound, Checked]]) -> None:
        """Acknowledge a committed batch, in the order the messages arrived.

        Messages of an earlier connection are left unacknowledged: the broker redelivers them
        and the idempotent insert counts them as duplicates. The PUBACKs of a batch go to paho
        as one write (one lock, one wake-up, one send) instead of one call per message; paho's
        public ``ack()`` is the fallback should its internal queue ever change.
        """
        epoch = self._epoch
        self._acked += len(batch)
        mids = [i.mid for i, _ in batch if i.qos == 1 and i.epoch == epoch]
        if not mids:
            return
        enqueue = getattr(self.client, "_packet_queue", None)
        if enqueue is None:
            for mid in mids:
                if self.client.ack(mid, 1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    log.debug("ack of %s not sent; the broker will redeliver it", mid)
            return
        blob = b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids])
        enqueue(PUBACK, blob, 0, 1)

    # --- watchdog -------------------------------------------------------------------------

    def _run_watchdog(self) -> None:
        """Notice a connection that looks alive but delivers nothing, and reconnect it.

        A probe message is published to this worker's own topic; while the writer keeps up
        (nothing buffered, database fine) it must come back within ``stall_after_s``.
        """
        while not self._stopping.wait(self.cfg.probe_interval_s):
            if not self._connected:
                continue
            self.client.publish(self._probe_topic, b"probe", qos=1)
            idle = self._queue.qsize() == 0 and self._db_ok
            if idle and time.monotonic() - self._probe_seen > self.cfg.stall_after_s:
                log.warning(
                    "%s: no delivery for %.0fs while idle; reconnecting",
                    self.cfg.client_id,
                    time.monotonic() - self._probe_seen,
                )
                self.metrics.stalls.inc()
                self._probe_seen = time.monotonic()
                self._drop_connection()
