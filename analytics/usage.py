"""Usage series for a household, a cohort or the whole pilot, bucketed in SQL (time_bucket).

Whole hours up to the rollup watermark come from `usage_hourly`, which holds exactly the readings
received up to the watermark; the rest — a period's ragged edges, 15-minute buckets, the newest
hour, and readings received since the watermark (late backlogs) — from raw readings. The same
figures either way, so a series is complete and current without scanning a year of readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal, LiteralString
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import class_row

Scope = Literal["household", "cohort", "pilot"]


class Bucket(StrEnum):
    """Bucket widths an analyst can ask for."""

    M15 = "15m"
    H1 = "1h"
    D1 = "1d"
    W1 = "1w"

    @property
    def interval(self) -> timedelta:
        return {
            "15m": timedelta(minutes=15),
            "1h": timedelta(hours=1),
            "1d": timedelta(days=1),
            "1w": timedelta(weeks=1),
        }[self.value]


_SCOPE: LiteralString = """
(%(scope)s = 'pilot' OR (%(scope)s = 'household' AND h.ref = %(key)s)
 OR (%(scope)s = 'cohort' AND h.cohort = %(key)s))
"""

# Buckets follow local time in `tz` (day buckets start at local midnight across DST changes).
SERIES: LiteralString = (
    """
WITH src AS (
    SELECT u.hour AS t, u.uses::bigint AS uses, u.run_s, u.energy_wh, u.water_l,
           u.faults::bigint AS faults
    FROM usage_hourly u JOIN households h ON h.ref = u.household_ref
    WHERE """
    + _SCOPE
    + """ AND u.hour >= %(r_lo)s AND u.hour < %(r_hi)s
      AND NOT (u.hour >= %(dt_lo)s AND u.hour < %(dt_hi)s)
    UNION ALL
    -- whole UK days inside the rollup range, for day and week buckets in UK time: one
    -- household's from its daily rollup, a cohort's or the pilot's from the per-cohort one
    SELECT (u.day::timestamp AT TIME ZONE 'Europe/London'), u.uses::bigint, u.run_s,
           u.energy_wh, u.water_l, u.faults::bigint
    FROM usage_daily u
    WHERE %(scope)s = 'household' AND u.household_ref = %(key)s
      AND u.day >= %(d_lo)s AND u.day < %(d_hi)s
    UNION ALL
    SELECT (p.day::timestamp AT TIME ZONE 'Europe/London'), p.uses::bigint, p.run_s,
           p.energy_wh, p.water_l, p.faults::bigint
    FROM usage_profile_daily p
    WHERE (%(scope)s = 'pilot' OR (%(scope)s = 'cohort' AND p.cohort = %(key)s))
      AND p.day >= %(d_lo)s AND p.day < %(d_hi)s
    UNION ALL
    SELECT r.ts, (r.kind = 'run')::int, coalesce(r.run_s, 0)::float8,
           coalesce(r.energy_wh, 0)::float8, coalesce(r.water_l, 0)::float8,
           (r.kind = 'fault')::int
    FROM readings r
    JOIN devices d ON d.id = r.device_id
    JOIN households h ON h.ref = d.household_ref
    WHERE """
    + _SCOPE
    + """ AND ((r.ts >= %(start)s AND r.ts < %(r_lo)s) OR (r.ts >= %(r_hi)s AND r.ts < %(end)s))
    UNION ALL
    -- readings received after the rollups' watermark, in hours the rollups answer
    SELECT r.ts, (r.kind = 'run')::int, coalesce(r.run_s, 0)::float8,
           coalesce(r.energy_wh, 0)::float8, coalesce(r.water_l, 0)::float8,
           (r.kind = 'fault')::int
    FROM readings r
    JOIN devices d ON d.id = r.device_id
    JOIN households h ON h.ref = d.household_ref
    WHERE """
    + _SCOPE
    + """ AND r.ts >= greatest(%(r_lo)s, %(late_from)s) AND r.ts < %(r_hi)s
      AND r.received_at > %(watermark)s
)
SELECT time_bucket(%(width)s::interval, t, %(tz)s) AS bucket,
       sum(uses)::bigint AS uses, round(sum(run_s)::numeric, 2)::float8 AS run_s,
       round(sum(energy_wh)::numeric, 3)::float8 AS energy_wh,
       round(sum(water_l)::numeric, 3)::float8 AS water_l, sum(faults)::bigint AS faults
