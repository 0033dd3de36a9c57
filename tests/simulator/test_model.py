"""The household model against the published figures (pure; shared/domain/fwd-parameters.md)."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from simulator.model import LONDON, household_day, make_fleet
from simulator.params import Params
from simulator.publisher import FileSink
from simulator.runner import SeqStore, backfill, period_messages

P = Params()


@pytest.fixture(scope="module")
def month() -> list[tuple[int, list[object]]]:
    """30 days of 200 households: (household index, events of a day) per household-day."""
    fleet = make_fleet(200, seed=7, p=P)
    start = date(2026, 3, 2)
    return [
        (h.index, household_day(h, start + timedelta(days=d), 7, P))
        for h in fleet
        for d in range(30)
    ]


def test_uses_per_household_per_day_match_the_published_mean(
    month: list[tuple[int, list[object]]],
) -> None:
    uses = [sum(1 for e in ev if e.kind == "run") for _, ev in month]  # type: ignore[attr-defined]
    mean = statistics.fmean(uses)
    # "3-4 uses per household per day (mean ~3.5)"; holidays away pull it down a little
    assert 3.0 <= mean <= 4.0, mean


def test_run_time_energy_and_water_per_use(month: list[tuple[int, list[object]]]) -> None:
    runs = [e for _, ev in month for e in ev if e.kind == "run"]  # type: ignore[attr-defined]
    run_s = statistics.median(e.run_s for e in runs)  # type: ignore[attr-defined]
    wh = statistics.fmean(e.energy_wh for e in runs)  # type: ignore[attr-defined]
    litres = statistics.fmean(e.water_l for e in runs)  # type: ignore[attr-defined]
    assert 10 <= run_s <= 15, run_s  # "10-15 s (median ~12 s)"
    assert 1.5 <= wh <= 4.0, wh  # "~3 Wh per use" [E], from 400-900 W motors
    assert 1.0 <= litres <= 1.5, litres  # "~1-1.5 L grinding"
    watts = [e.energy_wh * 3600 / e.run_s for e in runs]  # type: ignore[attr-defined]
    assert min(watts) >= 400 and max(watts) <= 950  # "motor draw ~400-900 W"


def test_daily_water_and_yearly_energy(month: list[tuple[int, list[object]]]) -> None:
    per_day_l = statistics.fmean(sum(e.water_l for e in ev) for _, ev in month)  # type: ignore[attr-defined]
    per_day_wh = statistics.fmean(sum(e.energy_wh for e in ev) for _, ev in month)  # type: ignore[attr-defined]
    assert 3.0 <= per_day_l <= 6.0, per_day_l  # "3-6 L per household per day"
    assert 2.5 <= per_day_wh * 365 / 1000 <= 5.0  # "~4 kWh per household per year"


def test_about_half_of_uses_fall_in_the_evening_peak(month: list[tuple[int, list[object]]]) -> None:
    runs = [e for _, ev in month for e in ev if e.kind == "run"]  # type: ignore[attr-defined]
    local = [e.at.astimezone(LONDON) for e in runs]  # type: ignore[attr-defined]
    evening = sum(1 for t in local if (17, 30) <= (t.hour, t.minute) < (21, 30))
    assert 0.4 <= evening / len(local) <= 0.6  # "evening ~half of all uses" (later at weekends)
    breakfast = sum(1 for t in local if 7 <= t.hour < 10)
    assert breakfast / len(local) > 0.1


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    fleet = make_fleet(20, seed=3, p=P)
    end = datetime(2026, 6, 10, tzinfo=UTC)
    outs = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.jsonl"
        backfill(
            FileSink(path),
            "wastepilot/v1",
            fleet,
            end - timedelta(days=5),
            end,
            3,
            P,
            SeqStore(None),
        )
        outs.append(path.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 10_000
    other = tmp_path / "c.jsonl"
    backfill(
        FileSink(other),
        "wastepilot/v1",
        make_fleet(20, seed=4, p=P),
        end - timedelta(days=5),
        end,
        4,
        P,
        SeqStore(None),
    )
    assert other.read_bytes() != outs[0]
    first = orjson.loads(outs[0].splitlines()[0])
    assert first["topic"].startswith("wastepilot/v1/devices/FWD-") and first["payload"]["v"] == 1


def test_seq_is_per_device_increasing_and_backlogs_go_as_arrays() -> None:
    p = Params(offline_rate_per_day=0.5, resend_rate=0.05)
    fleet = make_fleet(10, seed=5, p=p)
    end = datetime(2026, 6, 10, tzinfo=UTC)
    msgs = list(period_messages(fleet, end - timedelta(days=10), end, 5, p, SeqStore(None)))
    arrays = [m for m in msgs if isinstance(m.body, list)]
    assert arrays, "offline spells produced no backlog arrays"
    assert all(1 <= len(m.body) <= 1000 for m in arrays)
    resends = [m for m in msgs if m.resend]
    assert resends
    seen: dict[str, list[int]] = {}
    for m in msgs:
        if m.resend:
            continue
        for r in m.body if isinstance(m.body, list) else [m.body]:
            seen.setdefault(r["device_id"], []).append(r["seq"])
    for seqs in seen.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))  # no seq lost or repeated


def test_parameters_are_configurable_and_checked() -> None:
    assert Params().with_overrides({"uses_per_day": "5"}).uses_per_day == 5.0
    with pytest.raises(ValueError, match="unknown simulator parameter"):
        Params().with_overrides({"usage": "5"})


def test_backfill_and_live_follow_the_pilot_clock(awkward_now: datetime) -> None:
    """At each awkward instant (core.clock): a day's backfill ends at the instant and passes
    ingest's checks (nothing "in the future"), households away on holiday are silent, and live
    mode carries on from the instant."""
    from core.settings import Settings
    from ingest.validate import Limits, check_message
    from simulator.model import is_away
    from simulator.runner import live

    fleet = make_fleet(20, seed=1, p=P)
    msgs = list(period_messages(fleet, awkward_now - timedelta(days=1), awkward_now, 1, P,
                                SeqStore(None)))  # fmt: skip
    limits = Limits.from_settings(Settings(), prefix="wastepilot/v1")
    senders = set()
    for m in msgs:
        out = check_message(f"wastepilot/v1/devices/{m.device_id}/{m.channel}",
                            orjson.dumps(m.body), limits)  # fmt: skip
        assert out.rejects == [], (m, out.rejects)
        assert awkward_now - timedelta(days=1) <= m.due <= awkward_now
        if out.readings:
            senders.add(m.device_id)
    day = awkward_now.astimezone(LONDON).date()
    away = {h.device_id for h in fleet if is_away(h, day, P)}
    assert senders and not senders & away
    if awkward_now.month == 5:  # the holiday instant: the fleet's first household is away
        assert "FWD-000001" in away

    class Collect:
        def __init__(self) -> None:
            self.bodies: list[dict[str, object]] = []

        def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
            body = orjson.loads(payload)
            self.bodies.extend(body if isinstance(body, list) else [body])

        def close(self, timeout: float = 30.0) -> int:
            return 0

    import threading

    sink, stop = Collect(), threading.Event()
    threading.Timer(1.5, stop.set).start()
    live(sink, "wastepilot/v1", fleet, 12 * 3600.0, 1, P, SeqStore(None), stop)
    stamps = [datetime.fromisoformat(str(b["ts"])) for b in sink.bodies if "seq" in b]
    assert stamps, "live mode sent no reading in 18 simulated hours"
    skew = timedelta(seconds=5 * P.clock_skew_s + 1)
    assert min(stamps) >= awkward_now - skew
    assert max(stamps) <= awkward_now + timedelta(hours=20) + skew
