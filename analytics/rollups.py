"""Hourly and daily usage rollups per household, refreshed incrementally from a watermark.

The watermark is on `readings.received_at` (when ingest stored a reading), not on the device's
own `ts`: a reading that arrives late — a device's offline backlog, a redelivery — moves the
watermark like any other and its hour is re-aggregated, as long as its `ts` is within the late
window (the window keeps each refresh to the newest chunks). Re-aggregation replaces the whole
hour and day, so refreshing twice changes nothing and duplicates are never counted twice (the
readings table holds each reading once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from analytics import queries as q
from core import clock
from core.db import Conn

log = logging.getLogger(__name__)

WATERMARK = "usage"
LOCAL_TZ = "Europe/London"
# Ingest's transactions take milliseconds; a reading whose transaction began before the new
# watermark but committed after this refresh read it would be missed, so the watermark trails
# the clock by this much.
COMMIT_LAG = timedelta(seconds=30)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Refreshed:
    hours: int
    days: int
    received_until: datetime | None


def _apply(conn: Conn, until: datetime) -> tuple[int, int]:
    """Re-aggregate the affected hours and days from the readings received up to `until`: a
    rollup row holds exactly those, and series add the ones received later from raw readings."""
    span = conn.execute(q.AFFECTED_SPAN).fetchone()
    if span is None or span[0] is None:
        return 0, 0
    lo, hi = span[0], span[1] + timedelta(hours=1)
    hours = conn.execute(q.REFRESH_HOURLY, {"lo": lo, "hi": hi, "until": until}).rowcount
    conn.execute(q.AFFECTED_DAYS)
    # whole local days around the affected hours (a day is 23-25 hours)
    conn.execute(
        q.REFRESH_DEVICE_DAILY, {"lo": lo - timedelta(hours=26), "hi": hi + timedelta(hours=26)}
    )
    conn.execute(q.ANALYZE_AFFECTED_DAYS)
    days = conn.execute(q.REFRESH_DAILY).rowcount
    conn.execute(q.REFRESH_TO_DATE)
    # (a statement does not see its own CTE's deletions: delete first, then insert)
    conn.execute(q.DELETE_AFFECTED_PROFILE)
    conn.execute(q.REFRESH_PROFILE)
    return hours, days


def refresh(conn: Conn, late_window: timedelta, commit_lag: timedelta = COMMIT_LAG) -> Refreshed:
    """Re-aggregate every (household, hour) with readings received since the watermark and
    stamped within `late_window`; the first run builds everything. One transaction."""
    with conn.transaction():
        row = conn.execute(
            q.WATERMARK_FOR_UPDATE,
            (WATERMARK,),
        ).fetchone()
        lagged = conn.execute(q.DB_NOW_MINUS, (commit_lag,)).fetchone()
        assert lagged is not None  # noqa: S101  (SELECT returns a row)
        # never backwards: a refresh with a shorter lag (wastepilot run's, after a backfill)
        # may have set it ahead of this one's; going back would count its readings twice
        until = (max(lagged[0], row[0]) if row is not None else lagged[0],)
        if row is None:  # the first refresh: everything received so far, whatever its stamp
            conn.execute(q.AFFECTED_RANGE, {"start": EPOCH, "end": END_OF_TIME})
        else:
            conn.execute(
                q.AFFECTED_SINCE,
                # received_at is the database's clock; ts is the pilot's (core.clock)
                {"after": row[0], "until": until[0], "since": clock.now() - late_window},
            )
        hours, days = _apply(conn, until[0])
        conn.execute(
            q.SET_WATERMARK,
            (WATERMARK, until[0]),
        )
    log.info("rollups refreshed: %d household-hours, %d household-days", hours, days)
    return Refreshed(hours, days, until[0])


def rebuild(conn: Conn, start: datetime, end: datetime) -> Refreshed:
    """Re-aggregate every household-hour with readings stamped in [start, end) — for readings
    that arrived later than the late window, or after a fix. One transaction."""
    with conn.transaction():
        row = conn.execute(q.WATERMARK_FOR_UPDATE, (WATERMARK,)).fetchone()
        if row is None:  # received_at is the database's clock
            row = conn.execute(q.DB_NOW).fetchone()
            assert row is not None  # noqa: S101  (SELECT returns a row)
        until = row[0]
        conn.execute(q.AFFECTED_RANGE, {"start": start, "end": end})
        hours, days = _apply(conn, until)
    return Refreshed(hours, days, None)
