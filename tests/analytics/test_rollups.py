"""Rollups and KPIs against hand-computed expectations on small fixed data: daylight-saving days
(23 and 25 hours), late readings, re-sent readings and gaps in seq."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from analytics.kpis import Kpis, pilot_kpis
from analytics.rollups import rebuild, refresh
from analytics.usage import Bucket, usage_series
from core import clock
from core.registry import Device, Household, add_devices, add_households
from tests.helpers import bearer

pytestmark = pytest.mark.services

Conn = psycopg.Connection[tuple[object, ...]]
WINDOW = timedelta(days=7)
LONDON = ZoneInfo("Europe/London")


def z(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def insert(db: Conn, device: str, seq: int, ts: datetime, kind: str = "run", fault: str | None = None,
           water: float = 1.0) -> None:  # fmt: skip
    # as ingest writes: a reading sent again is not stored again
    db.execute(
        "INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, fault) "
        "VALUES (%s, %s, %s, %s, 12.0, 3.0, %s, 4.0, %s) ON CONFLICT DO NOTHING",
        (ts, device, seq, kind, water, fault),
    )


@pytest.fixture
def fixed(db: Conn) -> Conn:
    add_households(
        db,
        [Household("HH-1", cohort="A", joined_on=date(2026, 1, 1)),
         Household("HH-2", cohort="B", joined_on=date(2026, 1, 1))],
    )  # fmt: skip
    add_devices(db, [Device("D-1", "HH-1"), Device("D-2", "HH-2")])
    # spring forward, Sunday 29 March 2026: the local day is 00:00Z to 23:00Z (23 hours)
    insert(db, "D-1", 1, z("2026-03-28T23:30"))  # 23:30 GMT, Saturday
    insert(db, "D-1", 2, z("2026-03-29T00:30"))  # 00:30 GMT, Sunday
    insert(db, "D-1", 2, z("2026-03-29T00:30"))  # sent again: stored once
    insert(db, "D-1", 3, z("2026-03-29T12:00"), "fault", "jam")
    insert(db, "D-1", 4, z("2026-03-29T22:30"))  # 23:30 BST, still Sunday
    insert(db, "D-1", 6, z("2026-03-29T23:30"))  # 00:30 BST Monday; seq 5 never arrived
    # fall back, Sunday 25 October 2026: the local day is 23:00Z on the 24th to 00:00Z on the
    # 26th (25 hours)
    for seq, ts in [
        (10, "2026-10-24T22:30"),
        (11, "2026-10-24T23:30"),
        (12, "2026-10-25T00:30"),
        (13, "2026-10-25T01:30"),
        (14, "2026-10-25T23:30"),
        (15, "2026-10-26T00:30"),
    ]:
        insert(db, "D-2", seq, z(ts))  # fmt: skip
    return db


def daily(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT household_ref, day, uses, faults, jams, water_l, readings_received, "
        "readings_missing FROM usage_daily ORDER BY 1, 2"
    ).fetchall()


def test_daily_rollups_follow_london_days_across_dst(fixed: Conn) -> None:
    r = refresh(fixed, WINDOW, commit_lag=timedelta(0))
    assert r.days == 6
    assert daily(fixed) == [
        ("HH-1", date(2026, 3, 28), 1, 0, 0, 1.0, 1, 0),
        ("HH-1", date(2026, 3, 29), 2, 1, 1, 3.0, 3, 0),  # the jam ran the motor and used water
        ("HH-1", date(2026, 3, 30), 1, 0, 0, 1.0, 1, 1),  # seq 5 missing, counted on arrival of 6
        ("HH-2", date(2026, 10, 24), 1, 0, 0, 1.0, 1, 0),
        ("HH-2", date(2026, 10, 25), 4, 0, 0, 4.0, 4, 0),  # 25-hour day
        ("HH-2", date(2026, 10, 26), 1, 0, 0, 1.0, 1, 0),
    ]
    # hourly rollups: the autumn day has two distinct 01:xx local hours (BST, then GMT)
    hours = fixed.execute(
        "SELECT hour, uses FROM usage_hourly WHERE household_ref = 'HH-2' ORDER BY hour"
    ).fetchall()
    assert [(h.isoformat(), n) for h, n in hours] == [
        ("2026-10-24T22:00:00+00:00", 1), ("2026-10-24T23:00:00+00:00", 1),
        ("2026-10-25T00:00:00+00:00", 1), ("2026-10-25T01:00:00+00:00", 1),
        ("2026-10-25T23:00:00+00:00", 1), ("2026-10-26T00:00:00+00:00", 1),
    ]  # fmt: skip


def test_series_from_rollups_equal_series_from_raw(fixed: Conn) -> None:
    start, end = z("2026-10-23T23:00"), z("2026-10-27T00:00")  # local midnight 24th .. 27th
    raw = usage_series(fixed, "household", "HH-2", Bucket.D1, start, end)  # no watermark yet
    refresh(fixed, WINDOW, commit_lag=timedelta(0))
    rolled = usage_series(fixed, "household", "HH-2", Bucket.D1, start, end)
    assert rolled == raw
    assert [(p.bucket.astimezone(UTC).isoformat(), p.uses) for p in rolled] == [
        ("2026-10-23T23:00:00+00:00", 1),  # local midnight, BST
        ("2026-10-24T23:00:00+00:00", 4),
        ("2026-10-26T00:00:00+00:00", 1),  # local midnight, GMT
    ]
    week = usage_series(
        fixed, "cohort", "A", Bucket.W1, z("2026-03-22T00:00"), z("2026-04-06T00:00")
    )
    # weeks start on Monday local midnight: 23-29 March holds 3 uses, 30 March- holds 1
    assert [(p.bucket.astimezone(LONDON).date().isoformat(), p.uses, p.faults) for p in week] == [
        ("2026-03-23", 3, 1), ("2026-03-30", 1, 0),
    ]  # fmt: skip
    pilot = usage_series(
        fixed, "pilot", None, Bucket.H1, z("2026-03-29T00:00"), z("2026-03-29T02:00")
    )
    assert [(p.bucket.astimezone(UTC).hour, p.uses) for p in pilot] == [(0, 1)]


def test_late_readings_are_rolled_up_and_refresh_is_idempotent(
    db: Conn, awkward_now: datetime
) -> None:
    add_devices(db, [Device("D-9", "HH-9")])
    now = awkward_now
    insert(db, "D-9", 1, now - timedelta(days=2, hours=1))
    # no commit lag in this test: its inserts have all committed
    refresh(db, WINDOW, commit_lag=timedelta(0))
    before = db.execute("SELECT sum(uses) FROM usage_daily").fetchone()
    # a device's backlog arrives: stamped two days ago, received now
    insert(db, "D-9", 2, now - timedelta(days=2))
    insert(db, "D-9", 3, now - timedelta(days=30))  # older than the late window
    # before the next refresh, series already show it (raw readings received since the watermark)
    series = usage_series(db, "household", "HH-9", Bucket.D1, now - timedelta(days=3), now)
    assert sum(p.uses for p in series) == 2
    assert refresh(db, WINDOW, commit_lag=timedelta(0)).hours == 1
    after = db.execute("SELECT sum(uses) FROM usage_daily").fetchone()
    assert (before, after) == ((1,), (2,))
    snapshot = db.execute("SELECT * FROM usage_hourly ORDER BY hour").fetchall()
    assert refresh(db, WINDOW, commit_lag=timedelta(0)).hours == 0
    assert db.execute("SELECT * FROM usage_hourly ORDER BY hour").fetchall() == snapshot
    # the reading beyond the window waits for an explicit rebuild
    rebuild(db, now - timedelta(days=31), now)
    assert db.execute("SELECT sum(uses) FROM usage_daily").fetchone() == (3,)


def test_kpis_default_to_the_seven_uk_days_before_today(
    db: Conn, db_url: str, tokens: dict[str, str], awkward_now: datetime
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import Settings

    today = awkward_now.astimezone(LONDON).date()
    add_households(db, [Household("HH-K", joined_on=today - timedelta(days=60))])
    add_devices(db, [Device("D-K", "HH-K")])

    def local(d: date, hour: int) -> datetime:
        return datetime(d.year, d.month, d.day, hour, tzinfo=LONDON).astimezone(UTC)

    insert(db, "D-K", 1, local(today - timedelta(days=8), 12))  # before the period
    insert(db, "D-K", 2, local(today - timedelta(days=7), 0) + timedelta(minutes=5))  # first day
    insert(db, "D-K", 3, local(today - timedelta(days=1), 23) + timedelta(minutes=30))  # last day
    insert(db, "D-K", 4, min(awkward_now, local(today, 0) + timedelta(minutes=10)))  # today
    refresh(db, WINDOW, commit_lag=timedelta(0))
    with TestClient(
        create_app(Settings(database_url=db_url)), headers=bearer(tokens["analyst"])
    ) as api:
        k = api.get("/api/v1/kpis").json()
    assert (k["start"], k["end"]) == (str(today - timedelta(days=7)), str(today))
    # two uses over seven household-days
    assert k["uses_per_household_day_mean"] == round(2 / 7, 3)


def same(a: Kpis, b: Kpis) -> bool:
    """Equal figures (the instants they were computed at aside)."""
    return replace(a, as_of=None) == replace(b, as_of=None)


def test_kpis_are_true_before_the_first_rollup_and_equal_after_it(fixed: Conn) -> None:
    """A fresh pilot: no rollup has run, yet the KPIs count every reading (and completeness
    from seq); after the rollup, the rollups give the same figures; readings received after
    it count at once again."""
    period = (date(2026, 3, 28), date(2026, 3, 31))
    before = pilot_kpis(fixed, *period, cohort="A")
    raw = pilot_kpis(fixed, *period, cohort="A", source="raw")
    assert before.faults_per_100_uses == 25.0
    assert before.completeness == 0.8333
    assert same(before, raw)
    assert pilot_kpis(fixed, *period, cohort="A", source="rollup").households_active == 0
    refresh(fixed, WINDOW, commit_lag=timedelta(0))
    rolled = pilot_kpis(fixed, *period, cohort="A", source="rollup")
    assert same(rolled, raw)
    assert same(pilot_kpis(fixed, *period, cohort="A"), raw)


def test_kpis_count_readings_received_since_the_rollup(db: Conn) -> None:
    now = clock.now()
    today = clock.today()
    add_households(db, [Household("HH-F", cohort="F", joined_on=today - timedelta(days=10))])
    add_devices(db, [Device("D-F", "HH-F")])
    for seq in (1, 2, 3):
        insert(db, "D-F", seq, now - timedelta(days=2, hours=seq))
    refresh(db, WINDOW, commit_lag=timedelta(0))
    period = (today - timedelta(days=7), today + timedelta(days=1))
    rolled = pilot_kpis(db, *period, cohort="F", source="rollup")
    assert rolled.uses_per_household_day_mean == round(3 / 8, 3)
    # two more arrive after the rollup (one of them late, for two days ago; seq 5 lost)
    insert(db, "D-F", 4, now - timedelta(days=2))
    insert(db, "D-F", 6, now - timedelta(minutes=5))
    current = pilot_kpis(db, *period, cohort="F")
    assert current.uses_per_household_day_mean == round(5 / 8, 3)
    assert current.completeness == round(5 / 6, 4)
    assert same(current, pilot_kpis(db, *period, cohort="F", source="raw"))
    assert pilot_kpis(db, *period, cohort="F", source="rollup") == rolled


def test_kpis_hand_computed_and_equal_from_raw(fixed: Conn) -> None:
    refresh(fixed, WINDOW, commit_lag=timedelta(0))
    k = pilot_kpis(fixed, date(2026, 10, 24), date(2026, 10, 27))
    assert (k.households_enrolled, k.households_active) == (2, 1)
    # per household per day: HH-1 0/3, HH-2 6/3
    assert (k.uses_per_household_day_median, k.uses_per_household_day_p25,
            k.uses_per_household_day_p75, k.uses_per_household_day_mean) == (1.0, 0.5, 1.5, 1.0)  # fmt: skip
    assert k.food_kg_diverted == 1.3  # 6 uses x 0.22 kg
    assert (k.water_l_per_household_day, k.energy_wh_per_household_day) == (1.0, 3.0)
    assert (k.faults_per_100_uses, k.completeness) == (0.0, 1.0)
    # local hours of HH-2's uses: 23 (BST), 00, 01 (BST), 01 (GMT), 23 (GMT), 00
    assert {h.hour: (h.uses, h.share_of_uses) for h in k.time_of_day} == {
        0: (2, 0.3333), 1: (2, 0.3333), 23: (2, 0.3333),
    }  # fmt: skip
    assert same(pilot_kpis(fixed, date(2026, 10, 24), date(2026, 10, 27), source="raw"), k)

    spring = pilot_kpis(fixed, date(2026, 3, 28), date(2026, 3, 31), cohort="A")
    assert spring.households_enrolled == 1
    assert spring.faults_per_100_uses == 25.0  # one jam in four uses
    assert spring.completeness == 0.8333  # 5 received of 6 expected (seq 5 missing)
    assert same(
        pilot_kpis(fixed, date(2026, 3, 28), date(2026, 3, 31), cohort="A", source="raw"), spring
    )


def test_exports_stream_the_rollups(fixed: Conn, db_url: str, tokens: dict[str, str]) -> None:
    import pyarrow.parquet as pq
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import Settings

    refresh(fixed, WINDOW, commit_lag=timedelta(0))
    params = {"bucket": "1d", "start": "2026-03-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}
    with TestClient(
        create_app(Settings(database_url=db_url)), headers=bearer(tokens["analyst"])
    ) as api:
        r = api.get("/api/v1/exports/usage.csv", params=params)
        assert r.status_code == 200
        lines = r.text.strip().splitlines()
        assert lines[0] == "household,bucket,uses,run_s,energy_wh,water_l,faults"
        assert len(lines) == 1 + 6
        assert lines[5] == "HH-2,2026-10-24T23:00:00+00:00,4,48.0,12.0,4.0,0"
        r = api.get("/api/v1/exports/usage.parquet", params=params | {"household": "HH-1"})
        table = pq.read_table(io.BytesIO(r.content))
        assert table.column("uses").to_pylist() == [1, 2, 1]
        assert set(table.column("household").to_pylist()) == {"HH-1"}
        k = api.get("/api/v1/kpis", params={"start": "2026-10-24", "end": "2026-10-27"})
        assert k.json()["households_active"] == 1
        assert (
            api.get("/api/v1/kpis", params={"start": "2026-10-27", "end": "2026-10-24"}).status_code
            == 422
        )
        period = {"start": "2026-10-24", "end": "2026-10-27"}
        assert "households_active,1.0" in api.get("/api/v1/kpis.csv", params=period).text
        t = pq.read_table(io.BytesIO(api.get("/api/v1/kpis.parquet", params=period).content))
        figures = dict(
            zip(t.column("figure").to_pylist(), t.column("value").to_pylist(), strict=True)
        )
        assert (figures["households_enrolled"], figures["food_kg_diverted"]) == (2.0, 1.3)
        s = api.get("/api/v1/usage", params={"scope": "cohort", "key": "B", "bucket": "1d",
                                             "start": "2026-10-23T23:00:00Z", "end": "2026-10-27T00:00:00Z"})  # fmt: skip
        assert [p["uses"] for p in s.json()["points"]] == [1, 4, 1]
        assert api.get("/api/v1/usage", params={"scope": "cohort"}).status_code == 422
        assert api.get("/api/v1/cohorts").json() == [
            {"cohort": "A", "households": 1}, {"cohort": "B", "households": 1},
        ]  # fmt: skip


def test_a_refresh_with_a_longer_lag_never_moves_the_watermark_back(db: Conn) -> None:
    """`wastepilot run` refreshes without the commit lag after a backfill; the scheduler's next
    refresh (30 s lag) must not take the watermark back, or the readings in between would be
    counted from the rollups and again as received since the watermark."""
    now = clock.now()
    add_households(db, [Household("HH-W", joined_on=clock.today() - timedelta(days=3))])
    add_devices(db, [Device("D-W", "HH-W")])
    insert(db, "D-W", 1, now - timedelta(hours=2))
    first = refresh(db, WINDOW, commit_lag=timedelta(0))
    second = refresh(db, WINDOW, commit_lag=timedelta(seconds=30))
    assert second.received_until == first.received_until
    series = usage_series(db, "household", "HH-W", Bucket.D1, now - timedelta(days=2), now)
    assert sum(p.uses for p in series) == 1


def test_kpis_after_a_rebuild_alone_count_each_reading_once(db: Conn) -> None:
    """`wastepilot rollups rebuild` before any refresh fills the rollups but sets no
    watermark: the current KPIs must not add every reading to them a second time."""
    now = clock.now()
    today = clock.today()
    add_households(db, [Household("HH-RB", cohort="RB", joined_on=today - timedelta(days=5))])
    add_devices(db, [Device("D-RB", "HH-RB")])
    for seq in (1, 2, 3):
        insert(db, "D-RB", seq, now - timedelta(days=1, hours=seq))
    rebuild(db, now - timedelta(days=3), now)
    period = (today - timedelta(days=3), today + timedelta(days=1))
    current = pilot_kpis(db, *period, cohort="RB")
    assert current.uses_per_household_day_mean == round(3 / 4, 3)
    assert same(current, pilot_kpis(db, *period, cohort="RB", source="raw"))


def test_kpis_never_count_a_reading_twice_when_a_refresh_lands_in_between(
    db: Conn, db_url: str
) -> None:
    """The KPIs read the watermark, then query; a refresh committing in between moves readings
    into the rollups that the query would also count as received since the old watermark.
    Here a refresh on another connection lands exactly there: the figures still equal the
    readings'."""
    from analytics import kpis as kpis_module
    from analytics import queries as q

    now = clock.now()
    today = clock.today()
    add_households(db, [Household("HH-RC", cohort="RC", joined_on=today - timedelta(days=5))])
    add_devices(db, [Device("D-RC", "HH-RC")])
    insert(db, "D-RC", 1, now - timedelta(days=1))
    refresh(db, WINDOW, commit_lag=timedelta(0))
    insert(db, "D-RC", 2, now - timedelta(hours=1))  # received after that watermark
    landed = []

    class RefreshInBetween:
        """A real cursor, with another session's refresh committed after the watermark read."""

        def __init__(self, cur: Any) -> None:
            self.cur = cur

        def execute(self, sql: Any, params: Any = None) -> Any:
            out = self.cur.execute(sql, params)
            if sql is q.USAGE_WATERMARK and not landed:
                out = self.cur.fetchone()
                with psycopg.connect(db_url, autocommit=True) as other:
                    refresh(other, WINDOW, commit_lag=timedelta(0))
                landed.append(True)
                return FetchedOnce(out)
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self.cur, name)

    class FetchedOnce:
        def __init__(self, row: Any) -> None:
            self.row = row

        def fetchone(self) -> Any:
            return self.row

    period = (today - timedelta(days=3), today + timedelta(days=1))
    params = {"start": period[0], "end": period[1], "cohort": "RC", "tz": "Europe/London",
              "t1": datetime.combine(period[1], datetime.min.time(), LONDON)}  # fmt: skip
    with db.cursor() as cur:
        usage, _ = kpis_module._current(  # noqa: SLF001  (the function under test)
            RefreshInBetween(cur),  # type: ignore[arg-type]
            params,
            datetime.combine(period[0], datetime.min.time(), LONDON),
            now - WINDOW,
            "Europe/London",
        )
    assert landed == [True]
    assert usage.set_index("household").loc["HH-RC", "uses"] == 2


