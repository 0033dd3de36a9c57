"""One household for "why does this home need a visit?": gaps and completeness from seq (pure),
device state (pure), device-check wording (pure), and the API's record on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from analytics.anomalies import describe
from analytics.household import device_state, gaps_and_days
from core import clock, display
from core.registry import Device, Household, add_devices, add_households
from tests.helpers import bearer

Conn = psycopg.Connection[tuple[object, ...]]


def z(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def test_gaps_and_days_from_seq_across_a_uk_midnight_in_summer_time() -> None:
    start = z("2026-07-01T23:00")  # 00:00 BST on 2 July
    seqs = [
        ("D-1", 4, z("2026-07-01T20:00")),  # before the period: only the gap's start
        ("D-1", 7, z("2026-07-01T23:30")),  # 5, 6 lost; on 2 July (00:30 BST)
        ("D-1", 8, z("2026-07-02T10:00")),
        ("D-1", 12, z("2026-07-02T22:59")),  # 9-11 lost; 23:59 BST, still 2 July
        ("D-2", 1, z("2026-07-02T23:10")),  # another device: its seq starts afresh, no gap
        ("D-2", 2, z("2026-07-02T23:20")),  # 3 July (00:20 BST)
    ]
    gaps, days = gaps_and_days(seqs, start)
    assert [(g.device_id, g.missing, g.after_seq, g.before_seq) for g in gaps] == [
        ("D-1", 3, 8, 12),  # newest first
        ("D-1", 2, 4, 7),
    ]
    assert gaps[1].after == z("2026-07-01T20:00")
    assert display.when(gaps[0].before) == "2 Jul 2026, 23:59"
    assert days == {
        z("2026-07-02T12:00").date(): (3, 5),
        z("2026-07-03T12:00").date(): (2, 0),
    }


def status(**over: Any) -> dict[str, Any]:
    row = {"decommissioned_at": None, "last_seen": None, "status_at": None, "online": None}
    row.update(over)
    return row


def test_device_state() -> None:
    now = z("2026-11-28T12:00")
    hours = timedelta(hours=48)
    assert device_state(status(), now, hours) == "unknown"
    assert device_state(status(last_seen=now - timedelta(hours=47)), now, hours) == "online"
    assert device_state(status(last_seen=now - timedelta(hours=49)), now, hours) == "offline"
    # it said it went offline (its will message) even though it was heard from lately
    assert device_state(status(last_seen=now, status_at=now, online=False), now, hours) == "offline"
    assert device_state(status(decommissioned_at=now, last_seen=now), now, hours) == (
        "decommissioned"
    )


def test_device_checks_are_described_in_plain_words() -> None:
    now = z("2026-11-28T12:00")
    assert describe("offline", 50.0, None, now - timedelta(hours=50), now) == (
        "Not heard from since 26 Nov 2026, 10:00 (2 days)"
    )
    assert describe("leak", 1, None, None, now) == "1 leak in the last 14 days"
    assert describe("leak", 3, None, None, now) == "3 leaks in the last 14 days"
    assert describe("jam_rate", 3, 40, None, now) == "3 jams in 40 uses in the last 14 days (7.5%)"
    assert describe("water_per_use", 80.5, 40, None, now) == (
        "2.01 L per use in the last 14 days (normal: 1 to 1.5 L)"
    )


@pytest.fixture
def analyst_api(db: Conn, db_url: str, tokens: dict[str, str]) -> Any:
    from api.app import create_app
    from core.settings import Settings

    with TestClient(
        create_app(Settings(database_url=db_url)), headers=bearer(tokens["analyst"])
    ) as c:
        yield c


def reading(db: Conn, device: str, seq: int, ts: datetime, fault: str | None = None) -> None:
    db.execute(
        "INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, fault)"
        " VALUES (%s, %s, %s, %s, 12, 3, 1.2, 4, %s)",
        (ts, device, seq, "fault" if fault else "run", fault),
    )


def test_the_api_names_a_households_leak_and_gap_with_times_and_its_cohort_median(
    db: Conn, analyst_api: TestClient, awkward_now: datetime
) -> None:
    joined = clock.today() - timedelta(days=40)
    add_households(
        db,
        [Household(f"HH-{i}", cohort="Q", joined_on=joined) for i in range(1, 4)],
    )
    add_devices(db, [Device(f"D-{i}", f"HH-{i}") for i in range(1, 4)])
    # midday yesterday, UK time (whatever the instant: a DST night, a leap day, New Year's Eve)
    yesterday = datetime.combine(clock.today() - timedelta(days=1), time(12), clock.LONDON)
    reading(db, "D-1", 1, yesterday - timedelta(hours=3))
    reading(db, "D-1", 2, yesterday - timedelta(hours=2), fault="leak")
    reading(db, "D-1", 6, yesterday - timedelta(hours=1))  # 3, 4, 5 never arrived
    for seq in range(1, 5):  # HH-2: four uses yesterday; HH-3: none
        reading(db, "D-2", seq, yesterday - timedelta(minutes=seq))
    # a backlog that arrives after a rollup, stamped before its late window: counted here too
    from analytics.rollups import refresh

    refresh(db, timedelta(days=7), commit_lag=timedelta(0))
    backlog = datetime.combine(clock.today() - timedelta(days=10), time(12), clock.LONDON)
    reading(db, "D-1", 0, backlog)
    # status messages as ingest stores them: online, offline, online again, then a stale one
    from ingest.queries import UPSERT_STATUS

    for online, at in [(True, 6), (False, 5), (True, 4), (False, 7)]:
        db.execute(UPSERT_STATUS, {"device_id": "D-1", "online": online,
                                   "status_at": yesterday - timedelta(hours=at),
                                   "firmware": "1.2", "uptime_s": 60, "rssi_dbm": -70})  # fmt: skip
    r = analyst_api.get("/api/v1/households/HH-1")
    assert r.status_code == 200, r.text
    h = r.json()
    assert [(f["kind"], datetime.fromisoformat(f["at"])) for f in h["faults"]] == [
        ("leak", yesterday - timedelta(hours=2))
    ]
    assert h["faults_by_kind"] == {"leak": 1}
    assert [(g["missing"], g["after_seq"], g["before_seq"]) for g in h["gaps"]] == [(3, 2, 6)]
    assert datetime.fromisoformat(h["gaps"][0]["before"]) == yesterday - timedelta(hours=1)
    days = {d["day"]: d for d in h["days"]}
    assert len(h["days"]) == 30
    y = days[str(yesterday.astimezone(clock.LONDON).date())]
    # HH-1: two uses and the leak (a fault), 3 received, 3 missing; the cohort's median of
    # 2, 4 and 0 uses is 2
    assert (y["uses"], y["faults"], y["received"], y["missing"]) == (2, 1, 3, 3)
    assert y["cohort_median_uses"] == 2.0
    assert days[str(backlog.date())]["uses"] == 1
    assert h["devices"][0]["device_id"] == "D-1"
    changes = [(c["online"], datetime.fromisoformat(c["at"])) for c in h["status_changes"]]
    assert changes == [  # newest first; the stale "offline" (older than the last) left out
        (True, yesterday - timedelta(hours=4)),
        (False, yesterday - timedelta(hours=5)),
        (True, yesterday - timedelta(hours=6)),
    ]
    assert h["devices"][0]["state"] == "online"  # it said so, and was heard from within 48 h
    assert h["devices"][0]["firmware"] == "1.2"
    assert analyst_api.get("/api/v1/households/NOPE").status_code == 404


def test_the_cohort_median_is_the_same_from_rollups_and_fresh_readings(
    db: Conn, awkward_now: datetime
) -> None:
    """The household page's cohort median per day comes from the daily rollups plus the
    readings received since their watermark: before any rollup, after one, and with readings
    received since (yesterday's and today's), each day's median is the one worked out here
    from every reading, households without a use that day counting 0."""
    import statistics

    from analytics.household import household_detail
    from analytics.rollups import refresh

    today = clock.today()
    add_households(
        db, [Household(f"HH-M{i}", cohort="M", joined_on=today - timedelta(days=40)) for i in range(5)]
    )  # fmt: skip
    add_devices(db, [Device(f"D-M{i}", f"HH-M{i}") for i in range(5)])
    uses: dict[tuple[int, Any], int] = {}
    seq = [0] * 5

    def use(i: int, days_ago: int, hour: int) -> None:
        at = datetime.combine(today - timedelta(days=days_ago), time(hour), clock.LONDON)
        seq[i] += 1
        reading(db, f"D-M{i}", seq[i], at)
        uses[i, at.date()] = uses.get((i, at.date()), 0) + 1

    def check() -> None:
        h = household_detail(db, "HH-M0")
        assert h is not None
        expected = {
            d.day: float(statistics.median(uses.get((i, d.day), 0) for i in range(5))) for d in h.days
        }  # fmt: skip
        assert {d.day: d.cohort_median_uses for d in h.days} == expected
        assert len(set(expected.values())) > 1  # the days differ: a real comparison

    for days_ago in range(20, 0, -1):
        for i in range(5):
            for hour in range(7, 7 + (i * days_ago) % 4):  # 0-3 uses a day, varying
                use(i, days_ago, hour)
    check()  # no rollup yet: from the readings alone
    refresh(db, timedelta(days=7), commit_lag=timedelta(0))
    check()  # from the rollups
    for i in (1, 2, 3):  # received after the rollup: yesterday's and today's
        use(i, 1, 20)
        use(i, 0, 1)
    check()
