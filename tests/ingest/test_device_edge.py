"""The device edge against the real database and broker (issue 26): a device's counter is its
idempotency key (a reused seq with another ts is a dead letter, not a second reading), a device
stores at most the setting's new readings a minute (the excess refused, counted in one summary
dead letter per batch, redeliveries never counted), and a reading stamped after its device was
decommissioned is refused from the next batch on."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from core import clock
from core.registry import Device, add_devices
from core.settings import Settings
from core.topics import readings_topic
from ingest.protocol import Validated
from ingest.validate import Limits
from ingest.writer import Writer
from tests.helpers import Publisher, dumps, reading, wait_for

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
PREFIX = "wastepilot/v1"
DEV = "FWD-000901"


def batch(items: list[dict[str, Any]], at: datetime, limits: Limits) -> Validated:
    """One message of ``items`` received at ``at``, validated as ingest does."""
    topic = readings_topic(limits.prefix, DEV)
    return Validated.check(0, [(topic, dumps(items), at.timestamp())], limits, at)


def dead(db: Conn, reason: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT detail, payload FROM dead_letters WHERE reason = %s ORDER BY id", (reason,)
    ).fetchall()


@pytest.fixture
def writer(db: Conn, db_url: str) -> Any:
    add_devices(db, [Device(DEV, "HH-901")])
    w = Writer(db_url, prefix=PREFIX, dead_letter_max_bytes=4096, readings_per_min=50)
    yield w
    w.close()


def test_a_reused_seq_with_another_ts_is_a_dead_letter_not_a_second_reading(
    db: Conn, writer: Writer
) -> None:
    limits = Limits.from_settings(Settings(), prefix=PREFIX)
    now = clock.now()
    t = (now - timedelta(hours=2)).replace(microsecond=0)
    first = [reading(DEV, s, t + timedelta(minutes=s)) for s in range(1, 11)]
    assert writer.write([batch(first, now, limits)]).inserted == 10
    # a later batch: seq 4 again with another ts, seq 12 (new), seq 5 redelivered as it was,
    # seq 11 twice with two timestamps in one message, and seq 0 (new, out of order,
    # never used)
    again = [
        reading(DEV, 4, t + timedelta(hours=1)),
        reading(DEV, 12, t + timedelta(minutes=12)),
        reading(DEV, 5, t + timedelta(minutes=5)),
        reading(DEV, 11, t + timedelta(minutes=11)),
        reading(DEV, 11, t + timedelta(minutes=40)),
        reading(DEV, 0, t),
    ]
    res = writer.write([batch(again, now, limits)])
    assert (res.inserted, res.duplicates) == (3, 1)
    assert res.reasons == {"seq_reused": 2}
    rows = db.execute("SELECT seq, ts FROM readings ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == list(range(13))
    assert dict(rows)[4] == t + timedelta(minutes=4)  # the first use kept
    letters = dead(db, "seq_reused")
    assert len(letters) == 2
    assert all(b'"seq":' in bytes(p) for _, p in letters)  # the refused reading, for replay
    details = sorted(d for d, _ in letters)
    assert details[0].startswith("seq 11 of FWD-000901 was already used by a reading stamped")
    assert details[1].startswith(f"seq 4 of FWD-000901 was already used by a reading stamped "
                                 f"{(t + timedelta(minutes=4)).isoformat()}")  # fmt: skip


def test_the_rate_refuses_the_excess_as_one_summary_row_and_never_counts_redeliveries(
    db: Conn, writer: Writer
) -> None:
    limits = Limits.from_settings(Settings(), prefix=PREFIX)
    at = datetime(2026, 5, 1, 12, 0, 5, tzinfo=UTC)
    t = at - timedelta(days=1)
    flood = [reading(DEV, s, t + timedelta(seconds=s)) for s in range(1, 81)]
    res = writer.write([batch(flood, at, limits)])
    assert res.inserted == 50 and res.reasons == {"rate_limited": 30}
    ((detail, payload),) = dead(db, "rate_limited")
    assert bytes(payload) == b""  # counted, not kept
    assert detail.startswith("30 readings of FWD-000901 refused: over its limit of 50")
    assert "seq 51 to 80" in detail
    # the same minute: the stored readings redelivered are duplicates, not refused; a new one is
    res = writer.write([batch([*flood[:50], reading(DEV, 81, t + timedelta(seconds=81))],
                              at + timedelta(seconds=30), limits)])  # fmt: skip
    assert (res.inserted, res.duplicates, res.reasons) == (0, 50, {"rate_limited": 1})
    # the next minute, a new allowance: the refused readings, re-sent, are stored
    res = writer.write([batch(flood[50:], at + timedelta(minutes=1), limits)])
    assert (res.inserted, res.reasons) == (30, {})
    assert db.execute("SELECT count(*), max(seq) FROM readings").fetchone() == (80, 80)
    state = db.execute("SELECT last_seq, rate_count FROM device_status").fetchone()
    assert state == (80, 30)


def test_a_reading_stamped_after_decommissioning_is_refused_by_the_next_batch(
    db: Conn, writer: Writer
) -> None:
    limits = Limits.from_settings(Settings(), prefix=PREFIX)
    now = clock.now()
    assert writer.write([batch([reading(DEV, 1, now - timedelta(hours=1))], now, limits)]).inserted
    db.execute("UPDATE devices SET decommissioned_at = %s WHERE id = %s",
               (now - timedelta(minutes=30), DEV))  # fmt: skip
    db.commit()
    late = [reading(DEV, 2, now - timedelta(minutes=10)), reading(DEV, 3, now - timedelta(hours=1))]
    res = writer.write([batch(late, now, limits)])
    assert res.inserted == 1 and res.reasons == {"decommissioned_device": 1}


def test_fifty_thousand_readings_in_seconds_from_one_device_store_only_the_setting(
    db: Conn,
    prefix: str,
    publisher: Publisher,
    start_worker: Callable[..., Any],
) -> None:
    """The default setting, through the broker and an ingest worker: 50,000 readings sent in a
    few seconds; per minute of arrival at most the setting's readings are stored, and every
    other one is counted in a summary dead letter."""
    per_min = Settings().ingest_device_readings_per_min
    add_devices(db, [Device(DEV, "HH-901")])
    w = start_worker()
    t = clock.now() - timedelta(days=2)
    total = 50_000
    for first in range(1, total + 1, 1000):
        items = [reading(DEV, s, t + timedelta(seconds=s)) for s in range(first, first + 1000)]
        publisher.publish(readings_topic(prefix, DEV), dumps(items))
    publisher.wait(60)

    def accounted() -> int:
        stored = db.execute("SELECT count(*) FROM readings").fetchone()
        details = [d for d, _ in dead(db, "rate_limited")]
        refused = sum(int(re.match(r"(\d+) readings", d).group(1)) for d in details)  # type: ignore[union-attr]
        return int(str(stored[0] if stored else 0)) + refused

    wait_for(lambda: accounted() == total, 120, "every reading stored or refused",
             state=accounted)  # fmt: skip
    per_minute = db.execute(
        "SELECT date_trunc('minute', received_at), count(*) FROM readings GROUP BY 1"
    ).fetchall()
    assert all(int(str(n)) <= per_min for _, n in per_minute), per_minute
    assert sum(int(str(n)) for _, n in per_minute) >= per_min  # the allowance is used
    assert db.execute("SELECT count(*) FROM readings WHERE device_id <> %s", (DEV,)).fetchone() == (
        0,
    )
    assert w.connected
