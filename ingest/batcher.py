"""When the writer writes: the batching rule, a pure function of what arrived and a clock.

A batch is written

1. when it holds ``size`` units (readings and rejects; a message counts at least one);
2. when its first shipment has waited ``max_age_s``;
3. at once when nothing more is queued — at low rates every message is written as it comes;
4. except under load: after a *full* batch the next one waits for more, until ``max_age_s``
   or until nothing has come for ``quiet_s`` (a burst ended). Per-batch costs (a transaction,
   the status upsert of every device in it) were about half of the database's time at
   250-row batches and a fifth at 2,000 (bench/ingest.py's ceiling at each size). Waiting after
   any batch an eighth full instead made a steady 2,000 messages/s, never quiet for 20 ms, hold
   each batch after a 125 ms hiccup for the whole age limit (enough to move the p99 latency);
5. when stopping, nothing waits.

The writer loop asks ``wait()`` how long it may block for the next shipment, ``add``s what
came, and ``take``s the batch when ``due()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

QUIET_S = 0.02
IDLE_WAIT_S = 1.0  # with nothing held: how long to block before looking at the database again


class Batcher(Generic[T]):
    def __init__(
        self,
        size: int,
        max_age_s: float,
        *,
        quiet_s: float = QUIET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.max_age_s = max_age_s
        self.quiet_s = quiet_s
        self._clock = clock
        self._items: list[T] = []
        self._units = 0
        self._first_at = 0.0
        self._busy = False  # the last batch was full: wait for more
        self.stopping = False

    @property
    def held(self) -> int:
        return len(self._items)

    def wait(self) -> float:
        """How long the loop may block for the next shipment (0: look, do not wait)."""
        if not self._items:
            return 0.0 if self.stopping else IDLE_WAIT_S
        if not self._busy or self.stopping:
            return 0.0
        left = self.max_age_s - (self._clock() - self._first_at)
        return min(left, self.quiet_s) if left > 0 else 0.0

    def add(self, item: T, units: int) -> None:
        if not self._items:
            self._first_at = self._clock()
        self._items.append(item)
        self._units += units

    def due(self, *, arrived: bool) -> bool:
        """Whether to write now; ``arrived``: the last look found a shipment (False: it found
        nothing within ``wait()``)."""
        if not self._items:
            return False
        if not arrived:
            return True
        return self._units >= self.size or self._clock() - self._first_at >= self.max_age_s

    def take(self) -> list[T]:
        items, self._items = self._items, []
        self._busy = self._units >= self.size
        self._units = 0
        return items
