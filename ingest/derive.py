"""The ``derive_uses`` job: maker devices' stored samples turned into uses and events.

For each plug with reports since its mark, one transaction reads its power and counter samples
(and its household's water-meter reads) from a little before the mark, plans the settled uses
(ingest/uses.py), stores each once — a ``power_uses`` row and the same use as a run reading —
with the gaps and counter resets found, and moves the mark. A water meter's pass stores its
gaps and register resets. Everything is keyed, so a pass run twice, or after a crash between
two devices, stores nothing twice; the mark only saves reading the series again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core import clock
from core.db import Conn
from core.settings import Settings
from ingest import queries as q
from ingest.uses import Event, Plan, Rules, gaps, plan, resets

log = logging.getLogger(__name__)
WINDOW = timedelta(days=1)  # a pass reads at most this much of a device's series at a time


def rules_of(s: Settings) -> Rules:
    return Rules(
        threshold_w=s.uses_threshold_w,
        min_on_s=s.uses_min_on_s,
        off_delay_s=s.uses_off_delay_s,
        gap_s=s.uses_gap_s,
        meter_window_s=s.uses_meter_window_s,
    )


@dataclass(slots=True)
class Derived:
    devices: int = 0
    uses: int = 0
    events: int = 0


def derive_uses(conn: Conn, s: Settings) -> int:
    """One pass over every maker device with new reports; returns the uses stored."""
    rules = rules_of(s)
    done = Derived()
    todo = conn.execute(q.DEVICES_TO_DERIVE).fetchall()
    conn.commit()
    for device, kind, household, mark, last_seen in todo:
        resume = mark or _first_report(conn, str(device))
        while resume is not None:
            with conn.transaction():
                nxt = _pass(conn, str(device), str(kind), str(household), resume, rules, done)
            if nxt <= resume or nxt >= last_seen:
                break
            resume = nxt
        done.devices += 1
    if done.uses or done.events:
        log.info(
            "derived %d uses and %d events of %d devices", done.uses, done.events, done.devices
        )
    return done.uses


def sample_retention(conn: Conn, s: Settings) -> int:
    """Drop the chunks of raw samples older than WASTEPILOT_RAW_RETENTION_DAYS (their uses,
    events and the readings made of them stay); returns how many chunks went."""
    cutoff = clock.now() - timedelta(days=s.raw_retention_days)
    with conn.transaction():
        row = conn.execute(q.DROP_SAMPLE_CHUNKS, (cutoff,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _first_report(conn: Conn, device: str) -> datetime | None:
    row = conn.execute(q.FIRST_REPORT, {"d": device}).fetchone()
    return row[0] if row else None


def _pass(
    conn: Conn,
    device: str,
    kind: str,
    household: str,
    resume: datetime,
    rules: Rules,
    done: Derived,
) -> datetime:
    """One device, from ``resume`` to at most a window later; returns the next resume point."""
    gap = timedelta(seconds=rules.gap_s)
    lookback = gap + timedelta(seconds=rules.off_delay_s + 60)
    a, b = resume - lookback, resume + WINDOW
    if kind == "wmbus":
        power: list[Any] = []
        counters = _series(conn, q.METER_BETWEEN, {"d": device, "a": a, "b": b})
    else:
        power = conn.execute(q.POWER_BETWEEN, {"d": device, "a": a, "b": b}).fetchall()
        # the counter report that closes a use may come a gap after the window
        counters = _series(conn, q.COUNTERS_BETWEEN, {"d": device, "a": a - gap, "b": b + gap})
    inside = [t for t in [*(p[0] for p in power), *(c[0] for c in counters)] if t <= b]
    if not any(t > resume for t in inside):
        # a silence longer than the window: the next pass starts at the next report
        row = conn.execute(q.NEXT_REPORT, {"d": device, "t": resume}).fetchone()
        nxt: datetime = row[0] if row and row[0] is not None else resume
        conn.execute(q.SET_MARK, {"d": device, "to": nxt})
        return nxt
    until = max(inside)
    if kind == "wmbus":
        found = Plan(
            events=gaps([t for t, _ in counters], rules, "telegram") + resets(counters, "L")
        )
        found.events = [e for e in found.events if e.end > resume - gap]
        found.resume = until
    else:
        meter = _series(
            conn, q.HOUSEHOLD_METER_BETWEEN, {"h": household, "a": a - gap, "b": b + gap}
        )
        found = plan(power, counters, rules, resume=resume, until=until, meter=meter)
    for use in found.uses:
        stored = conn.execute(
            q.STORE_USE,
            {
                "d": device,
                "start": use.start,
                "end": use.end,
                "wh": use.energy_wh,
                "source": use.energy_source,
                "litres": use.water_l,
                "peak_w": use.peak_w,
                "gap": use.straddles_gap,
                "run_s": use.run_s,
                "peak_a": use.peak_a,
            },
        ).fetchone()
        done.uses += 1 if stored else 0
    for event in found.events:
        done.events += _store_event(conn, device, event)
    nxt = found.resume or resume
    conn.execute(q.SET_MARK, {"d": device, "to": nxt})
    return nxt


def _series(conn: Conn, query: Any, args: dict[str, Any]) -> list[tuple[datetime, float]]:
    return [(r[0], float(r[1])) for r in conn.execute(query, args)]


def _store_event(conn: Conn, device: str, e: Event) -> int:
    cur = conn.execute(
        q.STORE_EVENT,
        {"d": device, "kind": e.kind, "start": e.start, "end": e.end, "detail": e.detail},
    )
    return cur.rowcount
