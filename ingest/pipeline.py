"""The validator and writer processes of an ingest worker: validation and database writes off
the MQTT process, and off each other.

One Python process cannot both read a busy MQTT connection and validate and write what it
reads: the work shares one interpreter lock, and the network loop got about two thirds of it
(py-spy, session 3). Nor can one process both validate and write at the database's pace: with
validation in the writing process, 100-reading arrays were stored at 0.73-0.99 of the
database's own rate (median 0.76 of five rounds); with the same validation done in another
process, 0.84-1.24 (median 1.04), measured by feeding the writer through its pipe (session 4).
So each worker is three processes, joined by pipes:

    MQTT process  --Shipment-->  validator process  --Validated-->  writer process
    (network loop)                (check_message)                   (queue -> batches -> write)
          ^                                                                  |
          +---------------------------- Outcome (committed) -----------------+

The validator checks every message against the contract and the limits and hands on the
readings as plain rows (Row). In the writer process a reader thread queues what arrives; the
main thread merges it into batches (by size and age), writes each in one transaction, retries
with backoff while the database is away, and reports every commit back. The MQTT process
acknowledges a message only when the Outcome naming its shipment arrives: nothing is
acknowledged before it is committed, and a process that dies takes no acknowledgement with it
(the MQTT process restarts both, and the broker redelivers what they held).

Memory stays bounded: the broker sends at most Receive Maximum unacknowledged messages, so the
pipeline never holds more than that, however long the database is away.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from core import clock
from core.logs import setup_logging
from core.wire import StatusMessage
from ingest.validate import Checked, Limits, Reject, Row, check_message
from ingest.writer import BatchResult, DatabaseUnavailable, Received, Writer

log = logging.getLogger(__name__)


class Inbound(NamedTuple):
    """One MQTT message as the network loop saw it. It crosses the pipe as a plain tuple of
    these fields (a NamedTuple pickles ten times slower) and is named again here."""

    topic: str
    payload: bytes
    received_at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class WriterSpec:
    """What the writer process needs (picklable: it crosses the process boundary)."""

    db_url: str
    limits: Limits
    batch_size: int
    batch_max_ms: int
    dead_letter_max_bytes: int
    retry_max_s: float
    log_level: int = logging.INFO
    log_json: bool = False
    details: bool = False  # report every stored reading's device time (benchmarks, tests)
    clock_shift_s: float = 0.0  # the worker's core.clock, for the future-stamp check


@dataclass(frozen=True, slots=True)
class Shipment:
    """Messages handed over by the network loop, in arrival order: (topic, payload,
    received_at) tuples, the fields of Inbound."""

    id: int
    messages: list[tuple[str, bytes, float]]


@dataclass(slots=True)
class Outcome:
    """A committed batch (``shipments`` non-empty), or news about the database."""

    shipments: list[int] = field(default_factory=list)
    result: BatchResult | None = None
    commit_s: float = 0.0
    lag_s: float | None = None  # receive time minus device time, one sample per batch
    database_up: bool = True
    retry: bool = False  # a write failed and will be retried
    reading_ts: list[float] = field(default_factory=list)  # only with WriterSpec.details


class Stop(NamedTuple):
    """Write what is held, report it, then exit (``abandon``: exit without writing)."""

    abandon: bool = False


_EOF = object()
_QUIET_S = 0.02  # under load, a batch waits for more until nothing has come for this long


# One message after the validator: topic, payload, received_at, its rows as plain tuples, its
# rejects and its status. Plain tuples: as objects (Inbound, Checked, Row) a single-reading
# message pickled in 4.9 us and unpickled in 1.5; as tuples 0.8 and 0.5, plus 0.8 to rebuild.
_Message = tuple[str, bytes, float, list[tuple[Any, ...]], list[Reject], StatusMessage | None]


@dataclass(slots=True)
class Validated:
    """A shipment after the validator, in the form that crosses to the writer process."""

    shipment: int
    messages: list[_Message]

    @classmethod
    def of(cls, shipment: int, items: list[tuple[Inbound, Checked]]) -> Validated:
        return cls(
            shipment,
            [
                (m.topic, m.payload, m.received_at, [tuple(r) for r in c.readings], c.rejects,
                 c.status)
                for m, c in items
            ],
        )  # fmt: skip

    def items(self) -> list[tuple[Inbound, Checked]]:
        return [
            (Inbound(topic, payload, at), Checked([Row._make(r) for r in rows], rejects, status))
            for topic, payload, at, rows, rejects, status in self.messages
        ]


@dataclass(slots=True)
class _Checked:
    """A validated shipment in the writer process, waiting to join a batch."""

    shipment: int
    items: list[tuple[Inbound, Checked]]


def run_validator_process(spec: WriterSpec, inbox: Connection, outbox: Connection) -> None:
    """Entry point of the validator process: Shipments in, Validated out, in order; Stop passes
    through (after everything before it)."""
    setup_logging(logging.getLevelName(spec.log_level), json=spec.log_json)
    clock.set_shift(spec.clock_shift_s)
    _tune_gc()
    limits = spec.limits
    try:
        while True:
            try:
                item = inbox.recv()
            except (EOFError, OSError):
                return  # the MQTT process is gone; closing our end tells the writer
            if isinstance(item, Shipment):
                now = clock.now()
                checked = [
                    (Inbound(topic, payload, at), check_message(topic, payload, limits, now))
                    for topic, payload, at in item.messages
                ]
                outbox.send(Validated.of(item.id, checked))
            elif isinstance(item, Stop):
                outbox.send(item)
                if item.abandon:
                    return
                # still listening: a graceful stop may turn into an abandon
    except (BrokenPipeError, OSError):
        return  # the writer process is gone; the MQTT process restarts us both
    finally:
        outbox.close()


def run_writer_process(spec: WriterSpec, inbox: Connection, outbox: Connection) -> None:
    """Entry point of the writer process (multiprocessing target)."""
    setup_logging(logging.getLevelName(spec.log_level), json=spec.log_json)
    clock.set_shift(spec.clock_shift_s)
    _tune_gc()
    _WriterLoop(spec, inbox, outbox).run()


def _tune_gc() -> None:
    """Make the cyclic garbage collector cheap for this process's pattern.

    Checking makes several objects a reading (models, tuples, lists) that reference counting
    frees a batch later. With the collector's defaults (a young-generation pass every 700
    allocations, full passes over everything imported: pydantic, psycopg, ~10^5 objects),
    unpickling, validating and preparing single-reading messages took 9 us a message, against
    6 us with this; 100-reading arrays 8.4 against 4.2 us a reading (measured on the bench's
    messages, the writer's few batches alive at a time). What is alive now is frozen out of the
    collector's sight and young passes run every 10,000 allocations; cycles are still collected.
    """
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


class _WriterLoop:
    def __init__(self, spec: WriterSpec, inbox: Connection, outbox: Connection) -> None:
        self.spec = spec
        self.inbox, self.outbox = inbox, outbox
        self.writer = Writer(spec.db_url, dead_letter_max_bytes=spec.dead_letter_max_bytes)
        self.queue: queue.SimpleQueue[_Checked | Stop | object] = queue.SimpleQueue()
        self.abandon = threading.Event()

    # --- reader thread: pipe -> queue ---------------------------------------------------------

    def _read(self) -> None:
        while True:
            try:
                item = self.inbox.recv()
            except (EOFError, OSError):
                # The validator is gone (the MQTT process ended, or the validator died): stop
                # at once. What was not acknowledged is redelivered by the broker, to this
                # worker's new pipeline if the MQTT process is alive to start one.
                self.abandon.set()
                self.queue.put(_EOF)
                return
            if isinstance(item, Stop):
                if item.abandon:
                    self.abandon.set()
                self.queue.put(item)
                if item.abandon:
                    return
                continue  # still listening: a graceful stop may turn into an abandon
            if isinstance(item, Validated):
                self.queue.put(_Checked(item.shipment, item.items()))

    # --- main thread: queue -> batches -> database --------------------------------------------

    def run(self) -> None:
        """Merge validated shipments into batches and write them.

        A batch is written when it holds ``batch_size`` readings, when its first message has
        waited ``batch_max_ms``, or as soon as nothing more is queued. Under load (the last
        batch was full) it waits for more instead, up to the age limit or until nothing has
        come for ``_QUIET_S`` (a burst ended): per-batch costs (a transaction, the
        device-status upsert of every device in it) fell from about half of the database's time
        at 250-row batches to a fifth at 2,000 (bench/ingest.py's ceiling at each size), while
        at lower rates every message is written at once. (Waiting after any batch of an eighth
        of ``batch_size`` made a steady 2,000 messages/s, never quiet for 20 ms, hold the batch
        after each hiccup of 125 ms for the whole age limit: ~200 messages 100 ms late, enough
        to move the p99 latency.)
        """
        threading.Thread(target=self._read, name="writer-inbox", daemon=True).start()
        up = self.writer.ping()
        self._send(Outcome(database_up=up))
        size_limit = self.spec.batch_size
        max_age = self.spec.batch_max_ms / 1000
        pending: list[_Checked] = []
        size = 0
        first_at = 0.0
        busy = False
        stopping = False
        try:
            while True:
                if pending:
                    left = max_age - (time.monotonic() - first_at)
                    wait = min(left, _QUIET_S) if busy and not stopping and left > 0 else 0.0
                else:
                    wait = 0.0 if stopping else 1.0
                try:
                    item = self.queue.get(timeout=wait) if wait else self.queue.get_nowait()
                except queue.Empty:
                    item = None
                if item is _EOF:
                    return
                if isinstance(item, Stop):
                    if item.abandon:
                        return
                    stopping = True
                elif isinstance(item, _Checked):
                    if not pending:
                        first_at = time.monotonic()
                    pending.append(item)
                    size += sum(max(1, len(c.readings) + len(c.rejects)) for _, c in item.items)
                    if size < size_limit and time.monotonic() - first_at < max_age:
                        continue
                if pending:
                    if not self._flush(pending):
                        return  # abandoned while the database was away
                    up, busy = True, size >= size_limit
                    pending, size = [], 0
                elif stopping:
                    self._send(Outcome(database_up=up))
                    return
                elif item is None and not up:
                    up = self.writer.ping()
                    if up:
                        self._send(Outcome(database_up=True))
        finally:
            self.writer.close()

    def _flush(self, pending: list[_Checked]) -> bool:
        items = [pair for chunk in pending for pair in chunk.items]
        received = [
            Received(m.topic, c, datetime.fromtimestamp(m.received_at, UTC), m.payload)
            for m, c in items
        ]
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                result = self.writer.write(received)
                break
            except DatabaseUnavailable as exc:
                log.warning(
                    "database unavailable (%s); %d messages held, retrying in %.1fs",
                    exc,
                    len(items),
                    delay,
                )
                self._send(Outcome(database_up=False, retry=True))
                if self.abandon.wait(delay):
                    return False
                delay = min(delay * 2, self.spec.retry_max_s)
        commit_s = time.perf_counter() - started
        lag = None
        last = items[-1][1].readings
        if last:
            lag = max(0.0, (clock.now() - last[0].ts).total_seconds())
        ts = [r.ts.timestamp() for _, c in items for r in c.readings] if self.spec.details else []
        self._send(
            Outcome(
                shipments=[chunk.shipment for chunk in pending],
                result=result,
                commit_s=commit_s,
                lag_s=lag,
                reading_ts=ts,
            )
        )
        return True

    def _send(self, outcome: Outcome) -> None:
        try:
            self.outbox.send(outcome)
        except (BrokenPipeError, OSError):
            self.abandon.set()  # the MQTT process is gone; its broker session keeps the rest
