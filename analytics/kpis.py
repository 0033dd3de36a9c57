"""Pilot KPIs for a period: SQL aggregates per household (from rollups, or from raw readings for
comparison), then pandas on that small frame — one row per household, never raw readings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal, LiteralString

import pandas as pd
import psycopg

Conn = psycopg.Connection[Any]
Source = Literal["rollup", "raw"]

_ENROLLED: LiteralString = """
SELECT h.ref AS household, h.cohort,
       greatest(0, least(%(end)s::date, coalesce(h.left_on + 1, %(end)s::date))
                   - greatest(%(start)s::date, h.joined_on)) AS days_enrolled
FROM households h
WHERE h.joined_on < %(end)s AND (h.left_on IS NULL OR h.left_on >= %(start)s)
  AND (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
"""

_FROM_ROLLUP: LiteralString = """
SELECT household_ref AS household, sum(uses)::bigint AS uses, sum(run_s) AS run_s,
       sum(energy_wh) AS energy_wh, sum(water_l) AS water_l, sum(faults)::bigint AS faults,
       sum(readings_received)::bigint AS received, sum(readings_missing)::bigint AS missing
FROM usage_daily
WHERE day >= %(start)s AND day < %(end)s
GROUP BY 1
"""

# the same figures straight from the readings (the benchmark's comparison, and a check)
_FROM_RAW: LiteralString = """
WITH r AS (
    SELECT d.household_ref AS household,
           count(*) FILTER (WHERE r.kind = 'run') AS uses,
           coalesce(sum(r.run_s::float8), 0) AS run_s,
           coalesce(sum(r.energy_wh::float8), 0) AS energy_wh,
           coalesce(sum(r.water_l::float8), 0) AS water_l,
           count(*) FILTER (WHERE r.kind = 'fault') AS faults
    FROM readings r JOIN devices d ON d.id = r.device_id
    WHERE r.ts >= (%(start)s::date::timestamp AT TIME ZONE 'Europe/London')
      AND r.ts < (%(end)s::date::timestamp AT TIME ZONE 'Europe/London')
    GROUP BY 1
), c AS (
    SELECT d.household_ref AS household, sum(c.received)::bigint AS received,
           sum(c.missing)::bigint AS missing
    FROM device_completeness_daily c JOIN devices d ON d.id = c.device_id
    WHERE c.day >= %(start)s AND c.day < %(end)s
    GROUP BY 1
)
SELECT r.*, coalesce(c.received, 0) AS received, coalesce(c.missing, 0) AS missing
FROM r LEFT JOIN c USING (household)
"""

_PROFILE_ROLLUP: LiteralString = """
SELECT extract(hour FROM u.hour AT TIME ZONE %(tz)s)::int AS hour_of_day,
       sum(u.uses)::bigint AS uses, sum(u.water_l) AS water_l
FROM usage_hourly u JOIN households h ON h.ref = u.household_ref
WHERE (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
  AND u.hour >= (%(start)s::date::timestamp AT TIME ZONE %(tz)s)
  AND u.hour < (%(end)s::date::timestamp AT TIME ZONE %(tz)s)
GROUP BY 1 ORDER BY 1
"""

# the same from the per-day profile rollup, when the zone is the rollups' own
_PROFILE_DAILY: LiteralString = """
SELECT hour AS hour_of_day, sum(uses)::bigint AS uses, sum(water_l) AS water_l
FROM usage_profile_daily
WHERE day >= %(start)s AND day < %(end)s
  AND (%(cohort)s::text IS NULL OR cohort = %(cohort)s)
GROUP BY 1 ORDER BY 1
"""

_PROFILE_RAW: LiteralString = """
SELECT extract(hour FROM r.ts AT TIME ZONE %(tz)s)::int AS hour_of_day,
       count(*) FILTER (WHERE r.kind = 'run') AS uses,
       coalesce(sum(r.water_l::float8), 0) AS water_l
FROM readings r JOIN devices d ON d.id = r.device_id JOIN households h ON h.ref = d.household_ref
WHERE (%(cohort)s::text IS NULL OR h.cohort = %(cohort)s)
  AND r.ts >= (%(start)s::date::timestamp AT TIME ZONE %(tz)s)
  AND r.ts < (%(end)s::date::timestamp AT TIME ZONE %(tz)s)
GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True, slots=True)
class HourShare:
    hour: int
    uses: int
    water_l_per_household_day: float
    share_of_uses: float


@dataclass(frozen=True, slots=True)
class Kpis:
    start: date
    end: date
    cohort: str | None
    households_enrolled: int
    households_active: int
    uses_per_household_day_median: float | None
    uses_per_household_day_p25: float | None
    uses_per_household_day_p75: float | None
    uses_per_household_day_mean: float | None
    food_kg_diverted: float
    food_kg_per_household_day: float | None
    water_l_per_household_day: float | None
    energy_wh_per_household_day: float | None
    faults_per_100_uses: float | None
    completeness: float | None
    time_of_day: list[HourShare]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _r(x: Any, digits: int = 3) -> float | None:
    """Rounded, or None for a missing value (pandas gives NaN for the median of nothing)."""
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) else round(f, digits)


