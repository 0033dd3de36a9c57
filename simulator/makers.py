"""What off-the-shelf devices send for a household's day, in their makers' formats (pure).

The household model (simulator/model.py) decides when the disposer runs; here a run becomes the
power a metering plug sees — an inrush, the running power with a little noise, a stall for a
jam, then standby — and the plug reports it as its maker's firmware does:

- **Shelly Gen2** (``shelly-gen2``): a ``NotifyStatus`` on ``events/rpc`` (with the device's
  ``ts``) whenever the power changes, and at each minute tick one with ``aenergy`` (the
  cumulative ``total`` in Wh, ``by_minute`` in mWh, ``minute_ts``); the full status on
  ``status/switch:0`` at each tick; ``online`` ``true``/``false`` (retained).
- **Tasmota** (``tasmota``): ``tele/SENSOR`` with ``ENERGY`` every ``TelePeriod`` and on a
  ``PowerDelta`` change; ``tele/STATE`` with each ``TelePeriod``; ``tele/LWT``.
- **wmbusmeters** (``wmbus``): one telegram JSON every ``telegram_s`` with the meter's
  ``total_m3`` (the household's water: each run's and each leak's litres).

A reboot (the model's power loss, or one asked for) resets the plug's counter to zero; an
offline spell silences the device (its counter still counts). :class:`DayTruth` is what the
model did, for tests to compare what ingest derived against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import orjson

from simulator.model import Event, HouseholdSpec, rng_for

Kind = Literal["shelly-gen2", "tasmota", "wmbus"]
STANDBY_W = 0.4  # a plug and an idle disposer
TICK_S = 60  # Shelly's energy counter ticks once a minute
NOTIFY_S = 5.0  # a Shelly notifies power changes while running about this often
TELE_PERIOD_S = 60  # the TelePeriod docs/devices/tasmota.md asks for
TELEGRAM_S = 16.0  # an OMS water meter's telegram interval (Sensus iPerl: ~16 s)


@dataclass(frozen=True, slots=True)
class MakerMessage:
    """One message at true time ``at``: its topic below the device's root, payload, retain."""

    at: datetime
    subtopic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True, slots=True)
class TrueUse:
    """A motor run as the model made it, with the energy the plug's meter saw."""

    start: datetime
    run_s: float
    energy_wh: float
    water_l: float


@dataclass(slots=True)
class DayTruth:
    uses: list[TrueUse] = field(default_factory=list)  # seen by the plug (online, powered)
    unseen: list[TrueUse] = field(default_factory=list)  # while offline or without power
    energy_wh: float = 0.0  # everything the meter counted that day
    litres: float = 0.0
    reboots: list[datetime] = field(default_factory=list)
    offline: list[tuple[datetime, datetime]] = field(default_factory=list)
    online_changes: list[bool] = field(default_factory=list)  # the last-will/online messages


@dataclass(slots=True)
class _Segment:
    start: float  # seconds from the day's start
    end: float
    watts: float


def _profile(e: Event, t0: float, rng: np.random.Generator, motor_w: float) -> list[_Segment]:
    """The power of one motor event as segments: inrush, running (noisy), or a jam's stall."""
    watts = e.energy_wh * 3600 / e.run_s if e.run_s > 0 else motor_w
    if e.fault == "jam":  # high current, then the overload trips: on, almost nothing drawn
        return [_Segment(t0, t0 + e.run_s, watts)]
    inrush = min(1.0, e.run_s / 4)
    segs = [_Segment(t0, t0 + inrush, watts * 1.6)]
    t = t0 + inrush
    while t < t0 + e.run_s - 1e-9:
        step = min(NOTIFY_S, t0 + e.run_s - t)
        segs.append(_Segment(t, t + step, watts * float(rng.uniform(0.97, 1.03))))
        t += step
    return segs


@dataclass(frozen=True, slots=True)
class DayPlan:
    """Disturbances asked for on top of the model's (tests pin them to known times)."""

    offline: tuple[datetime, datetime] | None = None
    reboot: datetime | None = None
    counter_start_wh: float = 12345.678


