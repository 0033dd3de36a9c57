"""Device health: devices that need a visit. Each check lists what it finds now; an anomaly
stays open while found and is resolved when a later check no longer finds it."""

from __future__ import annotations

from typing import Any

import psycopg

from analytics import queries as q
from core import clock
from core.settings import Settings

WINDOW_DAYS = 14


def check_devices(conn: psycopg.Connection[Any], s: Settings) -> int:
    """Run every check, open or refresh what is found, resolve what is gone; returns how many
    anomalies are open afterwards."""
    params = {
        "now": clock.now(),
        "days": WINDOW_DAYS,
        "offline_s": s.offline_after_h * 3600,
        "jam_rate": s.jam_rate_max,
        "water": s.water_per_use_max_l,
    }
    with conn.transaction():
        found = conn.execute(q.ANOMALY_CHECKS, params).fetchall()
        with conn.cursor() as cur:
            cur.executemany(q.OPEN_ANOMALY, found)
        keys = [f"{k}\x1f{d}" for k, d, *_ in found]
        conn.execute(
            q.RESOLVE_GONE_ANOMALIES,
            (keys,),
        )
    return len(found)
