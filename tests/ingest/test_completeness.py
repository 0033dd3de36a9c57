"""Seq gaps per device and day (the completeness view, real database)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from core.registry import Device, add_devices

pytestmark = pytest.mark.services


def test_gaps_in_seq_are_counted_per_device_and_local_day(
    db: psycopg.Connection[tuple[object, ...]],
) -> None:
    add_devices(db, [Device("FWD-1", "HH-1"), Device("FWD-2", "HH-2")])
    rows = [
        ("FWD-1", 1, datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("FWD-1", 2, datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("FWD-1", 5, datetime(2026, 3, 1, 19, tzinfo=UTC)),  # 3 and 4 missing
        ("FWD-1", 5, datetime(2026, 3, 1, 19, 0, 2, tzinfo=UTC)),  # re-sent with a skewed clock
        ("FWD-1", 6, datetime(2026, 3, 2, 8, tzinfo=UTC)),
        (
            "FWD-1",
            9,
            datetime(2026, 3, 2, 23, 30, tzinfo=UTC),
        ),  # 7, 8 missing; still 2 March in London (GMT)
        ("FWD-2", 10, datetime(2026, 3, 1, 9, tzinfo=UTC)),  # a device's first seq is no gap
    ]
    for dev, seq, ts in rows:
        db.execute(
            "INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l) "
            "VALUES (%s, %s, %s, 'run', 10, 2, 1)",
            (ts, dev, seq),
        )
    got = db.execute(
        "SELECT device_id, day::text, received, missing FROM device_completeness_daily "
        "ORDER BY 1, 2"
    ).fetchall()
    assert got == [
        ("FWD-1", "2026-03-01", 3, 2),
        ("FWD-1", "2026-03-02", 2, 2),
        ("FWD-2", "2026-03-01", 1, 0),
    ]