FROM src
GROUP BY 1
ORDER BY 1
"""
)


@dataclass(frozen=True, slots=True)
class UsagePoint:
    bucket: datetime
    uses: int
    run_s: float
    energy_wh: float
    water_l: float
    faults: int


def _floor_hour(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def rollup_range(
    start: datetime, end: datetime, bucket: Bucket, watermark: datetime | None
) -> tuple[datetime, datetime]:
    """The whole hours of [start, end) that the hourly rollup can answer (possibly empty)."""
    lo = _floor_hour(start)
    if lo < start:
        lo += timedelta(hours=1)
    lo = min(lo, end)
    if bucket is Bucket.M15 or watermark is None:
        return lo, lo
    hi = max(lo, _floor_hour(min(end, watermark)))
    return lo, hi


_LONDON = ZoneInfo("Europe/London")


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), _LONDON).astimezone(UTC)


def whole_days(lo: datetime, hi: datetime) -> tuple[date | None, date | None]:
    """The UK days lying wholly inside [lo, hi), as [first, end) dates, or (None, None)."""
    first = lo.astimezone(_LONDON).date()
    if _midnight(first) < lo:
        first += timedelta(days=1)
    last = hi.astimezone(_LONDON).date()  # the day whose midnight is the last at or before hi
    if _midnight(last) > hi:
        last -= timedelta(days=1)
    return (first, last) if first < last else (None, None)


def usage_series(
    conn: psycopg.Connection[Any],
    scope: Scope,
    key: str | None,
    bucket: Bucket,
    start: datetime,
    end: datetime,
    tz: str = "Europe/London",
    *,
    use_rollups: bool = True,
    late_window: timedelta = timedelta(hours=168),
) -> list[UsagePoint]:
    """Usage per bucket in [start, end) of one household (key = its reference), one cohort (key
    = its name) or the pilot; buckets with neither a use nor a fault are omitted.
    `use_rollups=False` reads raw readings only (the benchmark's comparison)."""
    row = conn.execute(
        "SELECT received_until FROM rollup_watermarks WHERE name = 'usage'"
    ).fetchone()
    watermark = row[0] if row and use_rollups else None
    r_lo, r_hi = rollup_range(start, end, bucket, watermark)
    d_lo, d_hi = (
        whole_days(r_lo, r_hi)
        if bucket in (Bucket.D1, Bucket.W1) and tz == "Europe/London"
        else (None, None)
    )
    dt_lo = _midnight(d_lo) if d_lo else r_lo
    dt_hi = _midnight(d_hi) if d_hi else r_lo
    with conn.cursor(row_factory=class_row(UsagePoint)) as cur:
        cur.execute(
            SERIES,
            {
                "scope": scope,
                "key": key,
                "width": bucket.interval,
                "tz": tz,
                "start": start,
                "end": end,
                "r_lo": r_lo,
                "r_hi": r_hi,
                "watermark": watermark or end,
                # late readings stamped before the rollups' late window reach them only by a
                # rebuild; looking for them would scan every chunk of the period
                "late_from": (watermark or end) - late_window,
                "d_lo": d_lo or date(1, 1, 1),
                "d_hi": d_hi or date(1, 1, 1),
                "dt_lo": dt_lo,
                "dt_hi": dt_hi,
            },
        )
        return cur.fetchall()


def household_usage(
    conn: psycopg.Connection[Any],
    ref: str,
    bucket: Bucket,
    start: datetime,
    end: datetime,
    tz: str = "Europe/London",
) -> list[UsagePoint]:
    """One household's usage per bucket in [start, end); empty buckets are omitted."""
    return usage_series(conn, "household", ref, bucket, start, end, tz)
