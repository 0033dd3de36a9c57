"""Ingest against the real broker and database: stored once, dead letters, two workers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from core.registry import Device, add_devices
from core.topics import readings_topic, status_topic
from ingest.worker import IngestWorker
from tests.helpers import Publisher, dumps, metric_value, reading, wait_for

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]


def count(db: Conn, query: str, *args: Any) -> int:
    row = db.execute(query.encode(), args or None).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def test_readings_are_stored_with_their_values(
    db: Conn, start_worker: Callable[..., IngestWorker], publisher: Publisher, prefix: str
) -> None:
    add_devices(db, [Device("FWD-000001", "HH-1")])
    w = start_worker()
    at = datetime(2026, 11, 20, 18, 2, 11, 250000, tzinfo=UTC)
    publisher.publish(readings_topic(prefix, "FWD-000001"), dumps(reading(seq=4711, at=at)))
    publisher.publish(
        readings_topic(prefix, "FWD-000001"),
        dumps([reading(seq=s, at=at + timedelta(minutes=s)) for s in range(1, 101)]),
    )
    publisher.wait()
    wait_for(lambda: count(db, "SELECT count(*) FROM readings") == 101, what="101 readings")
    row = db.execute(
        "SELECT ts, kind, run_s, energy_wh, water_l, peak_a, fault FROM readings WHERE seq = 4711"
    ).fetchone()
    assert row == (
        at,
        "run",
        11.5,
        pytest.approx(1.9),
        pytest.approx(6.2),
        pytest.approx(3.1),
        None,
    )
    status = db.execute(
        "SELECT last_seq, last_seen FROM device_status WHERE device_id = 'FWD-000001'"
    ).fetchone()
    assert status == (4711, at + timedelta(minutes=100))  # highest seq, latest ts
    # the counters live in the network process and move when the commit's report arrives
    wait_for(lambda: metric_value(w.metrics.written) == 101, 10, "101 readings counted")


def test_resent_and_redelivered_readings_are_stored_once(
    db: Conn, start_worker: Callable[..., IngestWorker], publisher: Publisher, prefix: str
) -> None:
    add_devices(db, [Device("FWD-000001", "HH-1")])
    w = start_worker()
    at = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
    payload = dumps(reading(seq=7, at=at))
    for _ in range(3):
        publisher.publish(readings_topic(prefix, "FWD-000001"), payload)
    # the same reading inside a backlog array, too
    publisher.publish(
        readings_topic(prefix, "FWD-000001"), dumps([reading(seq=7, at=at), reading(seq=8, at=at)])
    )
    publisher.wait()

    def counted() -> dict[str, float]:
        return {
            "received": metric_value(w.metrics.received),
            "written": metric_value(w.metrics.written),
            "duplicates": metric_value(w.metrics.duplicates),
        }

    # five readings in four messages; a busy machine may make the broker deliver some again
    # (a reconnect before their ack), which only adds duplicates
    wait_for(
        lambda: counted()["written"] + counted()["duplicates"] >= 5,
        what="the five readings written or counted as duplicates",
        state=counted,
    )
    assert count(db, "SELECT count(*) FROM readings") == 2
    assert count(db, "SELECT count(*) FROM readings WHERE seq = 7") == 1
    assert counted()["written"] == 2
    assert counted()["duplicates"] >= 3
    assert counted()["received"] >= 4


def test_bad_input_is_dead_lettered_with_its_reason(
    db: Conn, start_worker: Callable[..., IngestWorker], publisher: Publisher, prefix: str
) -> None:
    add_devices(db, [Device("FWD-000001", "HH-1"), Device("FWD-000002", "HH-2")])
    db.execute(
        "UPDATE devices SET decommissioned_at = now() - interval '1 day' WHERE id = 'FWD-000002'"
    )
    start_worker()
    t1 = readings_topic(prefix, "FWD-000001")
    cases: list[tuple[str, bytes, str]] = [
        (t1, b"{oops", "malformed_json"),
        (t1, dumps(reading(seq="1")), "wrong_type"),
        (t1, dumps(reading(v=9)), "unknown_version"),
        (t1, dumps({"v": 1, "device_id": "FWD-000001"}), "missing_field"),
        (t1, dumps(reading(run_s=10_000.0)), "out_of_range"),
        (t1, dumps(reading(at=datetime.now(UTC) + timedelta(days=1))), "ts_in_future"),
        (t1, dumps(reading(at=datetime(2019, 5, 1, tzinfo=UTC))), "ts_before_pilot"),
        (t1, dumps(reading(device_id="FWD-000003")), "device_mismatch"),
        (
            t1,
            b"[" + b",".join([dumps(reading(seq=i)) for i in range(2000)]) + b"]",
            "oversized_payload",
        ),
        (
            readings_topic(prefix, "FWD-000009"),
            dumps(reading(device_id="FWD-000009")),
            "unknown_device",
        ),
        (
            readings_topic(prefix, "FWD-000002"),
            dumps(reading(device_id="FWD-000002")),
            "decommissioned_device",
        ),
        (status_topic(prefix, "FWD-000001"), b"asleep", "malformed_json"),
    ]
    for topic, payload, _ in cases:
        publisher.publish(topic, payload)
    # a partially bad array: the good readings are stored
    publisher.publish(
        t1, dumps([reading(seq=100), reading(seq=101, water_l=float("-1")), reading(seq=102)])
    )
    publisher.wait()
    wait_for(
        lambda: count(db, "SELECT count(*) FROM dead_letters") == len(cases) + 1,
        what="every bad input dead-lettered",
    )
    got = sorted(str(r[0]) for r in db.execute("SELECT reason FROM dead_letters"))
    assert got == sorted([c[2] for c in cases] + ["out_of_range"])
    assert sorted(int(r[0]) for r in db.execute("SELECT seq FROM readings")) == [100, 102]  # type: ignore[call-overload]
    row = db.execute(
        "SELECT topic, detail, payload, truncated FROM dead_letters "
        "WHERE reason = 'oversized_payload'"
    ).fetchone()
    assert row is not None
    topic, detail, payload, truncated = row
    assert topic == t1 and "limit" in str(detail) and truncated is True
    assert isinstance(payload, bytes) and len(payload) == 16 * 1024


def test_device_status_and_heartbeat_update_the_status_table(
    db: Conn, start_worker: Callable[..., IngestWorker], publisher: Publisher, prefix: str
) -> None:
    add_devices(db, [Device("FWD-000001", "HH-1")])
    start_worker()
    publisher.publish(
        status_topic(prefix, "FWD-000001"),
        dumps(
            {
                "v": 1,
                "device_id": "FWD-000001",
                "state": "online",
                "firmware": "2.1",
                "uptime_s": 99,
                "rssi_dbm": -61,
            }
        ),
    )
    publisher.wait()
    wait_for(
        lambda: db.execute("SELECT online FROM device_status").fetchone() == (True,), what="online"
    )
    publisher.publish(status_topic(prefix, "FWD-000001"), b"offline")
    publisher.wait()
    wait_for(
        lambda: (
            db.execute("SELECT online, firmware, uptime_s FROM device_status").fetchone()
            == (False, "2.1", 99)
        ),
        what="offline, firmware kept",
    )


def test_two_workers_share_the_subscription(
    db: Conn, start_worker: Callable[..., IngestWorker], publisher: Publisher, prefix: str
) -> None:
    devices = [f"FWD-{i:06d}" for i in range(1, 21)]
    add_devices(db, [Device(d, f"HH-{d}") for d in devices])
    a, b = start_worker(), start_worker()
    n = 0
    for seq in range(1, 51):
        for d in devices:
            publisher.publish(readings_topic(prefix, d), dumps(reading(device_id=d, seq=seq)))
            n += 1
    publisher.wait()
    wait_for(lambda: count(db, "SELECT count(*) FROM readings") == n, what=f"{n} readings")

    def written() -> tuple[float, float]:
        return metric_value(a.metrics.written), metric_value(b.metrics.written)

    wait_for(lambda: sum(written()) == n, 10, f"{n} readings counted", state=written)
    wa, wb = written()
    assert wa > 0 and wb > 0, (wa, wb)
    assert count(db, "SELECT count(*) FROM (SELECT DISTINCT device_id, seq FROM readings) k") == n
