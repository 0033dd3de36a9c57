"""One household as an analyst sent to it asks: why does this home need a visit? Its devices and
their state (and when they came online or went offline), the faults by kind with their times,
the gaps in its readings (from each device's seq) day by day, its daily use against its
cohort's median household, and its anomalies. The API (`GET /api/v1/households/{ref}`) and the
household page show this same record."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from analytics import queries as q
from analytics.kpis import LATE_WINDOW
from analytics.water import meter_days
from core import clock
from core.settings import Settings

DAYS = 30
FAULTS_LISTED = 500


@dataclass(frozen=True, slots=True)
class DeviceState:
    device_id: str
    model: str
    installed_on: date
    state: str  # online | offline | decommissioned | unknown (never heard from)
    last_seen: datetime | None  # device time of its newest stored reading
    status_at: datetime | None  # when it last said it was online or offline
    firmware: str | None
    rssi_dbm: int | None
    uptime_s: int | None
    decommissioned_at: datetime | None
    kind: str = "wastepilot-v1"  # how it speaks (core/topics.py KIND_FAMILY)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A device came online or went offline (by its own status message)."""

    device_id: str
    online: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Fault:
    at: datetime
    kind: str  # jam | overload | leak | power
    device_id: str
    water_l: float | None  # optional on the wire for a fault


@dataclass(frozen=True, slots=True)
class Gap:
    """Readings a device numbered but that never arrived: seqs after_seq+1 .. before_seq-1."""

    device_id: str
    missing: int
    after_seq: int
    before_seq: int
    after: datetime  # the device time of the reading before the gap
    before: datetime  # and of the one after it


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    uses: int
    water_l: float
    faults: int
    cohort_median_uses: float | None  # the cohort's median household that day
    received: int  # readings stored, stamped that day
    missing: int  # readings missing before those (the gaps ending that day)
    meter_l: float | None = None  # litres the household's water meter counted (None: no meter)

    @property
    def completeness(self) -> float | None:
        expected = self.received + self.missing
        return self.received / expected if expected else None


@dataclass(frozen=True, slots=True)
class HouseholdDetail:
    ref: str
    cohort: str
    joined_on: date
    left_on: date | None
    start: datetime
    end: datetime
    as_of: datetime
    offline_after_h: float
    devices: list[DeviceState]
    status_changes: list[StatusChange]  # newest first, the last 30 days (at most 100)
    faults: list[Fault]  # the newest FAULTS_LISTED
    faults_by_kind: dict[str, int]  # all of them
    gaps: list[Gap]
    days: list[Day]
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def readings_missing(self) -> int:
        return sum(g.missing for g in self.gaps)


def device_state(row: dict[str, Any], now: datetime, offline_after: timedelta) -> str:
    """What a device is now: decommissioned; offline when its last status message said so or
    nothing (reading or status) came for `offline_after`; never heard from; else online."""
    if row["decommissioned_at"] is not None:
        return "decommissioned"
    if row["online"] is False:
        return "offline"
    heard = [t for t in (row["last_seen"], row["status_at"]) if t is not None]
    if not heard:
        return "unknown"
    return "offline" if now - max(heard) > offline_after else "online"


def gaps_and_days(
    seqs: list[tuple[str, int, datetime]], start: datetime
) -> tuple[list[Gap], dict[date, tuple[int, int]]]:
    """From each device's stored (device, seq, ts) in seq order (one before the period first,
    if any): the gaps, newest first, and per UK day the readings received and missing (a gap
    counts on the day of the reading after it). Pure."""
    gaps: list[Gap] = []
    received: Counter[date] = Counter()
    missing: Counter[date] = Counter()
    prev: tuple[str, int, datetime] | None = None
    for device, seq, ts in seqs:
        if ts >= start:
            d = ts.astimezone(clock.LONDON).date()
            received[d] += 1
            if prev is not None and prev[0] == device and seq > prev[1] + 1:
                n = seq - prev[1] - 1
                missing[d] += n
                gaps.append(Gap(device, n, prev[1], seq, prev[2], ts))
        prev = (device, seq, ts)
    gaps.sort(key=lambda g: g.before, reverse=True)
    return gaps, {d: (received[d], missing[d]) for d in received | missing}


