"""The batching rule (ingest/batcher.py), case by case, on a clock the test moves."""

from __future__ import annotations

import pytest

from ingest.batcher import IDLE_WAIT_S, Batcher


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock) -> Batcher[str]:
    return Batcher(size=100, max_age_s=0.1, quiet_s=0.02, clock=clock)


def test_nothing_held_blocks_for_the_idle_wait_and_is_never_due(clock: Clock) -> None:
    b = make(clock)
    assert b.wait() == IDLE_WAIT_S
    assert not b.due(arrived=False)


def test_at_low_rates_a_batch_is_written_as_soon_as_nothing_more_is_queued(clock: Clock) -> None:
    b = make(clock)
    b.add("a", 1)
    assert not b.due(arrived=True)  # look for more first
    assert b.wait() == 0.0  # ... without waiting
    assert b.due(arrived=False)  # nothing more: write now
    assert b.take() == ["a"]
    assert b.held == 0


def test_a_batch_is_written_when_it_reaches_the_size(clock: Clock) -> None:
    b = make(clock)
    b.add("a", 60)
    assert not b.due(arrived=True)
    b.add("b", 40)
    assert b.due(arrived=True)
    assert b.take() == ["a", "b"]


def test_a_batch_is_written_when_its_first_shipment_reaches_the_age_limit(clock: Clock) -> None:
    b = make(clock)
    b.add("a", 1)
    clock.t += 0.05
    b.add("b", 1)
    assert not b.due(arrived=True)
    clock.t += 0.051  # the first shipment is now 101 ms old
    b.add("c", 1)
    assert b.due(arrived=True)


def test_after_a_full_batch_the_next_waits_for_more_until_a_quiet_gap(clock: Clock) -> None:
    b = make(clock)
    b.add("full", 100)
    b.take()  # a full batch: under load
    b.add("a", 1)
    assert b.wait() == pytest.approx(0.02)  # waits for more, up to the quiet gap
    clock.t += 0.09
    assert b.wait() == pytest.approx(0.01)  # ... never past the age limit
    clock.t += 0.02
    assert b.wait() == 0.0
    assert b.due(arrived=False)
    b.take()  # not full: the next batch is written as soon as nothing is queued
    b.add("b", 1)
    assert b.wait() == 0.0


def test_when_stopping_nothing_waits(clock: Clock) -> None:
    b = make(clock)
    b.add("full", 100)
    b.take()
    b.add("a", 1)
    b.stopping = True
    assert b.wait() == 0.0
    assert b.due(arrived=False)
    b.take()
    assert b.wait() == 0.0  # nothing held while stopping: do not block either
