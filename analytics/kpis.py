"""Pilot KPIs for a period: SQL aggregates per household (from rollups, or from raw readings for
comparison), then pandas on that small frame — one row per household, never raw readings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg

from analytics import queries as q
from core import clock
from core.db import Conn

# current: the rollups and the readings received since (true at once, the default); rollup:
# the rollups alone (as of their watermark); raw: the readings alone (the benchmark's comparison)
Source = Literal["current", "rollup", "raw"]
LATE_WINDOW = timedelta(hours=168)  # the usage series' and the rollup job's default
NEVER = datetime.min.replace(tzinfo=UTC)


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
    as_of: datetime | None = None  # the readings received up to this instant are counted

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


def _current(
    cur: psycopg.Cursor[Any], params: dict[str, Any], t0: datetime, late_from: datetime, tz: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-household figures and the hour profile from the rollups and the readings received
    since their watermark; again if a refresh moved the watermark in between (at most thrice,
    then from the readings alone: never a reading counted twice)."""
    london = tz == "Europe/London"
    sql_profile = q.KPI_PROFILE_CURRENT_DAILY if london else q.KPI_PROFILE_CURRENT_HOURLY
    for attempt in range(4):
        row = cur.execute(q.USAGE_WATERMARK).fetchone()
        wm: datetime | None = row[0] if row and attempt < 3 else None
        p = {
            **params,
            "t0": t0,
            "use_rollups": wm is not None,
            "wm": wm or NEVER,
            "fresh_from": max(t0, late_from) if wm else t0,
        }
        fresh = cur.execute(q.KPI_OLDEST_FRESH, p).fetchone() if wm else None
        oldest = fresh[0] if fresh and fresh[0] else None
        first = params["start"]
        if wm is not None:
            first = max(first, oldest.astimezone(clock.LONDON).date()) if oldest else params["end"]
        # the rollups' completeness counts the days before the first with fresh readings
        p["fresh_bound"] = max(params["start"], min(params["end"], first))
        p["fresh_inside"] = params["start"] < p["fresh_bound"] < params["end"]
        p["fresh_day_from"] = datetime.combine(first, time(), clock.LONDON)
        cur.execute(q.KPI_HOUSEHOLDS_CURRENT, p)
        names = [c.name for c in cur.description or []]
        rows = cur.fetchall()  # each row ends with the watermark its statement saw
        usage = pd.DataFrame([r[:-1] for r in rows], columns=names[:-1])
        cur.execute(sql_profile, p)
        hours = cur.fetchall()
        profile = pd.DataFrame([r[:-1] for r in hours], columns=["hour_of_day", "uses", "water_l"])
        seen = {r[-1] for r in rows} | {r[-1] for r in hours}
        if wm is None or seen <= {wm}:
            return usage, profile
    raise AssertionError("unreachable")  # pragma: no cover  (the fourth pass uses no rollups)


def pilot_kpis(
    conn: Conn,
    start: date,
    end: date,
    *,
    cohort: str | None = None,
    food_kg_per_use: float = 0.22,
    tz: str = "Europe/London",
    source: Source = "current",
    late_window: timedelta = LATE_WINDOW,
) -> Kpis:
    """KPIs for local days [start, end) of the whole pilot or one cohort."""
    now = clock.now()
    zone = ZoneInfo(tz)
    t0 = datetime.combine(start, time(), zone)
    t1 = datetime.combine(end, time(), zone)
    params: dict[str, Any] = {"start": start, "end": end, "cohort": cohort, "tz": tz, "t1": t1}
    with conn.cursor() as cur:
        cur.execute(q.KPI_ENROLLED, params)
        enrolled = pd.DataFrame(cur.fetchall(), columns=["household", "cohort", "days_enrolled"])
        if source == "current":
            usage, profile = _current(cur, params, t0, now - late_window, tz)
        else:
            cur.execute(
                q.KPI_HOUSEHOLDS_ROLLUP if source == "rollup" else q.KPI_HOUSEHOLDS_RAW, params
            )
            usage = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description or []])
            if source == "raw":
                cur.execute(q.KPI_PROFILE_RAW, params)
            else:
                london = tz == "Europe/London"
                cur.execute(q.KPI_PROFILE_DAILY if london else q.KPI_PROFILE_HOURLY, params)
            profile = pd.DataFrame(cur.fetchall(), columns=["hour_of_day", "uses", "water_l"])
        watermark = None
        if source == "rollup":
            row = cur.execute(q.USAGE_WATERMARK).fetchone()
            watermark = row[0] if row else None
    profile = profile[["hour_of_day", "uses", "water_l"]].astype({"uses": float, "water_l": float})
    frame = enrolled.merge(usage, on="household", how="left")
    for c in ("uses", "run_s", "energy_wh", "water_l", "faults", "received", "missing"):
        frame[c] = pd.to_numeric(frame[c]).astype(float).fillna(0.0)
    frame["days_enrolled"] = frame["days_enrolled"].astype(float)
    kpis = summarise(frame, profile, start, end, cohort, food_kg_per_use)
    return replace(kpis, as_of=watermark if source == "rollup" else now)
