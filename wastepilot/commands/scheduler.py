"""`wastepilot scheduler`: the scheduled jobs in their own process (APScheduler 3), plus
`wastepilot report` and `wastepilot rollups rebuild`."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from analytics.jobs import ANALYTICS_JOBS
from bids.jobs import BIDS_JOBS
from core import clock
from core.db import answers, connect
from core.jobs import JobFn, Outcome, run_job
from core.logs import setup_logging
from core.outbox import send_outbox
from core.settings import Settings, get_settings
from ingest.derive import derive_uses, sample_retention
from wastepilot.localservices import backup

log = logging.getLogger(__name__)
console = Console()
rollups_app = typer.Typer(help="Usage rollups.", no_args_is_help=True)


JOBS: dict[str, JobFn] = {
    **ANALYTICS_JOBS,
    **BIDS_JOBS,
    "derive_uses": derive_uses,
    "sample_retention": sample_retention,
    "send_outbox": send_outbox,
}


class SchedulerMetrics:
    """Job runs by outcome, their duration and the last success, on the scheduler's /metrics."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.runs = Counter(
            "wastepilot_job_runs_total", "Scheduled job runs", ["job", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "wastepilot_job_duration_seconds", "Time a job took", ["job"], registry=self.registry
        )
        self.last_ok = Gauge(
            "wastepilot_job_last_success_timestamp_seconds",
            "When each job last succeeded (Unix time)",
            ["job"],
            registry=self.registry,
        )


def run_once(name: str, s: Settings, metrics: SchedulerMetrics | None = None) -> Outcome:
    import time

    t0 = time.perf_counter()
    out = run_job(s.db_url(), name, JOBS[name], s)
    if metrics is not None:
        metrics.runs.labels(name, out.outcome).inc()
        if out.outcome != "skipped":
            metrics.duration.labels(name).observe(time.perf_counter() - t0)
        if out.outcome == "ok":
            metrics.last_ok.labels(name).set_to_current_time()
    return out


def _backup_job(kind: str) -> JobFn:
    def job(_conn: psycopg.Connection[tuple[object, ...]], s: Settings) -> int:
        backup.back_up(s, kind)
        return 0

    return job


def _database_ready(s: Settings) -> tuple[bool, str]:
    return answers(s.db_url())


def scheduler(
    once: Annotated[
        str | None, typer.Option(help=f"Run one job now and exit: {', '.join(JOBS)}")
    ] = None,
) -> None:
    """Run the scheduled jobs: the outbox's messages (every 30 s), uses from metering plugs'
    reports (every minute), rollup refresh
    (every WASTEPILOT_ROLLUP_INTERVAL_S), device health (15 min), retention, sample retention
    and attendee retention (daily, 03:30-03:45 UK time), weekly report (Mondays 06:00); with
    the local services' backups on, an incremental backup hourly and a full one on Sundays
    (01:15). Safe to run twice: a job already running elsewhere is skipped and recorded."""
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    s = get_settings()
    setup_logging(s.log_level, json=s.log_json)
    if once is not None:
        if once not in JOBS:
            raise typer.BadParameter(f"no job {once!r}; jobs: {', '.join(JOBS)}")
        out = run_once(once, s)
        console.print(f"{out.job}: {out.outcome} {out.rows if out.rows is not None else ''}")
        raise typer.Exit(0 if out.outcome != "failed" else 1)
    metrics = SchedulerMetrics()
    health = None
    if s.scheduler_metrics_port:
        from core.health import HealthServer

        health = HealthServer(
            "0.0.0.0",  # noqa: S104  (probed by the container runtime and Prometheus)
            s.scheduler_metrics_port,
            metrics.registry,
            lambda: _database_ready(s),
        )
        health.start()
    sched = BlockingScheduler(timezone="Europe/London")
    now = datetime.now(UTC)  # APScheduler's own (real) time
    triggers = {
        "derive_uses": IntervalTrigger(seconds=60),
        "send_outbox": IntervalTrigger(seconds=30),
        "workshop_offers": IntervalTrigger(seconds=60),
        "workshop_reminders": CronTrigger(minute=5),  # hourly
        "rollup_refresh": IntervalTrigger(seconds=s.rollup_interval_s),
        "device_health": IntervalTrigger(minutes=15),
        "retention": CronTrigger(hour=3, minute=30),
        "attendee_retention": CronTrigger(hour=3, minute=45),
        "sample_retention": CronTrigger(hour=3, minute=40),
        "weekly_report": CronTrigger(day_of_week="mon", hour=6),
        "analyst_digest": CronTrigger(minute=10),  # hourly: queued once a day from its hour
        "archive": CronTrigger(hour=4, minute=15),
    }
    if backup.configured(s):  # the local services' backups (`services up --backups`)
        JOBS["backup_full"] = _backup_job("full")
        JOBS["backup_incr"] = _backup_job("incr")
        triggers["backup_full"] = CronTrigger(day_of_week="sun", hour=1, minute=15)
        triggers["backup_incr"] = CronTrigger(hour="0,2-23", minute=15)
    for name, trigger in triggers.items():
        sched.add_job(
            run_once,
            trigger,
            args=[name, s, metrics],
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=300,
            next_run_time=now
            if name in ("derive_uses", "rollup_refresh", "device_health")
            else None,
        )
    console.print(f"scheduler: {', '.join(triggers)} (Ctrl-C stops)")
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        sched.shutdown(wait=False)
    finally:
        if health is not None:
            health.stop()


def report(
    start: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First day (default: last week)")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Day after the last")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder (default WASTEPILOT_REPORTS_DIR)")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Also keep it in the database (API)")] = False,
) -> None:
    """Write the pilot report (HTML with charts, and CSV) for any period."""
    from analytics.report import build, last_full_week, store_report

    s = get_settings()
    d0, d1 = last_full_week(clock.today())
    first: date = start.date() if start else d0
    last: date = end.date() if end else (first + timedelta(days=7) if start else d1)
    if first >= last:
        raise typer.BadParameter("start must be before end")
    folder = out or s.reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    with connect(s.db_url()) as conn:
        html, csv_text = build(conn, first, last, s)
        if keep:
            store_report(conn, first, last, s)
    stem = folder / f"pilot-{first}-to-{last}"
    stem.with_suffix(".html").write_text(html)
    stem.with_suffix(".csv").write_text(csv_text)
    console.print(f"wrote {stem}.html and {stem}.csv")


@rollups_app.command("rebuild")
def rebuild(
    since: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="From this UTC day")],
    until: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="To this UTC day (default now)")
    ] = None,
) -> None:
    """Re-aggregate the rollups for readings stamped in a period (late data beyond the window)."""
    from analytics.rollups import rebuild as rebuild_fn

    s = get_settings()
    start = since.replace(tzinfo=UTC)
    stop = until.replace(tzinfo=UTC) if until else clock.now()
    with connect(s.db_url(), autocommit=True) as conn:
        r = rebuild_fn(conn, start, stop)
    console.print(f"re-aggregated {r.hours} household-hours and {r.days} household-days")
