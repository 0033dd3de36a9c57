"""Water from the households' own meters (wM-Bus through wmbusmeters): litres per UK day, beside
the disposer's uses (docs/devices/wmbus.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from analytics import queries as q


@dataclass(frozen=True, slots=True)
class MeterDay:
    day: date
    litres: float
    reads: int  # telegrams stored that day


def meter_days(
    conn: psycopg.Connection[Any], ref: str, start: datetime, end: datetime
) -> list[MeterDay]:
    """The household's metered litres per UK day with reads in [start, end) (none: no meter)."""
    rows = conn.execute(q.HOUSEHOLD_METER_DAYS, {"ref": ref, "start": start, "end": end})
    return [MeterDay(d, round(float(litres), 1), int(n)) for d, litres, n in rows]
