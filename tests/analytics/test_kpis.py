"""KPI arithmetic on fixed frames (pure: no database)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from analytics.kpis import summarise
from analytics.usage import Bucket, rollup_range


def test_kpis_weight_households_by_their_enrolled_days() -> None:
    households = pd.DataFrame(
        {
            "household": ["a", "b", "c", "d"],
            "days_enrolled": [10.0, 5.0, 10.0, 0.0],  # b joined half-way; d left before
            "uses": [40.0, 10.0, 0.0, 99.0],
            "run_s": [480.0, 120.0, 0.0, 0.0],
            "energy_wh": [120.0, 30.0, 0.0, 0.0],
            "water_l": [50.0, 10.0, 0.0, 0.0],
            "faults": [2.0, 0.0, 0.0, 0.0],
            "received": [42.0, 10.0, 0.0, 0.0],
            "missing": [3.0, 0.0, 0.0, 0.0],
        }
    )
    profile = pd.DataFrame({"hour_of_day": [8, 19], "uses": [10.0, 40.0], "water_l": [12.5, 47.5]})
    k = summarise(households, profile, date(2026, 1, 1), date(2026, 1, 11), None, 0.2)
    assert (k.households_enrolled, k.households_active) == (3, 2)
    # per-day uses: a 4.0, b 2.0, c 0.0
    assert (k.uses_per_household_day_median, k.uses_per_household_day_p25,
            k.uses_per_household_day_p75) == (2.0, 1.0, 3.0)  # fmt: skip
    assert k.uses_per_household_day_mean == 2.0  # 50 uses / 25 household-days
    assert k.food_kg_diverted == 10.0
    assert k.food_kg_per_household_day == 0.4
    assert k.water_l_per_household_day == 2.4  # 60 L / 25
    assert k.faults_per_100_uses == 4.0
    assert k.completeness == round(52 / 55, 4)
    assert [(h.hour, h.share_of_uses, h.water_l_per_household_day) for h in k.time_of_day] == [
        (8, 0.2, 0.5), (19, 0.8, 1.9),
    ]  # fmt: skip


def test_no_households_gives_empty_figures_not_errors() -> None:
    empty = pd.DataFrame(columns=["household", "days_enrolled", "uses", "run_s", "energy_wh",
                                  "water_l", "faults", "received", "missing"])  # fmt: skip
    profile = pd.DataFrame(columns=["hour_of_day", "uses", "water_l"])
    k = summarise(empty, profile, date(2026, 1, 1), date(2026, 1, 2), None, 0.2)
    assert (k.households_enrolled, k.uses_per_household_day_median, k.completeness) == (
        0,
        None,
        None,
    )
    assert k.time_of_day == []


def test_rollups_answer_only_whole_hours_up_to_the_watermark() -> None:
    from datetime import UTC, datetime

    t = lambda s: datetime.fromisoformat(s).replace(tzinfo=UTC)  # noqa: E731
    wm = t("2026-05-01T12:34")
    assert rollup_range(t("2026-05-01T00:20"), t("2026-05-02T00:00"), Bucket.H1, wm) == (
        t("2026-05-01T01:00"), t("2026-05-01T12:00"),
    )  # fmt: skip
    assert rollup_range(t("2026-05-01T00:00"), t("2026-05-01T00:30"), Bucket.D1, wm) == (
        t("2026-05-01T00:00"), t("2026-05-01T00:00"),
    )  # fmt: skip
    # 15-minute buckets, or no watermark yet: raw readings only
    assert rollup_range(t("2026-05-01T00:00"), t("2026-05-02T00:00"), Bucket.M15, wm)[0] == rollup_range(
        t("2026-05-01T00:00"), t("2026-05-02T00:00"), Bucket.M15, wm)[1]  # fmt: skip
    lo, hi = rollup_range(t("2026-05-01T00:10"), t("2026-05-01T00:40"), Bucket.H1, None)
    assert lo == hi == t("2026-05-01T00:40")
