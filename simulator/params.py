"""The simulator's constants, in one place. Each cites its row of
``shared/domain/fwd-parameters.md`` ([S] official, [W] secondary, [E] derived estimate); every
one can be overridden (``Params(...)`` or ``wastepilot simulate --param name=value``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True, slots=True)
class Params:
    # "uses per household per day: 3-4 (Poisson-like; mean ~3.5)" [W]
    uses_per_day: float = 3.5
    # spread of households' own rates around that mean (log-normal sigma) [E]
    household_rate_sigma: float = 0.25
    # "run time per use: 10-15 s (median ~12 s)" [W]
    run_s_median: float = 12.0
    run_s_sigma: float = 0.22
    # "motor draw while running ~400-900 W"; "energy per use ~3 Wh", "~4 kWh/yr" [W]/[E]:
    # nominal motor draw per device drawn from this range
    motor_w_min: float = 600.0
    motor_w_max: float = 900.0
    # mains voltage and start-up current over running current, for peak_a [E]
    mains_v: float = 230.0
    inrush_factor: float = 1.6
    # "cold-water flow while grinding ~5.7 L/min" [W]; "water per use ~1-1.5 L" [E]
    flow_l_per_min: float = 5.7
    # "food waste per use ~0.15-0.3 kg" [E] (not on the wire; analytics estimates it)
    food_kg_per_use: float = 0.22
    # "time of day: peaks after meals 07-09, 12-14, 17:30-20:30 (evening ~half of all uses);
    # later at weekends" [E]: shares of uses per window, the rest spread over 06-23
    share_breakfast: float = 0.18
    share_lunch: float = 0.17
    share_evening: float = 0.52
    weekend_shift_h: float = 1.0
    # holidays away: spells per year and their length in days [E]
    away_spells_per_year: float = 2.0
    away_days: int = 7
    # faults, per use [E] ("a jam shows as high current at start, then the overload trips")
    jam_rate: float = 0.004
    overload_rate: float = 0.001
    # leaks and power losses, per device per day [E]
    leak_rate_per_day: float = 0.002
    power_loss_rate_per_day: float = 0.002
    # readings a device numbers but loses before sending (a restart clears its send buffer),
    # per device per day, 1-3 at a time: seq gaps, what data completeness measures [E]
    readings_lost_rate_per_day: float = 0.01
    # offline spells per device per day and their length in hours; readings are buffered and
    # sent as one array when back [E]
    offline_rate_per_day: float = 0.03
    offline_hours_max: float = 12.0
    # chance that a message is sent again (a device that missed the PUBACK) [E]
    resend_rate: float = 0.003
    # device clock skew, standard deviation in seconds [E]
    clock_skew_s: float = 2.0
    # heartbeat period, seconds
    heartbeat_s: float = 300.0

    def with_overrides(self, items: dict[str, str]) -> Params:
        """A copy with ``name=value`` overrides (from the command line); unknown names refused."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, float | int] = {}
        for name, value in items.items():
            if name not in known:
                raise ValueError(
                    f"unknown simulator parameter {name!r}; known: {', '.join(sorted(known))}"
                )
            changes[name] = int(value) if known[name].type == "int" else float(value)
        return replace(self, **changes)  # type: ignore[arg-type]
