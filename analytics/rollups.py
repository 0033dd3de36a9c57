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
from datetime import UTC, datetime, timedelta
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
WHERE r.ts >= %(lo)s AND r.ts < %(hi)s AND r.received_at <= %(until)s
GROUP BY 1, 2
ON CONFLICT (household_ref, hour) DO UPDATE SET
    uses = excluded.uses, run_s = excluded.run_s, energy_wh = excluded.energy_wh,
    water_l = excluded.water_l, faults = excluded.faults, jams = excluded.jams,
    leaks = excluded.leaks, refreshed_at = excluded.refreshed_at
"""

# The local days to re-aggregate: those of the affected hours, and each household's next day
# with data (its expected count starts from the seq before it, which a late reading may change).
_AFFECTED_DAYS: LiteralString = """
CREATE TEMP TABLE affected_days ON COMMIT DROP AS
WITH d AS (
    SELECT DISTINCT household_ref, (hour AT TIME ZONE 'Europe/London')::date AS day
    FROM affected_hours
)
SELECT household_ref, day FROM d
UNION
SELECT d.household_ref, n.day FROM d
CROSS JOIN LATERAL (
    SELECT u.day FROM usage_daily u
    WHERE u.household_ref = d.household_ref AND u.day > d.day ORDER BY u.day LIMIT 1
) n
"""

_REFRESH_DEVICE_DAILY: LiteralString = """
INSERT INTO device_daily AS x (device_id, day, received, min_seq, max_seq)
SELECT r.device_id, (r.ts AT TIME ZONE 'Europe/London')::date,
       count(DISTINCT r.seq), min(r.seq), max(r.seq)
FROM readings r
JOIN devices dv ON dv.id = r.device_id
JOIN affected_days a ON a.household_ref = dv.household_ref
     AND a.day = (r.ts AT TIME ZONE 'Europe/London')::date
WHERE r.ts >= %(lo)s AND r.ts < %(hi)s
GROUP BY 1, 2
ON CONFLICT (device_id, day) DO UPDATE SET
    received = excluded.received, min_seq = excluded.min_seq, max_seq = excluded.max_seq
"""

# Completeness per household and day from seq: for each device, the readings expected since its
# last seq of an earlier day, against the distinct ones received.
_REFRESH_DAILY: LiteralString = """
WITH bounds AS (
    SELECT household_ref, day,
           (day::timestamp AT TIME ZONE 'Europe/London') AS t0,
           ((day + 1)::timestamp AT TIME ZONE 'Europe/London') AS t1
    FROM affected_days
), sums AS (
    SELECT b.household_ref, b.day, sum(h.uses)::int AS uses, sum(h.run_s) AS run_s,
           sum(h.energy_wh) AS energy_wh, sum(h.water_l) AS water_l,
           sum(h.faults)::int AS faults, sum(h.jams)::int AS jams, sum(h.leaks)::int AS leaks
    FROM bounds b
    JOIN usage_hourly h ON h.household_ref = b.household_ref AND h.hour >= b.t0 AND h.hour < b.t1
    GROUP BY 1, 2
), completeness AS (
    SELECT a.household_ref, a.day, sum(x.received)::int AS received,
           sum(greatest(x.max_seq - coalesce(p.max_seq, x.min_seq - 1) - x.received, 0))::int
               AS missing
    FROM affected_days a
    JOIN devices dv ON dv.household_ref = a.household_ref
    JOIN device_daily x ON x.device_id = dv.id AND x.day = a.day
    LEFT JOIN LATERAL (
        SELECT y.max_seq FROM device_daily y
        WHERE y.device_id = x.device_id AND y.day < x.day ORDER BY y.day DESC LIMIT 1
    ) p ON true
    GROUP BY 1, 2
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


_REFRESH_PROFILE: LiteralString = """
WITH days AS (SELECT DISTINCT day FROM affected_days)
INSERT INTO usage_profile_daily (day, cohort, hour, uses, water_l, run_s, energy_wh, faults)
SELECT (u.hour AT TIME ZONE 'Europe/London')::date, h.cohort,
       extract(hour FROM u.hour AT TIME ZONE 'Europe/London')::smallint,
       sum(u.uses)::int, sum(u.water_l), sum(u.run_s), sum(u.energy_wh), sum(u.faults)::int
FROM days
JOIN usage_hourly u ON u.hour >= (days.day::timestamp AT TIME ZONE 'Europe/London')
                   AND u.hour < ((days.day + 1)::timestamp AT TIME ZONE 'Europe/London')
JOIN households h ON h.ref = u.household_ref
GROUP BY 1, 2, 3
"""


@dataclass(frozen=True, slots=True)
class Refreshed:
    hours: int
    days: int
    received_until: datetime | None


def _apply(conn: Conn, until: datetime) -> tuple[int, int]:
    """Re-aggregate the affected hours and days from the readings received up to `until`: a
    rollup row holds exactly those, and series add the ones received later from raw readings."""
    span = conn.execute("SELECT min(hour), max(hour), count(*) FROM affected_hours").fetchone()
    if span is None or span[0] is None:
        return 0, 0
    lo, hi = span[0], span[1] + timedelta(hours=1)
    hours = conn.execute(_REFRESH_HOURLY, {"lo": lo, "hi": hi, "until": until}).rowcount
    conn.execute(_AFFECTED_DAYS)
    # whole local days around the affected hours (a day is 23-25 hours)
    conn.execute(
        _REFRESH_DEVICE_DAILY, {"lo": lo - timedelta(hours=26), "hi": hi + timedelta(hours=26)}
    )
    conn.execute("ANALYZE affected_days")
    days = conn.execute(_REFRESH_DAILY).rowcount
    # (a statement does not see its own CTE's deletions: delete first, then insert)
    conn.execute("DELETE FROM usage_profile_daily WHERE day IN (SELECT day FROM affected_days)")
    conn.execute(_REFRESH_PROFILE)
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
        hours, days = _apply(conn, until[0])
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
        row = conn.execute(
            "SELECT received_until FROM rollup_watermarks WHERE name = %s FOR UPDATE", (WATERMARK,)
        ).fetchone()
        until = row[0] if row else datetime.now(UTC)
        conn.execute(_AFFECTED_RANGE, {"start": start, "end": end})
        hours, days = _apply(conn, until)
    return Refreshed(hours, days, None)
