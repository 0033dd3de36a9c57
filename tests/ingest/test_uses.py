"""Uses from a plug's power (pure, ingest/uses.py): the rules one by one, then whole simulated
days of many households in both plug formats against the model."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.adapters import ADAPTERS
from ingest.uses import Rules, find_uses, increase, plan
from simulator.makers import DayPlan, day_messages
from simulator.model import household_day, make_household
from simulator.params import Params

T0 = datetime(2026, 3, 10, 8, tzinfo=UTC)
RULES = Rules()


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def series(*points: tuple[float, float]) -> list[tuple[datetime, float, float | None]]:
    return [(at(s), w, None) for s, w in points]


def test_a_dip_shorter_than_the_off_delay_is_one_use_and_a_blip_is_none() -> None:
    power = series((0, 0), (10, 800), (15, 20), (17, 790), (25, 0), (40, 900), (41, 0), (60, 0))
    uses, still_open = find_uses(power, RULES, at(60))
    assert still_open is None
    assert [(u.start, u.end) for u in uses] == [(at(10), at(25))]  # the 1 s blip at 40: no use


def test_a_use_is_not_closed_before_its_off_delay_has_passed() -> None:
    power = series((0, 0), (10, 800), (20, 0), (23, 0))
    uses, still_open = find_uses(power, RULES, at(23))
    assert uses == [] and still_open == at(10)


def test_a_use_running_into_silence_ends_at_its_last_report_and_is_flagged() -> None:
    power = series((0, 0), (10, 800), (15, 800), (15 + 3600, 0), (4000, 0))
    uses, _ = find_uses(power, RULES, at(4000))
    assert [(u.start, u.end, u.straddles_gap) for u in uses] == [(at(10), at(15), True)]


def test_a_counter_counts_from_zero_after_a_reset() -> None:
    counters = [(at(0), 100.0), (at(60), 102.0), (at(120), 0.5), (at(180), 1.5)]
    assert increase(counters, 0, 3) == pytest.approx(2.0 + 0.5 + 1.0)


def test_energy_is_the_counters_and_two_uses_in_one_bracket_share_it_by_their_power() -> None:
    power = series((0, 0), (10, 600), (20, 0), (30, 1200), (40, 0), (100, 0))
    counters = [(at(0), 50.0), (at(60), 55.0), (at(100), 55.0)]
    got = plan(power, counters, RULES, resume=at(0))
    assert [u.energy_source for u in got.uses] == ["counter", "counter"]
    assert [u.energy_wh for u in got.uses] == [pytest.approx(5 / 3), pytest.approx(10 / 3)]
    assert got.resume == at(100)


def test_a_use_waits_for_the_counter_report_that_closes_it() -> None:
    power = series((0, 0), (10, 600), (20, 0), (40, 0))
    counters = [(at(0), 50.0)]
    got = plan(power, counters, RULES, resume=at(0))
    assert got.uses == [] and got.resume == at(10)
    # later, the counter reports: the same use, now with its energy
    got = plan(power, [*counters, (at(60), 51.7)], RULES, resume=got.resume)
    assert [(u.start, round(u.energy_wh or 0, 3)) for u in got.uses] == [(at(10), 1.7)]


@pytest.mark.parametrize("kind", ["shelly-gen2", "tasmota"])
def test_simulated_days_give_the_models_uses(kind: str) -> None:
    """Thirty households' days through the adapter and the planner, in passes that resume
    where the last stopped (as the job does), against the model: the same uses, each start
    within the report cadence and energy within 10 %."""
    p = Params()
    family = "shelly" if kind == "shelly-gen2" else "tasmota"
    day = datetime(2026, 3, 10, tzinfo=UTC)
    checked = 0
    for index in range(1, 31):
        h = make_household(index, 11, p)
        msgs, truth = day_messages(kind, h, household_day(h, day.date(), 11, p), day, 11,  # type: ignore[arg-type]
                                   DayPlan(reboot=day + timedelta(hours=3, minutes=1)))  # fmt: skip
        power, counters = [], []
        for m in msgs:
            d = ADAPTERS[family].decode("D", m.subtopic, m.payload)
            power += [(s.ts, s.power_w, s.current_a) for s in d.power]
            counters += [(s.ts, s.total_wh) for s in d.counters]
        power.sort()
        counters.sort()
        uses, resume = [], day - timedelta(hours=1)
        for hour in range(1, 26):  # hourly passes, each seeing what had arrived by then
            cut = day + timedelta(hours=hour)
            got = plan([x for x in power if x[0] <= cut], [c for c in counters if c[0] <= cut],
                       RULES, resume=resume)  # fmt: skip
            uses += got.uses
            resume = got.resume or resume
        expected = [u for u in truth.uses if u.run_s >= RULES.min_on_s]
        assert len(uses) == len(expected), (index, uses, expected)
        for u, model in zip(uses, expected, strict=True):
            assert abs((u.start - model.start).total_seconds()) <= 2.0
            assert u.energy_wh == pytest.approx(model.energy_wh, rel=0.10)
            checked += 1
    assert checked > 60


@pytest.mark.parametrize("kind", ["shelly-gen2", "tasmota", "wmbus"])
def test_a_backfill_of_several_days_keeps_each_counter_running(kind: str, tmp_path: Path) -> None:
    """Days published one after another: a plug's counter and a meter's register never go
    down at midnight (only a reboot or a swap resets them)."""
    import orjson

    from simulator.publisher import FileSink
    from simulator.runner import backfill_makers

    out = tmp_path / "days.jsonl"
    start = datetime(2026, 3, 10, tzinfo=UTC)
    fleet = [make_household(i, 11, Params()) for i in (1, 2)]
    backfill_makers(FileSink(out), "p", fleet, kind, start, start + timedelta(days=3), 11,  # type: ignore[arg-type]
                    Params())  # fmt: skip
    family = {"shelly-gen2": "shelly", "tasmota": "tasmota", "wmbus": "wmbus"}[kind]
    series: dict[str, list[tuple[datetime, float]]] = {}
    for line in out.read_bytes().splitlines():
        msg = orjson.loads(line)
        _, _, device, sub = msg["topic"].split("/", 3)
        body = msg["payload"]  # the file keeps JSON as JSON, other text as a string
        raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
        d = ADAPTERS[family].decode(device, sub, raw)
        series.setdefault(device, []).extend(
            [(c.ts, c.total_wh) for c in d.counters] + [(r.ts, r.total_l) for r in d.meter]
        )
    assert len(series) == 2
    for points in series.values():
        points.sort()
        assert points[-1][0] - points[0][0] > timedelta(days=2)
        assert all(b >= a for (_, a), (_, b) in itertools.pairwise(points))
