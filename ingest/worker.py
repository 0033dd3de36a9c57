"""An ingest worker: an MQTT 5 shared-subscription consumer feeding its pipeline processes.

Delivery: QoS 1, persistent session (clean start off, session expiry), manual acknowledgement
*after* the batch holding a message has committed. The broker sends at most Receive Maximum
unacknowledged messages, which bounds this worker's memory however long the database is away.

The paho network thread only collects messages and hands them on in shipments; validation and
writing happen in the worker's validator and writer processes (ingest/pipeline.py; STYLE.md,
"Avoid" 2), and the writer's reports of committed batches release the acknowledgements.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from core import clock
from core.logs import JsonFormatter
from core.mqtturl import parse_mqtt_url
from core.settings import Settings
from core.topics import ingest_subscriptions
from ingest import mqttclient
from ingest.metrics import IngestMetrics
from ingest.pipeline import (
    Outcome,
    Shipment,
    Stop,
    WriterSpec,
    run_validator_process,
    run_writer_process,
)
from ingest.validate import Limits

log = logging.getLogger(__name__)


@cache
def _context() -> ForkServerContext | SpawnContext:
    """Writer processes start from a fork server that has imported the writer's modules once
    (fast to start, and no fork of a process running paho's threads)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.pipeline"])
    return ctx


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


_PUBACK = struct.Struct("!BBH")  # MQTT PUBACK: type 0x40, remaining length 2, packet id

# A shipment to the writer process closes at this many messages or bytes of payload while a
# backlog streams in (and whenever a read burst ends): small enough that a batch of arrays can
# stay near WASTEPILOT_INGEST_BATCH_SIZE readings, large enough to make the hand-over cheap.
_SHIP_MESSAGES = 256
_SHIP_BYTES = 64 * 1024


_PIPELINE_START_S = 10.0  # longest wait for the writer process's first report before connecting

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; Python 3.10+ names it


def _widen(conn: Connection) -> None:
    """Give the pipe to the writer process room for a few shipments (Linux: 1 MiB instead of
    64 KiB), so that the network loop does not wait while the writer validates one."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(conn.fileno(), _F_SETPIPE_SZ, 1 << 20)


class _Held(NamedTuple):
    """What acknowledging a shipment needs (kept here; only its messages cross over)."""

    epoch: int  # the connection its messages came on
    mids: list[int]  # the packet ids of its QoS 1 messages
    messages: int


class IngestWorker:
    """One consumer on the shared subscription. ``start()``, then ``stop()`` to flush and leave.

    This process runs the MQTT network loop; validation and writes run in a writer process
    (ingest/pipeline.py) so that the two do not share one interpreter lock.
    """

    def __init__(
        self,
        cfg: WorkerConfig,
        metrics: IngestMetrics | None = None,
        on_commit: Callable[[Outcome], None] | None = None,
        *,
        reading_times: bool = False,
    ) -> None:
        """``on_commit`` is called with each committed batch's Outcome; with ``reading_times``
        the Outcome also lists every stored reading's device time (latency measurements)."""
        self.cfg = cfg
        self._on_commit = on_commit
        self._reading_times = reading_times
        self.metrics = metrics or IngestMetrics()
        self._epoch = 0  # the current connection's number (changed under _pending_lock)
        self._connected = False
        self._db_ok = False
        self._stopping = threading.Event()
        # Messages received and not yet shipped, and shipments not yet committed. The broker
        # sends at most Receive Maximum unacknowledged messages: that bounds both.
        self._pending: list[tuple[str, bytes, float]] = []  # Inbound's fields, see _on_message
        self._pending_mids: list[int] = []
        self._pending_bytes = 0
        self._pending_lock = threading.Lock()
        self._shipped: dict[int, _Held] = {}
        self._next_shipment = 0
        self._ship_lock = threading.Lock()
        self._send_lock = threading.Lock()  # the network loop and stop() both send
        self._watchdog = threading.Thread(
            target=self._run_watchdog, name=f"watchdog-{cfg.client_id}", daemon=True
        )
        self._probe_topic = f"{cfg.limits.prefix}/ingest/probe/{cfg.client_id}"
        self._probe_seen = time.monotonic()
        self.batches = 0  # committed batches, for tests and the summary line
        self._process: BaseProcess | None = None  # the writer process
        self._validator: BaseProcess | None = None
        self._inbox: Connection | None = None  # to the validator process
        self._outbox: Connection | None = None  # from it
        self._outcomes: threading.Thread | None = None
        self._reported = threading.Event()  # the writer process has reported at least once
        self.client = self._make_client()

    # --- MQTT side (network thread) ------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        addr = parse_mqtt_url(self.cfg.mqtt_url)
        client: mqtt.Client
        if mqttclient.supported():
            client = mqttclient.BufferedClient(
                CallbackAPIVersion.VERSION2,
                client_id=self.cfg.client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
            )
            client.on_read_done = self._ship
        else:
            client = mqtt.Client(
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
        self._buffered = isinstance(client, mqttclient.BufferedClient)
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
        # Messages of an earlier connection can no longer be acknowledged; the broker
        # redelivers them and the idempotent insert absorbs the repeat. What that connection
        # delivered leaves first, so that a shipment's messages share one connection.
        self._ship()
        with self._pending_lock:
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
        topic = msg.topic
        if topic == self._probe_topic:
            self._probe_seen = time.monotonic()
            if msg.qos:
                client.ack(msg.mid, msg.qos)
            return
        if self._stopping.is_set():
            return  # not acknowledged: the broker keeps it for this session
        payload = msg.payload
        with self._pending_lock:
            # paho hands over bytes; the conversion is only for the type checker's bytearray
            data = payload if isinstance(payload, bytes) else bytes(payload)
            # A plain tuple of Inbound's fields: this process handles every message, and a
            # NamedTuple pickles ten times slower (0.8 us a message against 0.08).
            self._pending.append((topic, data, time.time()))
            if msg.qos:
                self._pending_mids.append(msg.mid)
            self._pending_bytes += len(data)
            full = len(self._pending) >= _SHIP_MESSAGES or self._pending_bytes >= _SHIP_BYTES
        if full or not self._buffered:
            self._ship()

    def _ship(self) -> None:
        """Hand what was received to the writer process (called when a read burst ends)."""
        with self._pending_lock:
            if not self._pending:
                return
            messages, mids = self._pending, self._pending_mids
            self._pending, self._pending_mids, self._pending_bytes = [], [], 0
            held = _Held(self._epoch, mids, len(messages))
        with self._ship_lock:
            shipment = Shipment(self._next_shipment, messages)
            self._next_shipment += 1
            self._shipped[shipment.id] = held
            inbox = self._inbox
        self.metrics.received.inc(len(messages))
        if inbox is None:
            return
        try:
            with self._send_lock:  # one writer at a time: a message's bytes must not interleave
                inbox.send(shipment)
        except (BrokenPipeError, OSError):
            # _run_outcomes sees it too, restarts it and has the broker redeliver
            log.warning("%s: the writer process is gone", self.cfg.client_id)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._start_writer()
        # Take messages once the pipeline can: the writer reports in after its first contact
        # with the database (at once when it is refused, within its connect timeout when it
        # does not answer). Until then a backlog would only fill the pipes while the two
        # processes start, and hold up the first commits.
        if not self._reported.wait(_PIPELINE_START_S):
            log.warning(
                "%s: the writer process has not reported in; connecting anyway", self.cfg.client_id
            )
        self.client.connect_async(
            self._addr.host,
            self._addr.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False,
            properties=self._connect_properties(),
        )
        self.client.loop_start()
        self._watchdog.start()

    def _start_writer(self) -> None:
        """Start the validator and writer processes (ingest/pipeline.py), piped in a row."""
        ctx = _context()
        inbox_r, inbox_w = ctx.Pipe(duplex=False)
        valid_r, valid_w = ctx.Pipe(duplex=False)
        outbox_r, outbox_w = ctx.Pipe(duplex=False)
        root = logging.getLogger()
        spec = WriterSpec(
            db_url=self.cfg.db_url,
            limits=self.cfg.limits,
            batch_size=self.cfg.batch_size,
            batch_max_ms=self.cfg.batch_max_ms,
            dead_letter_max_bytes=self.cfg.dead_letter_max_bytes,
            retry_max_s=self.cfg.retry_max_s,
            log_level=root.getEffectiveLevel(),
            log_json=any(isinstance(h.formatter, JsonFormatter) for h in root.handlers),
            details=self._reading_times,
            clock_shift_s=clock.shift(),
        )
        validator = ctx.Process(
            target=run_validator_process,
            args=(spec, inbox_r, valid_w),
            name=f"validator-{self.cfg.client_id}",
            daemon=True,
        )
        proc = ctx.Process(
            target=run_writer_process,
            args=(spec, valid_r, outbox_w),
            name=f"writer-{self.cfg.client_id}",
            daemon=True,
        )
        _widen(inbox_w)
        _widen(valid_w)
        validator.start()
        proc.start()
        # their ends belong to them alone: an exit must read as end-of-file to the next in line
        for end in (inbox_r, valid_r, valid_w, outbox_w):
            end.close()
        with self._ship_lock:
            old = (self._inbox, self._outbox)  # of processes that died, if any
            self._inbox, self._outbox, self._process = inbox_w, outbox_r, proc
            self._validator = validator
        with self._send_lock:  # a validator left from a writer that died reads end-of-file
            for conn in old:
                if conn is not None:
                    conn.close()
        self._outcomes = threading.Thread(
            target=self._run_outcomes,
            args=(outbox_r,),
            name=f"outcomes-{self.cfg.client_id}",
            daemon=True,
        )
        self._outcomes.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write and acknowledge what was received, then leave; the session stays on the broker."""
        self._stopping.set()
        self._ship()
        self._tell(Stop())
        if self._outcomes is not None:
            self._outcomes.join(timeout)
            if self._outcomes.is_alive():
                # The database is still away: give up on the held messages without
                # acknowledging them; the broker keeps them for this client id.
                self._tell(Stop(abandon=True))
                self._outcomes.join(5)
        self.client.disconnect()
        self.client.loop_stop()
        for proc in (self._process, self._validator):
            if proc is not None:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
        for conn in (self._inbox, self._outbox):
            if conn is not None:
                conn.close()

    def _tell(self, msg: Stop) -> None:
        with contextlib.suppress(OSError, AttributeError), self._send_lock:
            if self._inbox is not None:
                self._inbox.send(msg)

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

    # --- outcomes of the writer process ---------------------------------------------------

    def _run_outcomes(self, outbox: Connection) -> None:
        while True:
            try:
                outcome: Outcome = outbox.recv()
            except (EOFError, OSError):
                break
            self._db_ok = outcome.database_up
            self.metrics.database_up.set(1 if outcome.database_up else 0)
            self._reported.set()
            if outcome.retry:
                self.metrics.retries.inc()
            if outcome.shipments:
                self._committed(outcome)
            self.metrics.buffer.set(self._held())
        if not self._stopping.is_set():
            self._writer_died()

    def _committed(self, outcome: Outcome) -> None:
        with self._ship_lock:
            held = [self._shipped.pop(sid) for sid in outcome.shipments if sid in self._shipped]
        res = outcome.result
        if res is not None:
            self.metrics.commit_seconds.observe(outcome.commit_s)
            self.metrics.batch_size.observe(res.inserted + res.duplicates)
            self.metrics.written.inc(res.inserted)
            self.metrics.duplicates.inc(res.duplicates)
            self.metrics.statuses.inc(res.statuses)
            for reason, n in res.reasons.items():
                self.metrics.dead_letters.labels(reason).inc(n)
        if outcome.lag_s is not None:
            self.metrics.lag_seconds.observe(outcome.lag_s)
        self._ack(held)
        self.batches += 1
        if self._on_commit is not None:
            self._on_commit(outcome)

    def _writer_died(self) -> None:
        """The writer process exited on its own (a crash of it, or of the validator before it):
        start both again, and have the broker redeliver what the dead ones held by reconnecting
        (those messages can no longer be acknowledged on this connection)."""
        if self._process is not None:
            self._process.join(1)  # its exit code, for the log
        codes = [p.exitcode for p in (self._validator, self._process) if p is not None]
        log.error(
            "%s: pipeline process exited (validator, writer exit codes: %s); restarting them",
            self.cfg.client_id,
            codes,
        )
        self._db_ok = False
        self.metrics.database_up.set(0)
        with self._ship_lock:
            self._shipped.clear()
        # a writer that dies at once (say, a broken install) must not be restarted in a tight loop
        if self._stopping.wait(1.0):
            return
        self._start_writer()
        self._drop_connection()

    def _held(self) -> int:
        """Messages received and not yet acknowledged (Receive Maximum bounds it)."""
        with self._ship_lock:
            shipped = sum(h.messages for h in self._shipped.values())
        return shipped + len(self._pending)

    def _ack(self, held: list[_Held]) -> None:
        """Acknowledge a committed batch, in the order the messages arrived.

        Messages of an earlier connection are left unacknowledged: the broker redelivers them
        and the idempotent insert counts them as duplicates. The PUBACKs of a batch go to paho
        as one write (one lock, one wake-up, one send) instead of one call per message; paho's
        public ``ack()`` is the fallback should its internal queue ever change.
        """
        epoch = self._epoch
        mids = [mid for h in held if h.epoch == epoch for mid in h.mids]
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
            idle = self._held() == 0 and self._db_ok
            if idle and time.monotonic() - self._probe_seen > self.cfg.stall_after_s:
                log.warning(
                    "%s: no delivery for %.0fs while idle; reconnecting",
                    self.cfg.client_id,
                    time.monotonic() - self._probe_seen,
                )
                self.metrics.stalls.inc()
                self._probe_seen = time.monotonic()
                self._drop_connection()
