"""`wastepilot db guard`: synchronous replication that degrades deliberately when the standby is
lost, and comes back when it streams again (core/replication.py, docs/recovery.md)."""

from __future__ import annotations

import logging
import time

import psycopg
import typer
from rich.console import Console

from core import replication as r
from core.logs import setup_logging
from core.settings import Settings, get_settings
from wastepilot.signals import stop_on_signals

log = logging.getLogger(__name__)
console = Console()
db_app = typer.Typer(help="The database's synchronous standby.", no_args_is_help=True)


class GuardMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        self.degraded = Gauge(
            "wastepilot_db_sync_replication_degraded",
            "1 while synchronous replication is switched off because no standby streams: "
            "commits are on one machine only (alert on it)",
            registry=self.registry,
        )
        self.streaming = Gauge(
            "wastepilot_db_standbys_streaming",
            "Standbys named WASTEPILOT_DB_STANDBY_NAME streaming from the primary",
            registry=self.registry,
        )
        self.waiting = Gauge(
            "wastepilot_db_commits_waiting_for_standby",
            "Sessions whose commit waits for the synchronous standby now",
            registry=self.registry,
        )
        self.switches = Counter(
            "wastepilot_db_sync_switches", "Switches of synchronous replication", ["action"],
            registry=self.registry,
        )  # fmt: skip


def guard_step(
    conn: psycopg.Connection[tuple[object, ...]], guard: r.SyncGuard, s: Settings, m: GuardMetrics
) -> r.Action | None:
    """One look at the primary, and the switch it calls for (made here)."""
    row = conn.execute(r.IN_RECOVERY).fetchone()
    if row and row[0]:
        return None  # a standby: nothing to guard here
    row = conn.execute(r.STREAMING, ([s.db_standby_name],)).fetchone()
    streaming = int(row[0]) if row else 0  # type: ignore[call-overload]
    row = conn.execute(r.DEGRADED).fetchone()
    guard.degraded = bool(row and row[0])  # the server's state, whoever switched it
    action = guard.step(time.monotonic(), streaming > 0)
    if action == "degrade":
        conn.execute(r.DEGRADE)
        conn.execute(r.RELOAD)
        log.critical(
            "no synchronous standby has streamed for %.0f s: synchronous replication switched "
            "OFF, commits are on this machine only until the standby is back",
            s.db_standby_grace_s,
        )
    elif action == "restore":
        conn.execute(r.restore(s.db_standby_name))
        conn.execute(r.RELOAD)
        log.warning("the standby streams again: synchronous replication switched back on")
    if action is not None:
        m.switches.labels(action).inc()
    row = conn.execute(r.WAITING_COMMITS).fetchone()
    m.waiting.set(int(row[0]) if row else 0)  # type: ignore[call-overload]
    m.streaming.set(streaming)
    m.degraded.set(1 if guard.degraded else 0)
    return action


@db_app.command("guard")
def guard_cmd() -> None:
    """Watch the primary (through the owner's URL, which names every node): no standby streaming
    for WASTEPILOT_DB_STANDBY_GRACE_S → synchronous replication off (CRITICAL in the log, the
    metric wastepilot_db_sync_replication_degraded = 1); streaming again → on."""
    s = get_settings()
    setup_logging(s.log_level, json=s.log_json)
    m = GuardMetrics()
    health = None
    conn: psycopg.Connection[tuple[object, ...]] | None = None
    if s.db_guard_metrics_port:
        from core.health import HealthServer

        health = HealthServer(
            "0.0.0.0",  # noqa: S104  (probed by the container runtime and Prometheus)
            s.db_guard_metrics_port,
            m.registry,
            lambda: (conn is not None and not conn.closed, "ok" if conn else "no database"),
        )
        health.start()
    stop = stop_on_signals()
    guard = r.SyncGuard(s.db_standby_grace_s)
    console.print(f"db guard: watching for the standby {s.db_standby_name!r}")
    try:
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(s.db_owner_url(), autocommit=True, connect_timeout=3)
                guard_step(conn, guard, s, m)
            except psycopg.OperationalError as exc:
                log.warning("db guard: the primary does not answer (%s)", str(exc).strip()[:200])
                if conn is not None:
                    conn.close()
                conn = None
            stop.wait(1.0)
    finally:
        if conn is not None:
            conn.close()
        if health is not None:
            health.stop()
