"""The simulator through the real broker and ingest into the real database; live pacing."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.registry import Device, Household, add_devices, add_households
from ingest.worker import IngestWorker
from simulator.device import OutMessage
from simulator.faults import malformed_messages
from simulator.model import make_fleet
from simulator.params import Params
from simulator.publisher import MqttSink
from simulator.runner import SeqStore, backfill, live
from tests.helpers import metric_value, wait_for

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]


def test_backfill_is_stored_once_with_duplicates_counted_and_malformed_dead_lettered(
    db: Conn, start_worker: Callable[..., IngestWorker], mqtt_test_url: str, prefix: str
) -> None:
    p = Params(resend_rate=0.05, offline_rate_per_day=0.3)
    fleet = make_fleet(8, seed=11, p=p)
    add_households(
        db, [Household(h.ref, h.cohort, h.occupants, None, date(2024, 1, 1)) for h in fleet]
    )
    add_devices(db, [Device(h.device_id, h.ref) for h in fleet])
    w = start_worker()
    end = datetime.now(UTC)
    bad = malformed_messages(fleet[0], end - timedelta(hours=1), unknown_device="FWD-UNREGISTERED")
    sink = MqttSink(mqtt_test_url, f"sim-{uuid.uuid4().hex[:6]}").connect()
    summ = backfill(
        sink, prefix, fleet, end - timedelta(days=4), end, 11, p, SeqStore(None), malformed=bad
    )
    assert summ.not_confirmed == 0
    assert summ.resends > 0 and summ.readings > 50
    wait_for(
        lambda: (
            metric_value(w.metrics.written) + metric_value(w.metrics.duplicates)
            >= summ.readings + summ.resends
        ),
        60,
        "every generated reading",
    )
    wait_for(
        lambda: db.execute("SELECT count(*) FROM dead_letters").fetchone() == (len(bad),),
        30,
        "every malformed message dead-lettered",
    )
    stored = {(str(d), int(s)) for d, s in db.execute("SELECT device_id, seq FROM readings")}  # type: ignore[call-overload]
    assert stored == summ.expected_keys
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (len(summ.expected_keys),)
    assert metric_value(w.metrics.duplicates) == summ.resends
    reasons = sorted(str(r[0]) for r in db.execute("SELECT reason FROM dead_letters"))
    assert reasons == sorted(m.reason.value for m in bad)


def test_live_keeps_the_requested_pace_and_keeps_seq_across_runs(tmp_path: Path) -> None:
    class Counting:
        sent = 0

        def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
            self.sent += 1

        def close(self, timeout: float = 30.0) -> int:
            return 0

    p = Params(offline_rate_per_day=0, resend_rate=0)
    fleet = make_fleet(300, seed=2, p=p)
    speed = 3600.0  # a simulated hour per second
    seqs = SeqStore(tmp_path / "seq.json")
    stop = threading.Event()
    lags: list[float] = []
    start = datetime(2026, 5, 6, 17, 0, tzinfo=UTC)
    real0 = time.monotonic()

    def on_message(m: OutMessage) -> None:
        sim_elapsed = (time.monotonic() - real0) * speed
        due_elapsed = (m.due - start).total_seconds()
        if due_elapsed > speed:  # after the first simulated hour
            lags.append((sim_elapsed - due_elapsed) / due_elapsed)

    timer = threading.Timer(4.0, stop.set)
    timer.start()
    summ = live(
        Counting(),
        "wastepilot/v1",
        fleet,
        speed,
        2,
        p,
        seqs,
        stop,
        start=start,
        on_message=on_message,
    )
    assert summ.readings > 100 and lags
    # no message went out before its simulated time came, and they went out at its pace:
    # typically within 5 % of the elapsed time (measured here: 0.05 %), none later than 25 %
    # (room for a busy machine's scheduling hiccup; a simulator that fell behind the clock
    # would lag more and more)
    assert min(lags) >= 0, min(lags)
    assert statistics.median(lags) <= 0.05, statistics.median(lags)
    assert max(lags) <= 0.25, max(lags)
    # Ctrl-C (the stop event) kept each device's next seq for the next run
    saved = SeqStore(tmp_path / "seq.json")
    assert {d: s.next_seq for d, s in saved.states.items()} == {
        d: s.next_seq for d, s in seqs.states.items()
    }
    assert any(s.next_seq > 1 for s in saved.states.values())
    published: dict[str, int] = {}

    def record(m: OutMessage) -> None:
        body = m.body if isinstance(m.body, list) else [m.body]
        for r in body:
            published[r["device_id"]] = min(published.get(r["device_id"], 1 << 62), r["seq"])

    stop2 = threading.Event()
    threading.Timer(1.5, stop2.set).start()
    live(
        Counting(),
        "wastepilot/v1",
        fleet,
        speed,
        2,
        p,
        saved,
        stop2,
        start=start + timedelta(hours=14),
        on_message=record,
    )
    assert published
    for dev, first_seq in published.items():
        assert first_seq == seqs.states[dev].next_seq, dev  # continues, no seq reused or skipped
