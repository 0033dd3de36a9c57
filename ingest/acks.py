"""Which received messages wait for which commit: the ack ledger of an ingest worker.

A message is acknowledged only after the batch holding it has committed. The network loop
ships what it read to the pipeline (validator and writer processes); the ledger remembers each
shipment's packet ids and the connection (epoch) they came on. When the writer reports
shipments committed, ``settle`` returns the packet ids to acknowledge — only those of the
current connection: a packet id of an earlier connection means nothing on this one (the broker
redelivers those messages, and the idempotent insert counts them as duplicates).

A pipeline that dies takes its shipments with it (they were never committed, and the worker
reconnects so that the broker redelivers them): ``forget(generation)`` drops every shipment
sent to that pipeline — also one recorded after it was forgotten (a shipment racing the
restart), which is not recorded at all. So ``held`` returns to 0 after a restart, which the
stall watchdog relies on.

Pure and thread-safe: no I/O, one lock.
"""

from __future__ import annotations

import threading
from typing import NamedTuple


class _Shipped(NamedTuple):
    epoch: int
    generation: int
    mids: list[int]
    messages: int


class AckLedger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch = 0
        self._live_from = 0  # pipeline generations below this are dead
        self._next_id = 0
        self._shipped: dict[int, _Shipped] = {}
        self._held = 0

    def new_connection(self) -> None:
        """Packet ids from now on belong to a new connection."""
        with self._lock:
            self._epoch += 1

    def track(self, mids: list[int], messages: int, generation: int) -> int:
        """Record a shipment of ``messages`` (``mids``: the packet ids of its QoS 1 ones) sent to
        pipeline ``generation`` on the current connection; returns its id."""
        with self._lock:
            sid = self._next_id
            self._next_id += 1
            if generation >= self._live_from:
                self._shipped[sid] = _Shipped(self._epoch, generation, mids, messages)
                self._held += messages
            return sid

    def settle(self, shipment_ids: list[int]) -> list[int]:
        """The committed shipments leave the ledger; the packet ids to acknowledge, in order."""
        with self._lock:
            out: list[int] = []
            for sid in shipment_ids:
                s = self._shipped.pop(sid, None)
                if s is None:
                    continue
                self._held -= s.messages
                if s.epoch == self._epoch:
                    out.extend(s.mids)
            return out

    def forget(self, generation: int) -> int:
        """Pipeline ``generation`` (and any older one) is dead: drop what was sent to it.
        Returns how many messages were dropped."""
        with self._lock:
            self._live_from = max(self._live_from, generation + 1)
            dead = [sid for sid, s in self._shipped.items() if s.generation <= generation]
            dropped = 0
            for sid in dead:
                dropped += self._shipped.pop(sid).messages
            self._held -= dropped
            return dropped

    @property
    def held(self) -> int:
        """Messages shipped and not yet settled or forgotten."""
        return self._held
