"""Usage series for a household, a cohort or the whole pilot, bucketed in SQL (time_bucket).

Whole hours up to the rollup watermark come from `usage_hourly`, which holds exactly the readings
received up to the watermark; the rest — a period's ragged edges, 15-minute buckets, the newest
hour, and readings received since the watermark (late backlogs) — from raw readings. The same
figures either way, so a series is complete and current without scanning a year of readings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row

from analytics import queries as q
from analytics.archive import archived_usage
from core import clock
from core.clock import LONDON

DAY = timedelta(hours=24)
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


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), LONDON).astimezone(UTC)


def whole_days(lo: datetime, hi: datetime) -> tuple[date | None, date | None]:
    """The UK days lying wholly inside [lo, hi), as [first, end) dates, or (None, None)."""
    first = lo.astimezone(LONDON).date()
    if _midnight(first) < lo:
        first += timedelta(days=1)
    last = hi.astimezone(LONDON).date()  # the day whose midnight is the last at or before hi
    if _midnight(last) > hi:
        last -= timedelta(days=1)
    return (first, last) if first < last else (None, None)


def without_long_day(first: date | None, end: date | None) -> tuple[date | None, date | None]:
    """The longest part of the UK days [first, end) without a day of 25 hours (the autumn
    clock change), or (None, None)."""
    lo, hi = first, end
    while lo is not None and hi is not None and lo < hi:
        long = next(
            (d for d in _days(lo, hi) if _midnight(d + timedelta(days=1)) - _midnight(d) > DAY),
            None,
        )
        if long is None:
            return lo, hi
        lo, hi = max((lo, long), (long + timedelta(days=1), hi), key=lambda r: r[1] - r[0])
    return None, None


def _days(first: date, end: date) -> Iterator[date]:
    d = first
    while d < end:
        yield d
        d += timedelta(days=1)


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
    row = conn.execute(q.USAGE_WATERMARK).fetchone()
    watermark = row[0] if row and use_rollups else None
    r_lo, r_hi = rollup_range(start, end, bucket, watermark)
    # whole UK days from the per-day rollups: for day and week buckets, and for a cohort's or
    # the pilot's hour buckets (their per-cohort rollup keeps each local hour) but for a day
    # of 25 hours, whose two 01:00s it keeps as one (those take the hourly rollup)
    d_lo, d_hi = (None, None)
    if tz == "Europe/London" and bucket in (Bucket.D1, Bucket.W1):
        d_lo, d_hi = whole_days(r_lo, r_hi)
    elif tz == "Europe/London" and bucket is Bucket.H1 and scope != "household":
        d_lo, d_hi = without_long_day(*whole_days(r_lo, r_hi))
    dt_lo = _midnight(d_lo) if d_lo else r_lo
    dt_hi = _midnight(d_hi) if d_hi else r_lo
    archived = archived_usage(conn, scope, key, [(start, r_lo), (r_hi, end)])
    with conn.cursor(row_factory=class_row(UsagePoint)) as cur:
        cur.execute(
            q.SERIES,
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
                # rebuild; looking for them would scan every chunk of the period. The window is
                # on device time, so it ends at the pilot's now, as the rollup job's does
                "late_from": clock.now() - late_window,
                "d_lo": d_lo or date(1, 1, 1),
                "d_hi": d_hi or date(1, 1, 1),
                "dt_lo": dt_lo,
                "dt_hi": dt_hi,
                **archived,
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