def summarise(
    households: pd.DataFrame,
    profile: pd.DataFrame,
    start: date,
    end: date,
    cohort: str | None,
    food_kg_per_use: float,
) -> Kpis:
    """KPIs from one row per enrolled household (days_enrolled, uses, run_s, energy_wh, water_l,
    faults, received, missing) and the hour-of-day profile. Pure: tested on fixed frames.

    Per-household-day figures average over household-days enrolled in the period, so a
    household that joined half-way counts for its own days only."""
    h = households.fillna(0)
    h = h[h["days_enrolled"] > 0]
    days = float(h["days_enrolled"].sum())
    per_day = h["uses"] / h["days_enrolled"]
    uses = float(h["uses"].sum())
    expected = float(h["received"].sum() + h["missing"].sum())
    total_uses = float(profile["uses"].sum()) if len(profile) else 0.0
    shares = [
        HourShare(
            int(hour),
            int(n),
            round(float(water) / days, 4) if days else 0.0,
            round(float(n) / total_uses, 4) if total_uses else 0.0,
        )
        for hour, n, water in zip(
            profile["hour_of_day"].tolist(),
            profile["uses"].tolist(),
            profile["water_l"].tolist(),
            strict=True,
        )
    ]
    return Kpis(
        start=start,
        end=end,
        cohort=cohort,
        households_enrolled=len(h),
        households_active=int((h["uses"] > 0).sum()),
        uses_per_household_day_median=_r(per_day.median()) if len(h) else None,
        uses_per_household_day_p25=_r(per_day.quantile(0.25)) if len(h) else None,
        uses_per_household_day_p75=_r(per_day.quantile(0.75)) if len(h) else None,
        uses_per_household_day_mean=_r(uses / days) if days else None,
        food_kg_diverted=round(uses * food_kg_per_use, 1),
        food_kg_per_household_day=_r(uses * food_kg_per_use / days) if days else None,
        water_l_per_household_day=_r(h["water_l"].sum() / days) if days else None,
        energy_wh_per_household_day=_r(h["energy_wh"].sum() / days) if days else None,
        faults_per_100_uses=_r(100 * h["faults"].sum() / uses) if uses else None,
        completeness=_r(h["received"].sum() / expected, 4) if expected else None,
        time_of_day=shares,
    )


def pilot_kpis(
    conn: Conn,
    start: date,
    end: date,
    *,
    cohort: str | None = None,
    food_kg_per_use: float = 0.22,
    tz: str = "Europe/London",
    source: Source = "rollup",
) -> Kpis:
    """KPIs for local days [start, end) of the whole pilot or one cohort."""
    params = {"start": start, "end": end, "cohort": cohort, "tz": tz}
    with conn.cursor() as cur:
        cur.execute(_ENROLLED, params)
        enrolled = pd.DataFrame(cur.fetchall(), columns=["household", "cohort", "days_enrolled"])
        cur.execute(_FROM_ROLLUP if source == "rollup" else _FROM_RAW, params)
        cols = [c.name for c in cur.description or []]
        usage = pd.DataFrame(cur.fetchall(), columns=cols)
        if source == "raw":
            profile_sql = _PROFILE_RAW
        else:
            profile_sql = _PROFILE_DAILY if tz == "Europe/London" else _PROFILE_ROLLUP
        cur.execute(profile_sql, params)
        profile = pd.DataFrame(cur.fetchall(), columns=["hour_of_day", "uses", "water_l"])
    frame = enrolled.merge(usage, on="household", how="left")
    for c in ("uses", "run_s", "energy_wh", "water_l", "faults", "received", "missing"):
        frame[c] = pd.to_numeric(frame[c]).astype(float).fillna(0.0)
    frame["days_enrolled"] = frame["days_enrolled"].astype(float)
    profile = profile.astype({"uses": float, "water_l": float})
    return summarise(frame, profile, start, end, cohort, food_kg_per_use)
