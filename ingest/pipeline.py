"""The writer process of an ingest worker: validation and database writes off the MQTT process.

One Python process cannot both read a busy MQTT connection and validate and write what it
reads: the two share one interpreter lock, and the network loop got about two thirds of it
(py-spy, session 3). Each worker therefore runs its writer in a process of its own, fed through
a pipe:

    MQTT process (network loop)  --Shipment-->  writer process: validate -> queue -> write
                                 <--Outcome---                   (commit, then report)

Inside the writer process a reader thread takes shipments off the pipe and validates them, so
validation overlaps the database's work on the previous batch; the main thread merges what is
queued into batches (by size and age), writes each in one transaction, retries with backoff
while the database is away, and reports every commit back. The MQTT process acknowledges a
message only when the Outcome naming its shipment arrives: nothing is acknowledged before it is
committed, and a writer process that dies takes no acknowledgement with it.

Memory stays bounded: the broker sends at most Receive Maximum unacknowledged messages, so the
writer process never holds more than that, however long the database is away.
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
from typing import NamedTuple

from core.logs import setup_logging
from ingest.validate import Checked, Limits, check_message
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


@dataclass(slots=True)
class _Checked:
    shipment: int
    items: list[tuple[Inbound, Checked]]


def run_writer_process(spec: WriterSpec, inbox: Connection, outbox: Connection) -> None:
    """Entry point of the writer process (multiprocessing target)."""
    setup_logging(logging.getLevelName(spec.log_level), json=spec.log_json)
    _tune_gc()
    _WriterLoop(spec, inbox, outbox).run()


def _tune_gc() -> None:
    """Make the cyclic garbage collector cheap for this process's pattern.

    Validation makes several objects a reading (models, tuples, lists) that reference counting
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

    # --- reader thread: pipe -> validation -> queue -------------------------------------------

    def _read(self) -> None:
        limits = self.spec.limits
        while True:
            try:
                item = self.inbox.recv()
            except (EOFError, OSError):
                # The MQTT process is gone (killed, or crashed): nothing can be acknowledged
                # any more, so stop at once; the broker redelivers what was not acknowledged.
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
            if isinstance(item, Shipment):
                now = datetime.now(UTC)
                checked = [
                    (Inbound(topic, payload, at), check_message(topic, payload, limits, now))
                    for topic, payload, at in item.messages
                ]
                self.queue.put(_Checked(item.id, checked))

    # --- main thread: queue -> batches -> database --------------------------------------------

    def run(self) -> None:
        """Merge validated shipments into batches and write them.

        A batch is written when it holds ``batch_size`` readings, when its first message has
        waited ``batch_max_ms``, or as soon as nothing more is queued. Under load (the last
        batch held at least an eighth of ``batch_size``) it waits for more instead, up to the
        age limit or until nothing has come for ``_QUIET_S`` (a burst ended): per-batch costs
        (a transaction, the device-status upsert of every device in it) fell from about half of
        the database's time at 250-row batches to a fifth at 2,000 (bench/ingest.py's ceiling
        at each size), while at low rates every message is still written at once.
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
                    up, busy = True, size >= size_limit // 8
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
            lag = max(0.0, time.time() - last[0].ts.timestamp())
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
