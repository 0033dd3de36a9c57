"""Hourly and daily usage rollups per household, refreshed incrementally from a watermark.

The watermark is on `readings.received_at` (when ingest stored a reading), not on the device's
own `ts`: a reading that arrives late — a device's offline backlog, a redelivery — moves the
watermark like any other and its hour is re-aggregated, as long as its `ts` is within the late
window (the window keeps each refresh to the newest chunks). Re-aggregation replaces the whole
hour and day, so refreshing twice changes nothing and duplicates are never counted twice (the
readings table holds each reading once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, LiteralString

import psycopg

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]
WATERMARK = "usage"
LOCAL_TZ = "Europe/London"
# Ingest's transactions take milliseconds; a reading whose transaction began before the new
# watermark but committed after this refresh read it would be missed, so the watermark trails
# the clock by this much.
COMMIT_LAG = timedelta(seconds=30)

_AFFECTED_SINCE: LiteralString = """
CREATE TEMP TABLE affected_hours ON COMMIT DROP AS
SELECT DISTINCT d.household_ref, time_bucket('1 hour', r.ts) AS hour
FROM readings r JOIN devices d ON d.id = r.device_id
WHERE r.received_at > %(after)s AND r.received_at <= %(until)s AND r.ts >= %(since)s
"""

_AFFECTED_RANGE: LiteralString = """
CREATE TEMP TABLE affected_hours ON COMMIT DROP AS
SELECT DISTINCT d.household_ref, time_bucket('1 hour', r.ts) AS hour
FROM readings r JOIN devices d ON d.id = r.device_id
WHERE r.ts >= %(start)s AND r.ts < %(end)s
"""

_REFRESH_HOURLY: LiteralString = """
INSERT INTO usage_hourly AS u (household_ref, hour, uses, run_s, energy_wh, water_l, faults,
                               jams, leaks, refreshed_at)
SELECT d.household_ref, time_bucket('1 hour', r.ts),
       count(*) FILTER (WHERE r.kind = 'run'),
       coalesce(sum(r.run_s::float8), 0), coalesce(sum(r.energy_wh::float8), 0),
       coalesce(sum(r.water_l::float8), 0),
       count(*) FILTER (WHERE r.kind = 'fault'),
       count(*) FILTER (WHERE r.fault = 'jam'),
       count(*) FILTER (WHERE r.fault = 'leak'),
       now()
FROM readings r
JOIN devices d ON d.id = r.device_id
JOIN affected_hours a ON a.household_ref = d.household_ref AND a.hour = time_bucket('1 hour', r.ts)
WHERE r.ts >= %(lo)s AND r.ts < %(hi)s
GROUP BY 1, 2
ON CONFLICT (household_ref, hour) DO UPDATE SET
    uses = excluded.uses, run_s = excluded.run_s, energy_wh = excluded.energy_wh,
    water_l = excluded.water_l, faults = excluded.faults, jams = excluded.jams,
    leaks = excluded.leaks, refreshed_at = excluded.refreshed_at
