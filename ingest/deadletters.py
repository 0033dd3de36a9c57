"""How many dead letters a device may leave: at most ``per_minute`` rows in any clock minute;
the rest are counted, and each minute's excess is kept as one summary row per device (reason
``too_many_dead_letters``) instead of row by row. One broken or hostile device (a 24 KB message
of 1,000 bad elements is 1,000 rows) cannot fill the table. Pure, with an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from core.wire import Reason
from ingest.protocol import DeadLetter
from ingest.validate import Reject


class DeadLetterBudget:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._used: dict[str | None, tuple[int, int]] = {}  # device -> (minute, rows kept)

    def admit(self, dead: list[DeadLetter]) -> tuple[list[DeadLetter], dict[str, int]]:
        """The rows to store (within the budget, plus one summary row per device over it) and
        how many were left out, by reason."""
        minute = int(self._clock() // 60)
        if len(self._used) > 10_000:  # forget devices of earlier minutes
            self._used = {d: u for d, u in self._used.items() if u[0] == minute}
        kept: list[DeadLetter] = []
        over: dict[str | None, tuple[DeadLetter, int]] = {}
        left_out: dict[str, int] = {}
        for d in dead:
            device = d.reject.device_id
            at, used = self._used.get(device, (minute, 0))
            if at != minute:
                used = 0
            if used < self.per_minute:
                kept.append(d)
                self._used[device] = (minute, used + 1)
                continue
            first, n = over.get(device, (d, 0))
            over[device] = (first, n + 1)
            reason = d.reject.reason.value
            left_out[reason] = left_out.get(reason, 0) + 1
        for device, (first, n) in over.items():
            detail = (
                f"{n} more dead letters of this device were counted, not kept (at most "
                f"{self.per_minute} a minute); the first of them: {first.reject.reason.value}: "
                f"{first.reject.detail[:200]}"
            )
            summary = Reject(first.reject.topic, device, Reason.TOO_MANY_DEAD_LETTERS, detail, b"")
            kept.append(DeadLetter(first.received_at, summary))
        return kept, left_out