def test_the_services_connections_plan_each_query_for_its_own_period(
    fixed: Conn, db_url: str
) -> None:
    """psycopg prepares a query run five times on a connection, and PostgreSQL then plans it
    once for any parameters (a generic plan): for the analysts' queries, whose period decides
    which chunks and rollups to read, that plan walked every household's hourly rows of the
    period only to filter them out (a pilot's year series 18 ms -> 180-440 ms on the eleventh
    run, bench/queries.py). The API's pool and the jobs' connections
    prepare nothing: after a dozen series and KPIs, their session holds no prepared statement,
    and the answers are the same each time. Nor do they compile queries (JIT: 100 of the
    current KPIs' 370 ms at 10,000 households)."""
    from core.db import connect, open_pool

    refresh(fixed, WINDOW, commit_lag=timedelta(0))
    start, end = z("2026-03-01T00:00"), z("2026-11-01T00:00")
    pool = open_pool(db_url, max_size=1, name="prepare-test")
    try:
        with pool.connection() as pooled, connect(db_url) as job:
            for conn in (pooled, job):
                series = [
                    usage_series(conn, "pilot", None, Bucket.W1, start, end) for _ in range(12)
                ]
                kpis = [
                    replace(pilot_kpis(conn, date(2026, 3, 1), date(2026, 11, 1)), as_of=None)
                    for _ in range(12)
                ]
                assert series[0] and all(s == series[0] for s in series)
                assert kpis[0].households_active == 2 and all(k == kpis[0] for k in kpis)
                held = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
                assert held == (0,)
                assert conn.execute("SHOW jit").fetchone() == ("off",)
    finally:
        pool.close()
    # options the URL gives are kept beside it
    from psycopg.conninfo import make_conninfo

    with connect(make_conninfo(db_url, options="-c statement_timeout=12345")) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("12345ms",)
        assert conn.execute("SHOW jit").fetchone() == ("off",)


