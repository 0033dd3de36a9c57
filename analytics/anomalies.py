"""Device health: devices that need a visit. Each check lists what it finds now; an anomaly
stays open while found and is resolved when a later check no longer finds it."""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg

from core.settings import Settings

WINDOW_DAYS = 14

# kind, device, household, value, detail
_CHECKS: LiteralString = """
WITH hh AS (  -- per household over the window, from the daily rollups
    SELECT household_ref, sum(uses) AS uses, sum(jams) AS jams, sum(leaks) AS leaks,
           sum(water_l) AS water_l
    FROM usage_daily
    WHERE day >= (now() AT TIME ZONE 'Europe/London')::date - %(days)s
    GROUP BY 1
), live AS (
    SELECT d.id, d.household_ref FROM devices d WHERE d.decommissioned_at IS NULL
)
SELECT 'offline', l.id, l.household_ref,
       extract(epoch FROM now() - s.last_seen) / 3600,
       format('not heard from for %%s hours (last seen %%s)',
              round((extract(epoch FROM now() - s.last_seen) / 3600)::numeric, 1), s.last_seen)
FROM live l JOIN device_status s ON s.device_id = l.id
WHERE s.last_seen < now() - make_interval(secs => %(offline_s)s)
UNION ALL
SELECT 'jam_rate', l.id, l.household_ref, hh.jams::float8 / hh.uses,
       format('%%s jams in %%s uses over %%s days', hh.jams, hh.uses, %(days)s)
FROM live l JOIN hh ON hh.household_ref = l.household_ref
WHERE hh.uses > 0 AND hh.jams::float8 / hh.uses > %(jam_rate)s
UNION ALL
SELECT 'leak', l.id, l.household_ref, hh.leaks,
       format('%%s leak events over %%s days', hh.leaks, %(days)s)
FROM live l JOIN hh ON hh.household_ref = l.household_ref
WHERE hh.leaks > 0
UNION ALL
SELECT 'water_per_use', l.id, l.household_ref, hh.water_l / hh.uses,
       format('%%s L per use over %%s days (normal: 1-1.5 L)',
              round((hh.water_l / hh.uses)::numeric, 2), %(days)s)
FROM live l JOIN hh ON hh.household_ref = l.household_ref
WHERE hh.uses > 0 AND hh.water_l / hh.uses > %(water)s
"""

_OPEN: LiteralString = """
INSERT INTO anomalies (kind, device_id, household_ref, value, detail)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (kind, device_id) WHERE resolved_at IS NULL
DO UPDATE SET value = excluded.value, detail = excluded.detail, last_seen = now()
"""


def check_devices(conn: psycopg.Connection[Any], s: Settings) -> int:
    """Run every check, open or refresh what is found, resolve what is gone; returns how many
    anomalies are open afterwards."""
    params = {
        "days": WINDOW_DAYS,
        "offline_s": s.offline_after_h * 3600,
        "jam_rate": s.jam_rate_max,
        "water": s.water_per_use_max_l,
    }
    with conn.transaction():
        found = conn.execute(_CHECKS, params).fetchall()
        with conn.cursor() as cur:
            cur.executemany(_OPEN, found)
        keys = [f"{k}\x1f{d}" for k, d, *_ in found]
        conn.execute(
            "UPDATE anomalies SET resolved_at = now() WHERE resolved_at IS NULL "
            "AND NOT (kind || chr(31) || device_id = ANY(%s))",
            (keys,),
        )
    return len(found)
