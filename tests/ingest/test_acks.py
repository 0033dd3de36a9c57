"""The ack ledger (pure): what is acknowledged after a commit, and what a dead pipeline drops."""

from __future__ import annotations

import threading

from ingest.acks import AckLedger


def test_a_committed_shipment_releases_its_packet_ids_in_order() -> None:
    ledger = AckLedger()
    ledger.new_connection()
    a = ledger.track([5, 6, 7], 3, generation=0)
    b = ledger.track([8], 2, generation=0)  # a QoS 0 message has no packet id
    assert ledger.held == 5
    assert ledger.settle([a]) == [5, 6, 7]
    assert ledger.held == 2
    assert ledger.settle([a]) == []  # settled once only
    assert ledger.settle([b]) == [8]
    assert ledger.held == 0


def test_packet_ids_of_an_earlier_connection_are_not_acknowledged() -> None:
    ledger = AckLedger()
    ledger.new_connection()
    old = ledger.track([1, 2], 2, generation=0)
    ledger.new_connection()  # the broker redelivers `old`'s messages on this one
    new = ledger.track([1], 1, generation=0)  # the same packet id number, a new message
    assert ledger.settle([old, new]) == [1]
    assert ledger.held == 0


def test_a_dead_pipeline_drops_what_it_held_and_held_returns_to_zero() -> None:
    ledger = AckLedger()
    ledger.new_connection()
    ledger.track([1, 2, 3], 3, generation=0)
    ledger.track([4], 1, generation=0)
    survivor = ledger.track([5], 1, generation=1)
    assert ledger.forget(0) == 4
    assert ledger.held == 1
    # a shipment racing the restart (sent to the dead pipeline after it was forgotten)
    late = ledger.track([6], 1, generation=0)
    assert ledger.held == 1
    assert ledger.settle([late]) == []  # it never commits; nothing to settle either
    assert ledger.settle([survivor]) == [5]
    assert ledger.held == 0


def test_forgetting_a_generation_keeps_newer_ones() -> None:
    ledger = AckLedger()
    ledger.new_connection()
    ledger.track([1], 1, generation=2)
    assert ledger.forget(1) == 0
    assert ledger.held == 1


def test_concurrent_tracking_and_settling_keeps_the_count() -> None:
    ledger = AckLedger()
    ledger.new_connection()
    ids: list[int] = []
    lock = threading.Lock()

    def ship() -> None:
        for i in range(2000):
            sid = ledger.track([i], 1, generation=0)
            with lock:
                ids.append(sid)

    threads = [threading.Thread(target=ship) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.held == 8000 and len(set(ids)) == 8000
    assert len(ledger.settle(ids)) == 8000
    assert ledger.held == 0
