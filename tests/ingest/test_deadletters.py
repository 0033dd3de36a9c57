"""The per-device dead-letter budget (pure, on a clock the test moves)."""

from __future__ import annotations

from datetime import UTC, datetime

from core.wire import Reason
from ingest.deadletters import DeadLetterBudget
from ingest.protocol import DeadLetter
from ingest.validate import Reject

AT = datetime(2026, 11, 28, tzinfo=UTC)


def dead(device: str | None, n: int, reason: Reason = Reason.WRONG_TYPE) -> list[DeadLetter]:
    topic = f"wastepilot/v1/devices/{device}/readings"
    return [DeadLetter(AT, Reject(topic, device, reason, "bad", b"{}", i)) for i in range(n)]


def test_a_device_keeps_its_budget_and_its_excess_is_one_counted_row() -> None:
    clock = [120.0]
    budget = DeadLetterBudget(100, clock=lambda: clock[0])
    kept, left_out = budget.admit(dead("A", 1000) + dead("B", 3))
    by_device: dict[str | None, list[DeadLetter]] = {}
    for d in kept:
        by_device.setdefault(d.reject.device_id, []).append(d)
    assert len(by_device["B"]) == 3  # another device is not held back by A
    assert len(by_device["A"]) == 101  # 100 rows and one summary
    summary = by_device["A"][-1].reject
    assert summary.reason == Reason.TOO_MANY_DEAD_LETTERS
    assert summary.detail.startswith("900 more dead letters") and summary.payload == b""
    assert left_out == {"wrong_type": 900}
    # the rest of the minute: nothing more of A is kept row by row
    kept, left_out = budget.admit(dead("A", 5))
    assert [d.reject.reason for d in kept] == [Reason.TOO_MANY_DEAD_LETTERS]
    assert left_out == {"wrong_type": 5}
    clock[0] += 60  # the next minute: a new budget
    kept, left_out = budget.admit(dead("A", 5))
    assert len(kept) == 5 and left_out == {}