def day_messages(
    kind: Kind,
    h: HouseholdSpec,
    events: list[Event],
    day_start: datetime,
    seed: int,
    plan: DayPlan = DayPlan(),
) -> tuple[list[MakerMessage], DayTruth]:
    """A day (``day_start`` + 24 h, UTC) of one household's device of ``kind``, in time order,
    and what truly happened."""
    rng = rng_for(seed, 7, h.index, day_start.toordinal())
    truth = DayTruth(litres=sum(e.water_l for e in events))
    day_s = 86400.0
    segs = _motor_segments(h, events, day_start, rng)
    off = _span(plan.offline, day_start)
    reboot = (plan.reboot - day_start).total_seconds() if plan.reboot else None
    down = (reboot, reboot + 45.0) if reboot is not None else None  # unpowered, then boots

    def silent(t: float) -> bool:
        return bool((off and off[0] <= t < off[1]) or (down and down[0] <= t < down[1]))

    uses_seen: dict[datetime, TrueUse] = {}
    for s, u in segs:
        if down and down[0] <= s.start < down[1]:
            continue  # no power: the disposer does not run either
        if not silent((u.start - day_start).total_seconds()):
            uses_seen[u.start] = u
        elif u not in truth.unseen:
            truth.unseen.append(u)
    truth.uses = sorted(uses_seen.values(), key=lambda u: u.start)
    powered = [(s, u) for s, u in segs if not (down and down[0] <= s.start < down[1])]
    truth.energy_wh = (
        sum((s.end - s.start) * s.watts for s, _ in powered) / 3600
        + STANDBY_W * (day_s - (down[1] - down[0] if down else 0.0)) / 3600
    )
    if kind == "wmbus":
        return _wmbus(h, events, day_start, rng, plan, truth)

    # the cumulative counter at any second: standby plus the segments, reset at the reboot
    def counted(t: float) -> float:
        if down and t >= down[1]:
            base, lo = 0.0, down[1]
        else:
            base, lo = plan.counter_start_wh, 0.0
        hi = min(t, down[0]) if (down and t < down[1]) else t
        e = base + STANDBY_W * max(0.0, hi - lo) / 3600
        for s, _ in powered:
            a, b = max(s.start, lo), min(s.end, hi)
            if b > a:
                e += (b - a) * s.watts / 3600
        return e

    def power_at(t: float) -> float:
        for s, _ in powered:
            if s.start <= t < s.end:
                return s.watts
        return STANDBY_W

    changes = sorted({s.start for s, _ in powered} | {s.end for s, _ in powered})
    out: list[MakerMessage] = []
    at = day_start.timestamp()
    if kind == "shelly-gen2":
        out += _shelly(h, changes, counted, power_at, silent, day_s, at)
        online_topic, on, offp = "online", b"true", b"false"
    else:
        out += _tasmota(h, changes, counted, power_at, silent, day_s, at)
        online_topic, on, offp = "tele/LWT", b"Online", b"Offline"
    out += _last_will(online_topic, on, offp, at, [x for x in (off, down) if x], truth)
    truth.offline += [plan.offline] if plan.offline else []
    truth.reboots += [plan.reboot] if plan.reboot else []
    out.sort(key=lambda m: m.at)
    return out, truth


def _last_will(
    topic: str,
    on: bytes,
    off: bytes,
    day_at: float,
    spans: list[tuple[float, float]],
    truth: DayTruth,
) -> list[MakerMessage]:
    """The connection's last will: online at the day's start, offline when a spell or a reboot
    starts, online again after (retained, as the broker and the device publish them)."""
    out = [MakerMessage(_t(day_at, 0.0), topic, on, retain=True)]
    truth.online_changes.append(True)
    for a, b in spans:
        out.append(MakerMessage(_t(day_at, a), topic, off, retain=True))
        out.append(MakerMessage(_t(day_at, b + 1.5), topic, on, retain=True))
        truth.online_changes += [False, True]
    return out


def _motor_segments(
    h: HouseholdSpec, events: list[Event], day_start: datetime, rng: np.random.Generator
) -> list[tuple[_Segment, TrueUse]]:
    """Each motor run of the day as power segments, with the use it belongs to."""
    segs: list[tuple[_Segment, TrueUse]] = []
    for e in events:
        if not (e.kind == "run" or e.fault in ("jam", "overload")):
            continue
        t0 = (e.at - day_start).total_seconds()
        if not 0 <= t0 < 86400.0 - 120:
            continue
        prof = _profile(e, t0, rng, h.motor_w)
        wh = sum((s.end - s.start) * s.watts for s in prof) / 3600
        use = TrueUse(e.at, e.run_s, wh, e.water_l)
        segs.extend((s, use) for s in prof)
    return segs


def _span(
    span: tuple[datetime, datetime] | None, day_start: datetime
) -> tuple[float, float] | None:
    if span is None:
        return None
    return (span[0] - day_start).total_seconds(), (span[1] - day_start).total_seconds()


def _t(day_at: float, s: float) -> datetime:
    return datetime.fromtimestamp(day_at + s, UTC)


def _shelly(
    h: HouseholdSpec, changes: list[float], counted: Any, power_at: Any, silent: Any,
    day_s: float, at: float,
) -> list[MakerMessage]:  # fmt: skip
    src = f"shellyplusplugs-{h.index:012x}"
    out = []

    def frame(t: float, comp: dict[str, Any], method: str = "NotifyStatus") -> MakerMessage:
        body = {"src": src, "dst": f"{src}/events", "method": method,
                "params": {"ts": round(at + t, 2), "switch:0": {"id": 0, **comp}}}  # fmt: skip
        return MakerMessage(_t(at, t), "events/rpc", orjson.dumps(body))

    for t in changes:
        if silent(t):
            continue
        w = power_at(t)
        out.append(frame(t, {"apower": round(w, 1), "current": round(w / 230.0, 3)}))
    for minute in range(0, int(day_s), TICK_S):
        t = float(minute)
        if silent(t):
            continue
        total = counted(t + 0.02)
        by_minute = [round((total - counted(max(0.0, t - 60))) * 1000, 3), 0.0, 0.0]
        aenergy = {"total": round(total, 3), "by_minute": by_minute,
                   "minute_ts": int(at + t) - 60}  # fmt: skip
        w = power_at(t)
        out.append(frame(t + 0.02, {"apower": round(w, 1), "aenergy": aenergy}))
        full = {"id": 0, "source": "init", "output": True, "apower": round(w, 1),
                "voltage": 230.4, "current": round(w / 230.0, 3), "aenergy": aenergy,
                "temperature": {"tC": 31.2, "tF": 88.2}}  # fmt: skip
        out.append(MakerMessage(_t(at, t + 0.03), "status/switch:0", orjson.dumps(full)))
    return out


