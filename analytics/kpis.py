"""Pilot KPIs for a period: SQL aggregates per household (from rollups, or from raw readings for
comparison), then pandas on that small frame — one row per household, never raw readings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pandas as pd
import psycopg

from analytics import queries as q
from core import clock

Conn = psycopg.Connection[Any]
# current: the rollups and the readings received since (true at once, the default); rollup:
# the rollups alone (as of their watermark); raw: the readings alone (the benchmark's comparison)
Source = Literal["current", "rollup", "raw"]
LATE_WINDOW = timedelta(hours=168)  # the usage series' and the rollup job's default


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
    row = conn.execute(q.USAGE_WATERMARK).fetchone()
    watermark: datetime | None = row[0] if row else None
    now = clock.now()
    params: dict[str, Any] = {
        "start": start,
        "end": end,
        "cohort": cohort,
        "tz": tz,
        "watermark": watermark or datetime.min.replace(tzinfo=UTC),
        # as the usage series: readings stamped before the late window reach the rollups only
        # by a rebuild (and looking for them would scan every chunk of the period)
        "late_from": now - late_window if watermark else datetime.min.replace(tzinfo=UTC),
    }
    params["fresh_day"] = start
    if watermark:
        row = conn.execute(q.KPI_OLDEST_FRESH, params).fetchone()
        oldest = min(watermark, row[0]) if row and row[0] else watermark
        params["fresh_day"] = max(start, oldest.astimezone(clock.LONDON).date())
    households_sql = {
        "current": q.KPI_HOUSEHOLDS_CURRENT,
        "rollup": q.KPI_HOUSEHOLDS_ROLLUP,
        "raw": q.KPI_HOUSEHOLDS_RAW,
    }[source]
    rollup_profile = q.KPI_PROFILE_DAILY if tz == "Europe/London" else q.KPI_PROFILE_HOURLY
    with conn.cursor() as cur:
        cur.execute(q.KPI_ENROLLED, params)
        enrolled = pd.DataFrame(cur.fetchall(), columns=["household", "cohort", "days_enrolled"])
        cur.execute(households_sql, params)
        cols = [c.name for c in cur.description or []]
        usage = pd.DataFrame(cur.fetchall(), columns=cols)
        rows = []
        for sql in {
            "current": [rollup_profile, q.KPI_PROFILE_FRESH],
            "rollup": [rollup_profile],
            "raw": [q.KPI_PROFILE_RAW],
        }[source]:
            rows += cur.execute(sql, params).fetchall()
    profile = pd.DataFrame(rows, columns=["hour_of_day", "uses", "water_l"])
    profile = (
        profile.astype({"uses": float, "water_l": float})
        .groupby("hour_of_day", as_index=False)
        .sum()
        .sort_values("hour_of_day")
    )
    frame = enrolled.merge(usage, on="household", how="left")
    for c in ("uses", "run_s", "energy_wh", "water_l", "faults", "received", "missing"):
        frame[c] = pd.to_numeric(frame[c]).astype(float).fillna(0.0)
    frame["days_enrolled"] = frame["days_enrolled"].astype(float)
    kpis = summarise(frame, profile, start, end, cohort, food_kg_per_use)
    return replace(kpis, as_of=watermark if source == "rollup" else now)
