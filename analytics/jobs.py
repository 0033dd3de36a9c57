"""The analytics jobs the scheduler runs (through core/jobs.py's runner)."""

from __future__ import annotations

from datetime import timedelta

from analytics.archive import archive_due
from analytics.digest import queue_digests
from core import clock
from core.db import Conn
from core.jobs import JobFn
from core.settings import Settings


def rollup_refresh(conn: Conn, s: Settings) -> int:
    from analytics.rollups import refresh

    r = refresh(conn, timedelta(hours=s.rollup_late_window_h))
    return r.hours + r.days


def retention(conn: Conn, s: Settings) -> int:
    from analytics.retention import drop_dead_letters, drop_raw

    return drop_raw(conn, s.raw_retention_days) + drop_dead_letters(
        conn, s.dead_letter_retention_days
    )


def device_health(conn: Conn, s: Settings) -> int:
    from analytics.anomalies import check_devices

    return check_devices(conn, s)


def weekly_report(conn: Conn, s: Settings) -> int:
    from analytics.report import last_full_week, store_report

    start, end = last_full_week(clock.today())
    store_report(conn, start, end, s)
    return 1


ANALYTICS_JOBS: dict[str, JobFn] = {
    "rollup_refresh": rollup_refresh,
    "device_health": device_health,
    "retention": retention,
    "weekly_report": weekly_report,
    "analyst_digest": queue_digests,
    "archive": archive_due,  # only with WASTEPILOT_ARCHIVE_AFTER_MONTHS set
}
