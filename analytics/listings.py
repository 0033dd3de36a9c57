"""What the analysts' pages and the API list: households, cohorts, anomalies, the scheduled jobs'
runs and the weekly reports. Routes and pages call these; the SQL stays in analytics/queries.py.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from analytics import queries as q
from core.db import Conn


def households(conn: Conn, cohort: str | None, limit: int) -> list[dict[str, Any]]:
    """The pilot's households, most recently heard from first, with their newest reading."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.HOUSEHOLDS, {"cohort": cohort, "limit": limit}).fetchall()


def cohorts(conn: Conn) -> list[dict[str, Any]]:
    """The cohorts with the number of households enrolled in each."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.COHORTS).fetchall()


def anomalies(conn: Conn, *, include_resolved: bool, limit: int) -> list[dict[str, Any]]:
    """Anomalies found by the device-health job, newest first, with the household's reference."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            q.ANOMALIES, {"include_resolved": include_resolved, "limit": limit}
        ).fetchall()


def job_runs(conn: Conn, job: str | None, limit: int) -> list[dict[str, Any]]:
    """Runs of the scheduled jobs (of one, when named), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.JOB_RUNS, {"job": job, "limit": limit}).fetchall()


def weekly_reports(conn: Conn) -> list[dict[str, Any]]:
    """The weekly reports the scheduler kept, newest first (without their bodies)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.WEEKLY_REPORTS).fetchall()


def weekly_report(conn: Conn, report_id: int) -> tuple[str, str, Any] | None:
    """One weekly report's HTML, CSV and first day; None if there is no such report."""
    row = conn.execute(q.WEEKLY_REPORT, (report_id,)).fetchone()
    return (str(row[0]), str(row[1]), row[2]) if row else None
