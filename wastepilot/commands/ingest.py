"""`wastepilot ingest` and `wastepilot replay-dead-letters`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from core.settings import get_settings
from wastepilot.signals import stop_on_signals

console = Console()


def ingest_cmd(
    workers: Annotated[int, typer.Option(min=1, max=64, help="Workers in this process")] = 1,
) -> None:
    """Consume readings from the broker and store them (runs until Ctrl-C / SIGTERM)."""
    from core.health import HealthServer
    from ingest.metrics import IngestMetrics
    from ingest.worker import IngestWorker, WorkerConfig

    s = get_settings()
    stop = stop_on_signals()
    metrics = IngestMetrics()
    cfgs = [
        WorkerConfig.from_settings(s, i if workers > 1 else None) for i in range(1, workers + 1)
    ]
    pool = [IngestWorker(cfg, metrics) for cfg in cfgs]

    def ready() -> tuple[bool, str]:
        states = [w.ready() for w in pool]
        return all(ok for ok, _ in states), "; ".join(why for _, why in states)

    health = None
    if s.ingest_metrics_port:
        health = HealthServer("0.0.0.0", s.ingest_metrics_port, metrics.registry, ready)  # noqa: S104
        health.start()
    for w in pool:
        w.start()
    from ingest.exposure import StoreWatch

    watch = StoreWatch(s.mqtt_url_for("ingest"), f"{cfgs[0].client_id}-store", metrics.unstored)
    watch.start()
    console.print(
        f"ingest: {workers} worker(s) on group {s.ingest_group!r}; "
        f"metrics on :{s.ingest_metrics_port}/metrics"
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        watch.stop()
        for w in pool:
            w.stop()
        if health:
            health.stop()


def replay_cmd(
    reason: Annotated[str | None, typer.Option(help="Only dead letters with this reason")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many")] = 10_000,
) -> None:
    """Check dead letters again under today's rules and registry; store what is now valid."""
    from ingest.replay import replay_dead_letters
    from ingest.validate import Limits

    s = get_settings()
    res = replay_dead_letters(
        s.db_url(),
        Limits.from_settings(s),
        reason=reason,
        limit=limit,
        dead_letter_max_bytes=s.ingest_dead_letter_max_bytes,
    )
    console.print(
        f"replayed {res.replayed}: {res.stored} stored, {res.duplicates} already stored, "
        f"{res.dead_again} still bad (new dead letters)"
    )