def test_running_totals_stay_the_sums_of_the_days_before(db: Conn) -> None:
    """The current KPIs take each household's period from its running totals (migration 023):
    after a first build, a late reading inside the late window, one older than it with a
    rebuild, and a household whose backlog arrives at once, every row's totals equal the sums of
    its household's days up to it, and the KPIs of periods ending before, across and after the
    late days equal the raw readings'."""
    now, today = clock.now(), clock.today()
    add_households(
        db,
        [Household(ref, cohort="T", joined_on=today - timedelta(days=60)) for ref in ("HH-T1", "HH-T2")],
    )  # fmt: skip
    add_devices(db, [Device("D-T1", "HH-T1"), Device("D-T2", "HH-T2")])
    # each device's readings in time order, seq counting up; some held back to arrive late
    plan: dict[str, list[tuple[int, datetime, str]]] = {}
    for device in ("D-T1", "D-T2"):
        times = [now - timedelta(days=d, hours=h) for d in range(35, 0, -1) for h in (19, 7)]
        plan[device] = [
            (seq, t, "fault" if device == "D-T2" and seq % 7 == 0 else "run")
            for seq, t in enumerate(times, 1)
        ]

    def send(device: str, keep: Callable[[int, datetime], bool]) -> None:
        for seq, t, kind in plan[device]:
            if keep(seq, t):
                insert(db, device, seq, t, kind, "jam" if kind == "fault" else None,
                       water=1.5 + seq % 3)  # fmt: skip

    def check() -> None:
        wrong = db.execute(
            """SELECT household_ref, day FROM (
                   SELECT household_ref, day, uses_to_date, water_l_to_date, faults_to_date,
                          received_to_date, missing_to_date,
                          sum(uses) OVER w AS uses, sum(water_l) OVER w AS water,
                          sum(faults) OVER w AS faults, sum(readings_received) OVER w AS rec,
                          sum(readings_missing) OVER w AS mis
                   FROM usage_daily WINDOW w AS (PARTITION BY household_ref ORDER BY day)) x
               WHERE (uses_to_date, faults_to_date, received_to_date, missing_to_date)
                     IS DISTINCT FROM (uses, faults, rec, mis)
                  OR abs(water_l_to_date - water) > 1e-9"""
        ).fetchall()
        assert wrong == []
        for first, end in [
            (40, 20),
            (30, 0),
            (10, -1),
            (45, 2),
            (60, -1),
            (1, -1),
            (2, -1),
            (5, 2),
        ]:
            period = (today - timedelta(days=first), today - timedelta(days=end))
            got = pilot_kpis(db, *period, cohort="T").as_dict()
            raw = pilot_kpis(db, *period, cohort="T", source="raw").as_dict()
            assert {k: (v, raw[k]) for k, v in got.items() if k != "as_of" and v != raw[k]} == {}, (
                period
            )

    late = now - timedelta(days=3, hours=12)
    old = now - timedelta(days=20, hours=12)
    send("D-T1", lambda seq, t: not late - timedelta(days=1) < t < late)
    send("D-T2", lambda seq, t: seq % 5 != 0 and not old - timedelta(days=1) < t < old)
    refresh(db, WINDOW, commit_lag=timedelta(0))
    assert db.execute("SELECT max(uses_to_date) FROM usage_daily").fetchone() == (68,)
    check()
    send("D-T1", lambda seq, t: late - timedelta(days=1) < t < late)  # late, inside the window
    refresh(db, WINDOW, commit_lag=timedelta(0))
    check()
    send("D-T2", lambda seq, t: old - timedelta(days=1) < t < old)  # older: waits for a rebuild
    refresh(db, WINDOW, commit_lag=timedelta(0))  # (the watermark passes them first)
    rebuild(db, old - timedelta(days=2), old + timedelta(days=1))
    check()
    add_households(db, [Household("HH-T3", cohort="T", joined_on=today - timedelta(days=60))])
    add_devices(db, [Device("D-T3", "HH-T3")])
    for seq, ago in enumerate((50, 12, 2), 1):  # a household whose backlog arrives at once
        insert(db, "D-T3", seq, now - timedelta(days=ago))
    refresh(db, WINDOW, commit_lag=timedelta(0))
    rebuild(db, now - timedelta(days=51), now)
    check()
    # readings received since the rollups: the first day with them inside a period, before its
    # start, or after its end
    for seq, ago in ((4, timedelta(days=1, hours=1)), (6, timedelta(hours=1))):  # 5 lost
        insert(db, "D-T3", seq, now - ago)
    check()