def household_detail(
    conn: psycopg.Connection[Any],
    ref: str,
    *,
    offline_after_h: float = 48.0,
    max_future_s: float = 300.0,
    days: int = DAYS,
) -> HouseholdDetail | None:
    """The household's last `days` UK days up to now (and readings stamped as far ahead as
    ingest accepts: a device clock running fast); None if there is no such household."""
    now = clock.now()
    today = now.astimezone(clock.LONDON).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), clock.LONDON)
    params = {
        "ref": ref,
        "start": start,
        "end": now + timedelta(seconds=max_future_s),
        "limit": FAULTS_LISTED,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        h = cur.execute(q.HOUSEHOLD, params).fetchone()
        if h is None:
            return None
        devices = [
            DeviceState(
                device_id=r["device_id"],
                model=r["model"],
                installed_on=r["installed_on"],
                state=device_state(r, now, timedelta(hours=offline_after_h)),
                last_seen=r["last_seen"],
                status_at=r["status_at"],
                firmware=r["firmware"],
                rssi_dbm=r["rssi_dbm"],
                uptime_s=r["uptime_s"],
                decommissioned_at=r["decommissioned_at"],
                kind=r["kind"],
            )
            for r in cur.execute(q.HOUSEHOLD_DEVICES, params)
        ]
        changes = [StatusChange(**r) for r in cur.execute(q.HOUSEHOLD_STATUS_CHANGES, params)]
        faults = [Fault(**r) for r in cur.execute(q.HOUSEHOLD_FAULTS, params)]
        by_kind = {r["kind"]: int(r["n"]) for r in cur.execute(q.HOUSEHOLD_FAULT_COUNTS, params)}
        anomalies = cur.execute(q.HOUSEHOLD_ANOMALIES, params).fetchall()
        medians = {
            r["day"]: float(r["median"])
            for r in cur.execute(
                q.COHORT_DAILY_MEDIAN,
                {
                    "cohort": h["cohort"],
                    "first": first,
                    "last": today,
                    "late_from": now - LATE_WINDOW,
                },
            )
        }
    seqs = [(str(d), int(s), t) for d, s, t in conn.execute(q.HOUSEHOLD_SEQS, params)]
    gaps, completeness = gaps_and_days(seqs, start)
    with conn.cursor(row_factory=dict_row) as cur:
        usage = {r["day"]: r for r in cur.execute(q.HOUSEHOLD_DAYS, params)}
    metered = any(d.kind == "wmbus" for d in devices)
    water = {
        m.day: m.litres for m in meter_days(conn, ref, start, now + timedelta(seconds=max_future_s))
    }
    day_rows = []
    for i in range(days):
        d = first + timedelta(days=i)
        u = usage.get(d)
        got, lost = completeness.get(d, (0, 0))
        day_rows.append(
            Day(
                day=d,
                uses=u["uses"] if u else 0,
                water_l=round(u["water_l"], 3) if u else 0.0,
                faults=u["faults"] if u else 0,
                cohort_median_uses=medians.get(d),
                received=got,
                missing=lost,
                meter_l=water.get(d, 0.0) if metered else None,
            )
        )
    return HouseholdDetail(
        ref=h["ref"],
        cohort=h["cohort"],
        joined_on=h["joined_on"],
        left_on=h["left_on"],
        start=start,
        end=now,
        as_of=now,
        offline_after_h=offline_after_h,
        devices=devices,
        status_changes=changes,
        faults=faults,
        faults_by_kind=by_kind,
        gaps=gaps,
        days=day_rows,
        anomalies=anomalies,
    )


def household_record(
    conn: psycopg.Connection[Any], ref: str, s: Settings
) -> HouseholdDetail | None:
    """`household_detail` with the service's settings (the API and the page ask the same)."""
    return household_detail(
        conn, ref, offline_after_h=s.offline_after_h, max_future_s=s.ingest_max_future_s
    )
