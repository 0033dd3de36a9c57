"""The `wastepilot` command line: one entry point composing services, ingest, API, simulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from core import clock
from core.db import connect
from core.errors import WastepilotError
from core.logs import setup_logging
from core.registry import Household, add_households
from core.settings import Settings, get_settings
from wastepilot import scheduler, services
from wastepilot.bids_cli import bids_app, prepare_database
from wastepilot.broker_cli import broker_app
from wastepilot.devices_cli import devices_app
from wastepilot.people_cli import tokens_app, users_app
from wastepilot.services_cli import services_app
from wastepilot.signals import stop_on_signals
from wastepilot.simulate_cli import simulate_cmd

app = typer.Typer(
    help="wastepilot: food-waste disposer pilot and bid support.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
households_app = typer.Typer(help="Pilot households (registry).", no_args_is_help=True)
app.add_typer(services_app, name="services")
app.add_typer(broker_app, name="broker")
app.add_typer(households_app, name="households")
app.add_typer(devices_app, name="devices")
app.add_typer(bids_app, name="bids")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(scheduler.rollups_app, name="rollups")
app.command("scheduler")(scheduler.scheduler)
app.command("report")(scheduler.report)
app.command("simulate")(simulate_cmd)
console = Console()


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False,
) -> None:
    settings = get_settings()
    setup_logging("DEBUG" if verbose else settings.log_level, json=settings.log_json)
    clock.start_at(settings.clock_at)


# --- database and registry ---


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply pending SQL migrations (each once, in order) and load the council reference data;
    re-running is a no-op."""
    prepare_database(get_settings())
    console.print("database schema and council registry are up to date")


@households_app.command("add")
def households_add(
    ref: Annotated[str, typer.Argument(help="Pseudonymous household reference, e.g. HH-0042")],
    cohort: Annotated[str, typer.Option(help="Pilot cohort")] = "default",
    occupants: Annotated[int | None, typer.Option(min=1, max=20)] = None,
    postcode_district: Annotated[
        str | None, typer.Option(help="Outward code only, e.g. SY1")
    ] = None,
    joined: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Date joined")
    ] = None,
) -> None:
    """Register a pilot household."""
    with connect(get_settings().db_url()) as conn:
        n = add_households(
            conn,
            [
                Household(
                    ref, cohort, occupants, postcode_district, joined.date() if joined else None
                )
            ],
        )
    console.print(f"household {ref}: {'registered' if n else 'already registered'}")


# --- ingest ---


@app.command("ingest")
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
    console.print(
        f"ingest: {workers} worker(s) on group {s.ingest_group!r}; "
        f"metrics on :{s.ingest_metrics_port}/metrics"
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for w in pool:
            w.stop()
        if health:
            health.stop()


@app.command("replay-dead-letters")
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


# --- API -----------------------------------------------------------------------------------------


@app.command("api")
def api_cmd(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default WASTEPILOT_API_HOST)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default WASTEPILOT_API_PORT)")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app

    s = get_settings()
    app_ = create_app(s)
    uvicorn.run(app_, host=host or s.api_host, port=port or s.api_port, log_level="info")


# --- everything together ---


def _first_admin(s: Settings) -> None:
    """On a development machine with nobody signed up yet, make a local admin and print a token
    for it, so the pilot can be looked at straight away."""
    import secrets

    from core import auth

    if s.env != "development":
        return
    with connect(s.db_url()) as conn:
        if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
            return
        auth.add_user(conn, "local-admin", "admin", secrets.token_urlsafe(24))
        _, token = auth.create_token(conn, "local-admin", days=30, name="wastepilot run")
    console.print("[bold]a local admin was created[/]; its API token (shown once, 30 days):")
    print(token)  # the one time it is shown: plain, for scripts


def revive(s: Settings) -> list[str]:
    """Start again a local database or broker that stopped while `run` was up (what compose's
    restart policy does for a deployment); returns what was restarted. Ingest reconnects and
    its broker session, with what was queued for it, survives (persistence on)."""
    st = services.status(s)
    dead = [
        what
        for key, what in (("database", "database"), ("mqtt", "broker"))
        if st[key].get("managed") and not st[key].get("running")
    ]
    if dead:
        console.print(f"[red]the local {' and '.join(dead)} stopped; starting again[/]")
        try:
            services.up(s)
        except WastepilotError as exc:
            console.print(f"[red]could not restart: {exc}[/]")
    return dead


def _child_env(s: Settings) -> dict[str, str]:
    """The environment of `run`'s processes: this one's, with its moved clock handed on."""
    env = dict(os.environ)
    if s.clock_at is not None:
        env["WASTEPILOT_CLOCK_AT"] = clock.now().isoformat()
    return env


def example_request(s: Settings) -> str | None:
    """A request that shows data: the usage of the household heard from most recently (none
    while nothing is stored yet)."""
    from analytics import queries

    with connect(s.db_url()) as conn:
        row = conn.execute(queries.HOUSEHOLDS, {"cohort": None, "limit": 1}).fetchone()
    if row is None or row[4] is None:
        return None
    return (
        f'curl -H "Authorization: Bearer $TOKEN" '
        f"'http://{s.api_host}:{s.api_port}/api/v1/households/{row[0]}/usage?bucket=1h'"
    )


@app.command("run")
def run_cmd(
    households: Annotated[int | None, typer.Option(min=1, help="Simulated households")] = None,
    backfill_days: Annotated[
        float, typer.Option(min=0, help="History the simulator sends first")
    ] = 1.0,
) -> None:
    """Services up, migrate, then ingest + API + scheduler + simulator in the foreground; Ctrl-C
    stops all."""
    s = get_settings()
    services.up(s)
    prepare_database(s)
    _first_admin(s)
    stop = stop_on_signals()
    exe = [sys.executable, "-m", "wastepilot"]
    sim = [*exe, "simulate", "--backfill-days", str(backfill_days)]
    if households:
        sim += ["--households", str(households)]
    procs = {
        name: subprocess.Popen([*exe, name], env=_child_env(s))
        for name in ("ingest", "api", "scheduler")
    }
    time.sleep(1.0)
    procs["simulator"] = subprocess.Popen(sim, env=_child_env(s))
    at = f" (the clock moved to {clock.now():%Y-%m-%d %H:%M} UTC)" if s.clock_at else ""
    console.print(
        f"[bold]wastepilot is running[/]{at}: API http://{s.api_host}:{s.api_port}/ "
        f"(docs /docs), ingest metrics :{s.ingest_metrics_port}/metrics. Ctrl-C stops."
    )
    try:
        ticks = 0
        example = None
        while not stop.wait(0.5):
            for name, p in procs.items():
                if p.poll() is not None and name != "simulator":
                    console.print(f"[red]{name} exited ({p.returncode}); stopping[/]")
                    stop.set()
            ticks += 1
            if example is None and ticks % 4 == 0:
                example = example_request(s)
                if example:
                    console.print("usage of a household that has readings, for example:")
                    print(example, flush=True)  # plain, to copy
            if ticks % 10 == 0:
                revive(s)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        console.print("stopped")


def main() -> None:
    """Entry point: user errors are one clear line and exit code 1, not a traceback."""
    try:
        app()
    except WastepilotError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