def test_hour_buckets_of_a_cohort_and_the_pilot_from_the_per_cohort_rollup(fixed: Conn) -> None:
    """A cohort's or the pilot's hour buckets come from the per-cohort rollup, which keeps each
    local hour, for whole days of 23 or 24 hours; a day of 25 hours (its two 01:00s kept as
    one) from the hourly rollup. Across both of 2026's clock changes the series equal the raw
    readings', with a reading in the second 01:00 of 25 October."""
    from analytics.usage import without_long_day

    d = date.fromisoformat
    assert without_long_day(d("2026-10-20"), d("2026-10-30")) == (d("2026-10-20"), d("2026-10-25"))
    # two autumns: the longest stretch between them, checked again for a 25-hour day
    assert without_long_day(d("2025-10-01"), d("2026-12-01")) == (d("2025-10-27"), d("2026-10-25"))
    assert without_long_day(d("2026-10-25"), d("2026-10-26")) == (None, None)
    insert(fixed, "D-2", 16, z("2026-10-25T01:10"))  # 01:10 GMT: the second 01:00 of the day
    refresh(fixed, WINDOW, commit_lag=timedelta(0))
    for scope, key in (("pilot", None), ("cohort", "A"), ("cohort", "B")):
        for start, end in [
            (z("2026-03-20T00:00"), z("2026-11-01T00:00")),
            (z("2026-10-20T23:00"), z("2026-10-30T00:00")),
            (z("2026-03-28T00:00"), z("2026-03-31T00:00")),
        ]:
            rolled = usage_series(fixed, scope, key, Bucket.H1, start, end)
            raw = usage_series(fixed, scope, key, Bucket.H1, start, end, use_rollups=False)
            assert rolled == raw, (scope, key, start)
    autumn = usage_series(
        fixed, "cohort", "B", Bucket.H1, z("2026-10-24T23:00"), z("2026-10-26T00:00")
    )
    # buckets in local time: 00:30Z (01:30 BST), 01:10Z and 01:30Z (GMT) are all "01:00"
    assert [(p.bucket.astimezone(UTC).isoformat(), p.uses) for p in autumn] == [
        ("2026-10-24T23:00:00+00:00", 1), ("2026-10-25T01:00:00+00:00", 3),
        ("2026-10-25T23:00:00+00:00", 1),
    ]  # fmt: skip


def test_a_difference_of_running_totals_does_not_tip_a_rounded_figure(
    db: Conn, awkward_now: datetime
) -> None:
    """Running totals are floats: 5.1 L then 12.5 L make a total whose difference is
    12.500000000000002, not 12.5 — and 12.5 L over 200 days is 0.0625 L a day, exactly on a
    rounding edge. The KPIs measure to a millionth first, so the figure is the readings' own."""
    now, today = clock.now(), clock.today()
    add_households(db, [Household("HH-R", cohort="R", joined_on=today - timedelta(days=400))])
    add_devices(db, [Device("D-R", "HH-R")])
    start = today - timedelta(days=200)
    insert(db, "D-R", 1, datetime.combine(start - timedelta(days=1), time(12), LONDON), water=5.1)
    insert(db, "D-R", 2, datetime.combine(start + timedelta(days=50), time(12), LONDON), water=12.5)
    refresh(db, WINDOW, commit_lag=timedelta(0))
    assert now > datetime.combine(start + timedelta(days=50), time(12), LONDON)
    current = pilot_kpis(db, start, today, cohort="R")
    assert current.water_l_per_household_day == round(12.5 / 200, 3) == 0.062
    assert same(current, pilot_kpis(db, start, today, cohort="R", source="raw"))
