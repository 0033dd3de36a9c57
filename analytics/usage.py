"""Usage series: time-bucketed disposer runs, computed in SQL (time_bucket), never in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import LiteralString

import psycopg
from psycopg.rows import class_row


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


# Buckets follow local time in `tz` (day buckets start at local midnight across DST changes).
HOUSEHOLD_USAGE: LiteralString = """
SELECT time_bucket(%(width)s::interval, r.ts, %(tz)s) AS bucket,
       count(*) FILTER (WHERE r.kind = 'run') AS uses,
       round(coalesce(sum(r.run_s::numeric), 0), 2)::float8 AS run_s,
       round(coalesce(sum(r.energy_wh::numeric), 0), 3)::float8 AS energy_wh,
       round(coalesce(sum(r.water_l::numeric), 0), 3)::float8 AS water_l,
       count(*) FILTER (WHERE r.kind = 'fault') AS faults
FROM readings r
JOIN devices d ON d.id = r.device_id
WHERE d.household_ref = %(ref)s AND r.ts >= %(start)s AND r.ts < %(end)s
GROUP BY 1
ORDER BY 1
"""


@dataclass(frozen=True, slots=True)
class UsagePoint:
    bucket: datetime
    uses: int
    run_s: float
    energy_wh: float
    water_l: float
    faults: int


def household_usage(
    conn: psycopg.Connection[tuple[object, ...]],
    ref: str,
    bucket: Bucket,
    start: datetime,
    end: datetime,
    tz: str = "Europe/London",
) -> list[UsagePoint]:
    """One household's usage per bucket in [start, end); empty buckets are omitted."""
    with conn.cursor(row_factory=class_row(UsagePoint)) as cur:
        cur.execute(
            HOUSEHOLD_USAGE,
            {"width": bucket.interval, "tz": tz, "ref": ref, "start": start, "end": end},
        )
        return cur.fetchall()
