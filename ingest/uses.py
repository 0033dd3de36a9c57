"""Uses of a disposer from a metering plug's reports (pure; the job is ingest/derive.py).

A use is a run of power at or above a threshold: it starts at the first report at or above it,
and ends at the first report below it that is not followed by another at or above it within
the off-delay (a dip shorter than that is the same use); a run shorter than the debounce is not
a use. Its energy comes from the plug's cumulative counter, not from the power reports: the
counter's increase between the last counter report before the start and the first after the
end, less the standby draw over the rest of that span, shared between the uses inside it by
their reported power. Where no counter brackets it (a gap), the reports' power is integrated
and the use says so.

Times are the device's own (Shelly's ``params.ts``, Tasmota's ``Time``), so a redelivered or
re-sent message maps to the same report and the same use: a use is keyed by (device, start).
A use is derived only once it is settled — closed, its counter bracket known, no open use in
that bracket — and never again: each pass resumes where the last one stopped.

Nothing is invented across silence: a gap longer than the family's cadence allows is an event,
a use running into one ends at its last report and is flagged, and so is one that starts right
after one. A counter that goes down (reboot, overflow) is a reset event; energy across it counts
from zero.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Rules:
    """How a plug's power becomes uses (settings uses_*; defaults from the simulator's disposer:
    600-900 W running, under 1 W standby, runs of 3-60 s)."""

    threshold_w: float = 100.0
    min_on_s: float = 2.0
    off_delay_s: float = 5.0
    gap_s: float = 180.0  # longer without any report is a gap
    meter_window_s: float = 120.0  # a water-meter bracket longer than this gives no litres


@dataclass(frozen=True, slots=True)
class Use:
    start: datetime
    end: datetime
    peak_w: float
    peak_a: float | None
    sample_wh: float  # the reports' power integrated over the use (step, each report's value)
    straddles_gap: bool = False
    energy_wh: float | None = None
    energy_source: str = "samples"
    water_l: float | None = None

    @property
    def run_s(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # counter_reset | gap
    start: datetime
    end: datetime
    detail: str


@dataclass(slots=True)
class Plan:
    """What one pass found: uses ready to store, events, and where the next pass resumes."""

    uses: list[Use] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    resume: datetime | None = None


Power = tuple[datetime, float, float | None]  # (ts, W, A)
Counter = tuple[datetime, float]  # (ts, Wh) or (ts, litres)


@dataclass(slots=True)
class _Open:
    start: datetime
    last_ts: datetime
    last_w: float
    peak_w: float
    peak_a: float | None
    wh: float = 0.0
    below_since: datetime | None = None
    wh_at_below: float = 0.0
    after_gap: bool = False


def find_uses(
    power: Sequence[Power], rules: Rules, until: datetime
) -> tuple[list[Use], datetime | None]:
    """The closed uses in ``power`` (sorted by time) as of ``until`` (the series' latest report),
    and the start of a use still open (None if none is)."""
    uses: list[Use] = []
    cur: _Open | None = None
    prev_ts: datetime | None = None
    off_delay = timedelta(seconds=rules.off_delay_s)
    gap = timedelta(seconds=rules.gap_s)

    def close(u: _Open, end: datetime, wh: float, flagged: bool) -> None:
        if (end - u.start).total_seconds() >= rules.min_on_s:
            uses.append(Use(u.start, end, u.peak_w, u.peak_a, wh, flagged or u.after_gap))

    for ts, w, amps in power:
        if cur is not None:
            if ts - cur.last_ts > gap:  # silence with the motor on: its end is not known
                end = cur.below_since or cur.last_ts
                close(cur, end, cur.wh_at_below if cur.below_since else cur.wh, True)
                cur = None
            elif cur.below_since is not None and ts - cur.below_since > off_delay:
                close(cur, cur.below_since, cur.wh_at_below, False)
                cur = None
            else:
                cur.wh += cur.last_w * (ts - cur.last_ts).total_seconds() / 3600
        if w >= rules.threshold_w:
            if cur is None:
                after_gap = prev_ts is not None and ts - prev_ts > gap
                cur = _Open(ts, ts, w, w, amps, after_gap=after_gap)
            else:
                cur.below_since = None
                cur.peak_w = max(cur.peak_w, w)
                if amps is not None:
                    cur.peak_a = amps if cur.peak_a is None else max(cur.peak_a, amps)
        elif cur is not None and cur.below_since is None:
            cur.below_since, cur.wh_at_below = ts, cur.wh
        if cur is not None:
            cur.last_ts, cur.last_w = ts, w
        prev_ts = ts
    if cur is not None:
        if cur.below_since is not None and until - cur.below_since > off_delay:
            close(cur, cur.below_since, cur.wh_at_below, False)
            cur = None
        elif cur.below_since is None and until - cur.last_ts > gap:
            close(cur, cur.last_ts, cur.wh, True)
            cur = None
    return uses, None if cur is None else cur.start


def gaps(times: Sequence[datetime], rules: Rules, label: str = "report") -> list[Event]:
    """Every silence longer than the gap rule between consecutive report times (sorted)."""
    gap = timedelta(seconds=rules.gap_s)
    out = []
    for a, b in itertools.pairwise(times):
        if b - a > gap:
            minutes = (b - a).total_seconds() / 60
            out.append(Event("gap", a, b, f"no {label} for {minutes:.0f} min"))
    return out


def resets(counters: Sequence[Counter], unit: str = "Wh") -> list[Event]:
    """Every time a cumulative counter went down (a reboot, an overflow, a meter swapped)."""
    out = []
    for (ta, va), (tb, vb) in itertools.pairwise(counters):
        if vb < va:
            out.append(Event("counter_reset", ta, tb, f"counter went from {va:g} to {vb:g} {unit}"))
    return out


def increase(counters: Sequence[Counter], i: int, j: int) -> float:
    """How much a cumulative counter grew from report ``i`` to report ``j``, counting from zero
    after a reset."""
    total = 0.0
    for k in range(i + 1, j + 1):
        before, now = counters[k - 1][1], counters[k][1]
        total += now - before if now >= before else now
    return total


def _bracket(
    counters: Sequence[Counter], start: datetime, end: datetime, longest: timedelta
) -> tuple[int, int] | None:
    """Indexes of the last counter report before ``start`` (a report at the start itself may
    already count some of the run) and the first at or after ``end``, if they are at most
    ``longest`` apart beyond the span itself (no gap between)."""
    before = [k for k, (t, _) in enumerate(counters) if t < start]
    after = [k for k, (t, _) in enumerate(counters) if t >= end]
    if not before or not after:
        return None
    a, b = before[-1], after[0]
    if counters[b][0] - counters[a][0] > longest + (end - start):
        return None
    return a, b


def plan(
    power: Sequence[Power],
    counters: Sequence[Counter],
    rules: Rules,
    *,
    resume: datetime,
    until: datetime | None = None,
    meter: Sequence[Counter] = (),
) -> Plan:
    """One pass over a plug's reports from before ``resume`` (enough to know the state there)
    up to ``until`` (the latest report the pass may rely on; counter reports after it may
    close a use's bracket): the uses that start at or after ``resume`` and are settled, with
    their energy and litres; gap and reset events; and the next pass's resume point."""
    times = sorted({p[0] for p in power} | {c[0] for c in counters})
    out = Plan()
    if not times:
        out.resume = resume
        return out
    latest = until or times[-1]
    power = [p for p in power if p[0] <= latest]
    times = [t for t in times if t <= latest]
    found, open_start = find_uses(power, rules, latest)
    found = [u for u in found if u.start >= resume]
    below = [w for _, w, _ in power if w < rules.threshold_w]
    baseline = statistics.median(below) if below else 0.0
    gap = timedelta(seconds=rules.gap_s)
    ready: list[Use] = []
    for use in found:
        b = _bracket(counters, use.start, use.end, gap)
        if b is None:
            if latest - use.end < gap:
                break  # its closing counter report may still come
            ready.append(use)  # no counter brackets it: the reports' power it is
            continue
        if open_start is not None and counters[b[1]][0] > open_start:
            break  # a use still open shares its bracket
        ready.append(use)
    ready = _with_energy(ready, counters, baseline, gap)
    out.uses = [_with_water(u, meter, rules) for u in ready]
    deferred = found[len(ready) :]
    if deferred:
        out.resume = deferred[0].start
    elif open_start is not None:
        out.resume = max(open_start, resume)
    else:
        out.resume = max(latest, resume)
    out.events = [e for e in gaps(times, rules) + resets(counters) if e.end > resume - gap]
    return out


def _with_energy(
    uses: list[Use], counters: Sequence[Counter], baseline_w: float, gap: timedelta
) -> list[Use]:
    out = []
    for use in uses:
        b = _bracket(counters, use.start, use.end, gap)
        if b is None:
            out.append(replace(use, energy_wh=use.sample_wh, energy_source="samples"))
            continue
        t0, t1 = counters[b[0]][0], counters[b[1]][0]
        inside = [u for u in uses if u.start >= t0 and u.end <= t1]
        if use not in inside:  # shares its bracket with a use only partly inside it
            inside.append(use)
        running_s = sum(u.run_s for u in inside)
        standby = baseline_w * max(0.0, (t1 - t0).total_seconds() - running_s) / 3600
        measured = max(0.0, increase(counters, b[0], b[1]) - standby)
        weight = sum(u.sample_wh for u in inside) or 1.0
        share = use.sample_wh / weight if len(inside) > 1 else 1.0
        out.append(replace(use, energy_wh=measured * share, energy_source="counter"))
    return out


def _with_water(use: Use, meter: Sequence[Counter], rules: Rules) -> Use:
    b = _bracket(meter, use.start, use.end, timedelta(seconds=rules.meter_window_s))
    if b is None:
        return use
    return replace(use, water_l=increase(meter, b[0], b[1]))