def _tasmota(
    h: HouseholdSpec, changes: list[float], counted: Any, power_at: Any, silent: Any,
    day_s: float, at: float,
) -> list[MakerMessage]:  # fmt: skip
    out = []

    def sensor(t: float) -> MakerMessage:
        whole = math.floor(t)  # Tasmota's Time has whole seconds
        stamp = _t(at, whole).strftime("%Y-%m-%dT%H:%M:%S+00:00")  # SetOption52 1
        w = power_at(t)
        energy = {"TotalStartTime": "2024-01-01T00:00:00", "Total": round(counted(whole) / 1000, 5),
                  "Yesterday": 0.012, "Today": 0.004, "Period": 0, "Power": round(w),
                  "ApparentPower": round(w * 1.02), "ReactivePower": round(w * 0.2),
                  "Factor": 0.98, "Voltage": 231, "Current": round(w / 231.0, 3)}  # fmt: skip
        body = {"Time": stamp, "ENERGY": energy}
        return MakerMessage(_t(at, t), "tele/SENSOR", orjson.dumps(body))

    # PowerDelta: a report on a change of power, TelePeriod: one a minute; Tasmota's energy
    # loop runs once a second, so at most one report a second (the power at its end)
    seconds = {math.ceil(t) for t in changes if not silent(t)}
    seconds |= {tick for tick in range(0, int(day_s), TELE_PERIOD_S) if not silent(float(tick))}
    out += [sensor(float(t)) for t in sorted(seconds)]
    for tick in range(0, int(day_s), TELE_PERIOD_S):
        if silent(float(tick)):
            continue
        state = {"Time": _t(at, tick).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                 "Uptime": "0T01:00:00", "UptimeSec": 3600 + tick, "POWER": "ON",
                 "Wifi": {"AP": 1, "SSId": "home", "RSSI": 70, "Signal": -65}}  # fmt: skip
        out.append(MakerMessage(_t(at, tick + 0.01), "tele/STATE", orjson.dumps(state)))
    return out


def _wmbus(
    h: HouseholdSpec,
    events: list[Event],
    day_start: datetime,
    rng: np.random.Generator,
    plan: DayPlan,
    truth: DayTruth,
) -> tuple[list[MakerMessage], DayTruth]:
    """A water meter's telegrams: the register counts every run's and leak's litres (a leak
    spread over ten minutes); a reboot here is the meter swapped (its register starts again)."""
    flows: list[tuple[float, float, float]] = []  # (start, end, litres)
    for e in events:
        t0 = (e.at - day_start).total_seconds()
        length = e.run_s if e.run_s > 0 else 600.0
        flows.append((t0, t0 + length, e.water_l))
    swap = (plan.reboot - day_start).total_seconds() if plan.reboot else None
    off = _span(plan.offline, day_start)
    start_l = plan.counter_start_wh  # the register at midnight (litres)

    def register(t: float) -> float:
        base, lo = (0.0, swap) if swap is not None and t >= swap else (start_l, 0.0)
        litres = base
        for a, b, v in flows:
            if b <= lo or a >= t:
                continue
            frac = (min(b, t) - max(a, lo)) / (b - a) if b > a else 1.0
            litres += v * max(0.0, frac)
        return litres

    meter_id = f"{33000000 + h.index:08d}"
    out = []
    t = float(int(rng.integers(0, int(TELEGRAM_S))))  # telegrams carry whole seconds
    while t < 86400.0:
        if not (off and off[0] <= t < off[1]):
            stamp = _t(day_start.timestamp(), t).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = {"media": "water", "meter": "iperl", "name": f"home{h.index}",
                    "id": meter_id, "total_m3": round(register(t) / 1000, 4), "max_flow_m3h": 0,
                    "timestamp": stamp}  # fmt: skip
            # the telegram's timestamp is whole seconds: the register at that second
            out.append(MakerMessage(_t(day_start.timestamp(), t), meter_id, orjson.dumps(body)))
        t += TELEGRAM_S
    if plan.offline:
        truth.offline.append(plan.offline)
    if plan.reboot:
        truth.reboots.append(plan.reboot)
    truth.uses = []
    return out, truth
