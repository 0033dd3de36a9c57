"""Device health: devices that need a visit. Each check lists what it finds now; an anomaly
stays open while found and is resolved when a later check no longer finds it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from analytics import alerts
from analytics import queries as q
from core import clock, display
from core.settings import Settings

WINDOW_DAYS = 14


def check_devices(conn: psycopg.Connection[Any], s: Settings) -> int:
    """Run every check, open or refresh what is found, resolve what is gone; returns how many
    anomalies are open afterwards."""
    now = clock.now()
    params = {
        "now": now,
        "days": WINDOW_DAYS,
        "offline_s": s.offline_after_h * 3600,
        "jam_rate": s.jam_rate_max,
        "water": s.water_per_use_max_l,
    }
    with conn.transaction():
        found = [
            (kind, device, household, value, describe(kind, a, b, seen, now))
            for kind, device, household, value, a, b, seen in conn.execute(q.ANOMALY_CHECKS, params)
        ]
        with conn.cursor() as cur:
            cur.executemany(q.OPEN_ANOMALY, found)
        keys = [f"{k}\x1f{d}" for k, d, *_ in found]
        conn.execute(
            q.RESOLVE_GONE_ANOMALIES,
            (keys,),
        )
        # the same findings move the field-visit alerts on (and queue their e-mails)
        alerts.evaluate(conn, [(k, d, h, detail) for k, d, h, _, detail in found], s, now)
    return len(found)


def describe(
    kind: str, a: float | None, b: float | None, seen: datetime | None, now: datetime
) -> str:
    """Why a device needs a visit, in words an analyst reads (the API's `detail` too)."""
    window = f"in the last {WINDOW_DAYS} days"
    if kind == "offline" and seen is not None:
        return f"Not heard from since {display.when(seen)} ({display.duration(now - seen)})"
    if kind == "jam_rate" and a is not None and b:
        return f"{display.count(int(a), 'jam')} in {display.count(int(b), 'use')} {window}" + (
            f" ({display.percent(a / b)})"
        )
    if kind == "leak" and a is not None:
        return f"{display.count(int(a), 'leak')} {window}"
    if kind == "water_per_use" and a is not None and b:
        return f"{display.quantity(a / b, 'L', 2)} per use {window} (normal: 1 to 1.5 L)"
    return display.words(kind)