"""

# Completeness per device and local day from seq: the readings expected since the device's last
# reading before the day, against the distinct new ones received.
_REFRESH_DAILY: LiteralString = """
WITH days AS (
    SELECT DISTINCT household_ref, (hour AT TIME ZONE 'Europe/London')::date AS day
    FROM affected_hours
), bounds AS (
    SELECT household_ref, day,
           (day::timestamp AT TIME ZONE 'Europe/London') AS t0,
           ((day + 1)::timestamp AT TIME ZONE 'Europe/London') AS t1
    FROM days
), sums AS (
    SELECT b.household_ref, b.day, sum(h.uses)::int AS uses, sum(h.run_s) AS run_s,
           sum(h.energy_wh) AS energy_wh, sum(h.water_l) AS water_l,
           sum(h.faults)::int AS faults, sum(h.jams)::int AS jams, sum(h.leaks)::int AS leaks
    FROM bounds b
    JOIN usage_hourly h ON h.household_ref = b.household_ref AND h.hour >= b.t0 AND h.hour < b.t1
    GROUP BY 1, 2
), per_device AS (
    SELECT b.household_ref, b.day, s.received,
           greatest(s.max_seq - coalesce(p.seq, s.min_seq - 1) - s.received, 0) AS missing
    FROM bounds b
    JOIN devices d ON d.household_ref = b.household_ref
    LEFT JOIN LATERAL (
        SELECT r.seq FROM readings r
        WHERE r.device_id = d.id AND r.ts < b.t0 ORDER BY r.ts DESC LIMIT 1
    ) p ON true
    JOIN LATERAL (
        SELECT count(DISTINCT r.seq) FILTER (WHERE p.seq IS NULL OR r.seq > p.seq) AS received,
               max(r.seq) AS max_seq, min(r.seq) AS min_seq
        FROM readings r
        WHERE r.device_id = d.id AND r.ts >= b.t0 AND r.ts < b.t1
    ) s ON s.max_seq IS NOT NULL
), completeness AS (
    SELECT household_ref, day, sum(received)::int AS received, sum(missing)::int AS missing
    FROM per_device GROUP BY 1, 2
)
INSERT INTO usage_daily AS u (household_ref, day, uses, run_s, energy_wh, water_l, faults, jams,
                              leaks, readings_received, readings_missing, refreshed_at)
SELECT s.household_ref, s.day, s.uses, s.run_s, s.energy_wh, s.water_l, s.faults, s.jams,
       s.leaks, coalesce(c.received, 0), coalesce(c.missing, 0), now()
FROM sums s LEFT JOIN completeness c USING (household_ref, day)
ON CONFLICT (household_ref, day) DO UPDATE SET
    uses = excluded.uses, run_s = excluded.run_s, energy_wh = excluded.energy_wh,
    water_l = excluded.water_l, faults = excluded.faults, jams = excluded.jams,
    leaks = excluded.leaks, readings_received = excluded.readings_received,
    readings_missing = excluded.readings_missing, refreshed_at = excluded.refreshed_at
"""


@dataclass(frozen=True, slots=True)
class Refreshed:
    hours: int
    days: int
    received_until: datetime | None


def _apply(conn: Conn) -> tuple[int, int]:
    span = conn.execute("SELECT min(hour), max(hour), count(*) FROM affected_hours").fetchone()
    if span is None or span[0] is None:
        return 0, 0
    lo, hi = span[0], span[1] + timedelta(hours=1)
    hours = conn.execute(_REFRESH_HOURLY, {"lo": lo, "hi": hi}).rowcount
    days = conn.execute(_REFRESH_DAILY).rowcount
    return hours, days


def refresh(conn: Conn, late_window: timedelta, commit_lag: timedelta = COMMIT_LAG) -> Refreshed:
    """Re-aggregate every (household, hour) with readings received since the watermark and
    stamped within `late_window`; the first run builds everything. One transaction."""
    with conn.transaction():
        row = conn.execute(
            "SELECT received_until FROM rollup_watermarks WHERE name = %s FOR UPDATE",
            (WATERMARK,),
        ).fetchone()
        until = conn.execute("SELECT now() - %s", (commit_lag,)).fetchone()
        assert until is not None  # noqa: S101  (SELECT returns a row)
        if row is None:
            conn.execute(
                _AFFECTED_RANGE, {"start": datetime.min.replace(year=1970), "end": until[0]}
            )
        else:
            conn.execute(
                _AFFECTED_SINCE,
                {"after": row[0], "until": until[0], "since": until[0] - late_window},
            )
        hours, days = _apply(conn)
        conn.execute(
            "INSERT INTO rollup_watermarks (name, received_until) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET received_until = excluded.received_until, "
            "updated_at = now()",
            (WATERMARK, until[0]),
        )
    log.info("rollups refreshed: %d household-hours, %d household-days", hours, days)
    return Refreshed(hours, days, until[0])


def rebuild(conn: Conn, start: datetime, end: datetime) -> Refreshed:
    """Re-aggregate every household-hour with readings stamped in [start, end) — for readings
    that arrived later than the late window, or after a fix. One transaction."""
    with conn.transaction():
        conn.execute(_AFFECTED_RANGE, {"start": start, "end": end})
        hours, days = _apply(conn)
    return Refreshed(hours, days, None)
