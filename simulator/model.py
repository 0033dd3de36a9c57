"""The household and disposer model (pure): who lives where, when they use the disposer, and
what the meter sees. Deterministic: the same seed, household and day give the same events.

Figures come from ``simulator/params.py`` (which cites the shared table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import numpy as np

from core.clock import LONDON
from simulator.params import Params

# UK household sizes 1..5+ (ONS families and households, rounded) [S]
OCCUPANT_WEIGHTS = (0.29, 0.35, 0.15, 0.14, 0.07)
COHORTS = ("A", "B", "C")
POSTCODE_DISTRICTS = ("SY1", "SY2", "SY3", "TF1", "TF2", "WV16", "SY8", "TF9")


@dataclass(frozen=True, slots=True)
class HouseholdSpec:
    index: int
    ref: str
    device_id: str
    occupants: int
    cohort: str
    postcode_district: str
    rate: float  # mean uses per day
    motor_w: float
    flow_l_per_min: float
    skew_s: float
    away_start: int  # day of year the first holiday starts (second is half a year later)


@dataclass(frozen=True, slots=True)
class Event:
    """Something the meter saw, at true (not device-clock) time."""

    at: datetime
    kind: Literal["run", "fault"]
    run_s: float
    energy_wh: float
    water_l: float
    peak_a: float
    fault: Literal["jam", "overload", "leak", "power"] | None = None


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, *keys])


def household_ref(index: int) -> str:
    return f"SIM-{index:06d}"


def device_id(index: int) -> str:
    return f"FWD-{index:06d}"


def make_household(index: int, seed: int, p: Params) -> HouseholdSpec:
    """Household ``index`` of the fleet drawn from ``seed``."""
    rng = rng_for(seed, 0, index)
    occupants = int(rng.choice(np.arange(1, 6), p=np.array(OCCUPANT_WEIGHTS)))
    sigma = p.household_rate_sigma
    # mean-preserving log-normal spread of households around the published mean
    rate = p.uses_per_day * float(np.exp(rng.normal(0, sigma) - sigma**2 / 2))
    return HouseholdSpec(
        index=index,
        ref=household_ref(index),
        device_id=device_id(index),
        occupants=occupants,
        cohort=COHORTS[index % len(COHORTS)],
        postcode_district=POSTCODE_DISTRICTS[int(rng.integers(len(POSTCODE_DISTRICTS)))],
        rate=rate,
        motor_w=float(rng.uniform(p.motor_w_min, p.motor_w_max)),
        flow_l_per_min=p.flow_l_per_min * float(rng.uniform(0.9, 1.1)),
        skew_s=float(rng.normal(0, p.clock_skew_s)),
        away_start=int(rng.integers(1, 183)),
    )


def make_fleet(count: int, seed: int, p: Params, first: int = 1) -> list[HouseholdSpec]:
    return [make_household(i, seed, p) for i in range(first, first + count)]


def is_away(h: HouseholdSpec, day: date, p: Params) -> bool:
    if p.away_spells_per_year <= 0:
        return False
    doy = day.timetuple().tm_yday
    starts = [h.away_start, h.away_start + 182][: max(1, round(p.away_spells_per_year))]
    return any(s <= doy < s + p.away_days for s in starts)


def _time_of_use(rng: np.random.Generator, p: Params, weekend: bool) -> float:
    """Local hour of day (float) of one use: after-meal peaks, later at weekends."""
    shift = p.weekend_shift_h if weekend else 0.0
    u = rng.random()
    if u < p.share_breakfast:
        return 7.0 + shift + rng.random() * 2.0
    u -= p.share_breakfast
    if u < p.share_lunch:
        return 12.0 + shift / 2 + rng.random() * 2.0
    u -= p.share_lunch
    if u < p.share_evening:
        return 17.5 + shift / 2 + rng.random() * 3.0
    return 6.0 + rng.random() * 17.0


def _local(day: date, hour: float) -> datetime:
    hour = min(hour, 23.9999)
    base = datetime.combine(day, time(0), tzinfo=LONDON)
    # wall-clock hours: adding a timedelta to an aware datetime keeps the wall clock in zoneinfo
    wall = base + timedelta(hours=hour)
    return wall.astimezone(UTC)


def household_day(h: HouseholdSpec, day: date, seed: int, p: Params) -> list[Event]:
    """The events of one household on one local day, in time order."""
    rng = rng_for(seed, 1, h.index, day.toordinal())
    if is_away(h, day, p):
        return []
    weekend = day.weekday() >= 5
    events: list[Event] = []
    for _ in range(int(rng.poisson(h.rate))):
        at = _local(day, _time_of_use(rng, p, weekend))
        u = rng.random()
        watts = h.motor_w * float(rng.uniform(0.95, 1.05))
        if u < p.jam_rate:
            # high current at start, then the thermal overload trips: output on, ~0 W
            run_s = float(rng.uniform(1.0, 3.0))
            events.append(
                Event(
                    at,
                    "fault",
                    run_s,
                    watts * run_s / 3600,
                    0.1,
                    watts / p.mains_v * p.inrush_factor * 3,
                    "jam",
                )
            )
            continue
        if u < p.jam_rate + p.overload_rate:
            run_s = float(rng.uniform(20.0, 40.0))
            events.append(
                Event(
                    at,
                    "fault",
                    run_s,
                    watts * 1.4 * run_s / 3600,
                    h.flow_l_per_min * run_s / 60,
                    watts * 1.4 / p.mains_v,
                    "overload",
                )
            )
            continue
        run_s = float(np.clip(rng.lognormal(np.log(p.run_s_median), p.run_s_sigma), 3.0, 60.0))
        events.append(
            Event(
                at,
                "run",
                run_s,
                energy_wh=watts * run_s / 3600,
                water_l=h.flow_l_per_min * run_s / 60,
                peak_a=watts / p.mains_v * p.inrush_factor,
            )
        )
    if rng.random() < p.leak_rate_per_day:
        # water through the unit without the motor
        events.append(
            Event(
                _local(day, float(rng.uniform(0, 24))),
                "fault",
                0.0,
                0.0,
                float(rng.uniform(0.5, 5.0)),
                0.0,
                "leak",
            )
        )
    if rng.random() < p.power_loss_rate_per_day:
        events.append(
            Event(_local(day, float(rng.uniform(0, 24))), "fault", 0.0, 0.0, 0.0, 0.0, "power")
        )
    events.sort(key=lambda e: e.at)
    return events


def offline_spell(
    h: HouseholdSpec, day: date, seed: int, p: Params
) -> tuple[datetime, datetime] | None:
    """When the device is offline that day, if it is (its readings wait and go as one array)."""
    rng = rng_for(seed, 2, h.index, day.toordinal())
    if rng.random() >= p.offline_rate_per_day:
        return None
    start = _local(day, float(rng.uniform(0, 24)))
    return start, start + timedelta(hours=float(rng.uniform(0.5, p.offline_hours_max)))


def lost_readings(h: HouseholdSpec, day: date, seed: int, p: Params, n_events: int) -> range:
    """Which of the day's events the device numbers but never sends (empty on most days)."""
    rng = rng_for(seed, 4, h.index, day.toordinal())
    if n_events == 0 or rng.random() >= p.readings_lost_rate_per_day:
        return range(0)
    first = int(rng.integers(0, n_events))
    return range(first, min(n_events, first + int(rng.integers(1, 4))))


def local_days(start: datetime, end: datetime) -> list[date]:
    """The local (Europe/London) days touching [start, end)."""
    d = start.astimezone(LONDON).date()
    last = (end - timedelta(microseconds=1)).astimezone(LONDON).date()
    out = []
    while d <= last:
        out.append(d)
        d += timedelta(days=1)
    return out
