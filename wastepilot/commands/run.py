"""`wastepilot run`: the whole pilot on this machine in the foreground (services, ingest, API,
scheduler, simulator)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console

from core import clock
from core.db import connect
from core.errors import WastepilotError
from core.settings import Settings, get_settings
from wastepilot.localservices import services
from wastepilot.prepare import prepare_database
from wastepilot.signals import stop_on_signals

console = Console()


def _first_admin(s: Settings) -> None:
    """On a development machine with nobody signed up yet, make a local admin and print a token
    for it, so the pilot can be looked at straight away."""
    import secrets

    from core import auth

    if s.env != "development":
        return
    with connect(s.db_url()) as conn:
        if auth.has_users(conn):
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
    from analytics import listings

    with connect(s.db_url()) as conn:
        rows = listings.households(conn, None, 1)
    if not rows or rows[0]["last_reading_at"] is None:
        return None
    return (
        f'curl -H "Authorization: Bearer $TOKEN" '
        f"'http://{s.api_host}:{s.api_port}/api/v1/households/{rows[0]['ref']}/usage?bucket=1h'"
    )


def wait_for_ingest(s: Settings, stop: threading.Event, timeout_s: float = 30) -> None:
    """Until ingest answers ready (connected to the broker and the database), so the simulator's
    first messages find a subscriber; the simulator would send them again anyway."""
    if not s.ingest_metrics_port:
        time.sleep(1.0)
        return
    url = f"http://127.0.0.1:{s.ingest_metrics_port}/readyz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)


def _ingest_state(s: Settings) -> tuple[float, float] | None:
    """(messages received, messages held unacknowledged) from ingest's metrics; None if they
    cannot be read."""
    url = f"http://127.0.0.1:{s.ingest_metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    values = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    try:
        return (
            float(values["wastepilot_ingest_messages_received_total"]),
            float(values["wastepilot_ingest_buffer_messages"]),
        )
    except (KeyError, ValueError):
        return None


def roll_up_backfill(s: Settings, days: float, stop: threading.Event) -> None:
    """Wait until ingest has stored what the simulator sent (its count of messages received
    stays put for 2 s with none held), then roll it up: a refresh without the commit lag
    (nothing else is writing: the live simulator has not started) and a rebuild of the
    backfilled days (those older than the late window would otherwise wait for a manual one).
    If ingest does not settle within two minutes, the refresh keeps its commit lag."""
    from analytics.rollups import COMMIT_LAG, rebuild, refresh

    last, steady, settled = None, 0, False
    deadline = time.monotonic() + 120
    while not stop.is_set() and time.monotonic() < deadline:
        state = _ingest_state(s) if s.ingest_metrics_port else None
        steady = steady + 1 if state is not None and state == last and state[1] == 0 else 0
        if steady >= 4:
            settled = True
            break
        last = state
        time.sleep(0.5)
    if stop.is_set():
        return
    if not settled:
        console.print("[yellow]ingest is still storing the history; rolling up what is there[/]")
    with connect(s.db_url()) as conn:
        conn.autocommit = True
        refresh(
            conn, timedelta(hours=s.rollup_late_window_h), timedelta(0) if settled else COMMIT_LAG
        )
        now = clock.now()
        rebuild(conn, now - timedelta(days=days + 1), now + timedelta(hours=1))
    console.print(f"history of {days:g} days stored and rolled up")


def backfill_first(s: Settings, simulate: list[str], days: float, stop: threading.Event) -> None:
    """The history first, stored and rolled up before the scheduler and the live simulator
    start: the pages and KPIs then show all of it at once, even a backfill longer than the
    rollups' late window (which the scheduler's refresh would leave to a rebuild)."""
    sim = [*simulate, "--backfill-days", str(days), "--no-live"]
    code = subprocess.run(sim, env=_child_env(s), check=False).returncode
    if code == 0:
        roll_up_backfill(s, days, stop)
    elif not stop.is_set():
        console.print(f"[red]the simulator's backfill failed ({code}); going on without it[/]")


def run_cmd(
    households: Annotated[int | None, typer.Option(min=1, help="Simulated households")] = None,
    backfill_days: Annotated[
        float, typer.Option(min=0, help="History the simulator sends first")
    ] = 1.0,
) -> None:
    """Services up, migrate, then ingest + API + scheduler + simulator in the foreground; Ctrl-C
    stops all. With no mail provider set, e-mails are caught in .wastepilot/mail/."""
    s = get_settings()
    with contextlib.ExitStack() as stack:
        _catch_mail(s, stack)
        _run(s, households, backfill_days)


def _catch_mail(s: Settings, stack: contextlib.ExitStack) -> None:
    """With no mail provider configured, start the local mail catcher and point the scheduler's
    outbox at it (and, with no rota set, alerts at a field team address of its own)."""
    if s.mail_provider != "none" or s.env != "development":
        return
    try:
        from wastepilot.localservices.mailcatcher import catching
    except ImportError:  # aiosmtpd comes with the development dependencies
        console.print("e-mails stay queued (no mail catcher: install with `scripts/bootstrap`)")
        return
    folder = s.state_dir / "mail"

    def told(to: list[str], subject: str, path: object) -> None:
        console.print(f"e-mail to {len(to)} caught: {subject!r} -> {path}")

    os.environ["WASTEPILOT_MAIL_PROVIDER"] = "smtp"
    os.environ["WASTEPILOT_SMTP_URL"] = stack.enter_context(catching(folder, told))
    if not s.alerts_rota:
        os.environ["WASTEPILOT_ALERTS_ROTA"] = f'["{LOCAL_ROTA}"]'
    console.print(f"e-mails are caught, not sent: {folder}/ (alerts go to {LOCAL_ROTA})"
                  if not s.alerts_rota else f"e-mails are caught, not sent: {folder}/")  # fmt: skip


LOCAL_ROTA = "field-team@pilot.localhost"


def _run(s: Settings, households: int | None, backfill_days: float) -> None:
    services.up(s)
    for line in prepare_database(s):
        console.print(line)
    _first_admin(s)
    stop = stop_on_signals()
    exe = [sys.executable, "-m", "wastepilot"]
    fleet = ["--households", str(households)] if households else []
    procs = {name: subprocess.Popen([*exe, name], env=_child_env(s)) for name in ("ingest", "api")}
    wait_for_ingest(s, stop)
    if backfill_days > 0:
        backfill_first(s, [*exe, "simulate", *fleet], backfill_days, stop)
    if stop.is_set():  # Ctrl-C during the backfill
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(30)
        console.print("stopped")
        return
    procs["scheduler"] = subprocess.Popen([*exe, "scheduler"], env=_child_env(s))
    if services.status(s)["database"].get("standby"):  # degrade deliberately if it is lost
        procs["db guard"] = subprocess.Popen([*exe, "db", "guard"], env=_child_env(s))
    time.sleep(1.0)
    live = [*exe, "simulate", *fleet, "--backfill-days", "0"]
    procs["simulator"] = subprocess.Popen(live, env=_child_env(s))
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
