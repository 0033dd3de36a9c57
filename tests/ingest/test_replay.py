"""Replaying dead letters after a fix (real database)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from core.registry import Device, add_devices
from core.settings import Settings
from core.topics import readings_topic
from ingest.protocol import Validated
from ingest.replay import replay_dead_letters
from ingest.validate import Limits
from ingest.writer import Writer
from tests.helpers import dumps, reading

pytestmark = pytest.mark.services
PREFIX = "wastepilot/v1"


def test_replay_stores_what_is_now_valid_once(
    db: psycopg.Connection[tuple[object, ...]], db_url: str
) -> None:
    limits = Limits.from_settings(Settings(), prefix=PREFIX)
    now = datetime.now(UTC)
    unknown = dumps(
        [reading(device_id="FWD-000777", seq=1), reading(device_id="FWD-000777", seq=2)]
    )
    junk = b"{not json"
    w = Writer(db_url, prefix=PREFIX, dead_letter_max_bytes=1024)
    topic = readings_topic(PREFIX, "FWD-000777")
    for payload in (unknown, junk):
        w.write([Validated.check(0, [(topic, payload, now.timestamp())], limits, now)])
    w.close()
    assert [r[0] for r in db.execute("SELECT reason FROM dead_letters ORDER BY id")] == [
        "unknown_device",
        "unknown_device",
        "malformed_json",
    ]

    add_devices(db, [Device("FWD-000777", "HH-777")])  # the fix: the device is registered
    res = replay_dead_letters(db_url, limits)
    assert (res.replayed, res.stored, res.dead_again) == (3, 2, 1)
    assert sorted(r[0] for r in db.execute("SELECT seq FROM readings")) == [1, 2]
    # the old rows are marked, the still-bad one has a new row, and a second replay finds
    # only that new row (still bad) and stores nothing twice
    rows = db.execute(
        "SELECT reason, replayed_at IS NOT NULL FROM dead_letters ORDER BY id"
    ).fetchall()
    assert rows == [
        ("unknown_device", True),
        ("unknown_device", True),
        ("malformed_json", True),
        ("malformed_json", False),
    ]
    again = replay_dead_letters(db_url, limits)
    assert (again.replayed, again.stored, again.dead_again) == (1, 0, 1)
    assert db.execute("SELECT count(*) FROM readings").fetchone() == (2,)
