"""The `wastepilot` command line: the root app composing the command groups in
wastepilot/commands/ (the local services they start live in wastepilot/localservices/)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from core import clock
from core.errors import WastepilotError
from core.logs import setup_logging
from core.settings import get_settings
from wastepilot.commands import api, ingest, run, scheduler
from wastepilot.commands.archive import archive_app
from wastepilot.commands.backup import backup_app
from wastepilot.commands.bids import bids_app
from wastepilot.commands.broker import broker_app
from wastepilot.commands.certs import certs_app
from wastepilot.commands.db import db_app
from wastepilot.commands.devices import devices_app
from wastepilot.commands.households import households_app
from wastepilot.commands.people import tokens_app, users_app
from wastepilot.commands.services import services_app
from wastepilot.commands.simulate import simulate_cmd
from wastepilot.localservices.state import use_local_services
from wastepilot.prepare import prepare_database

use_local_services()  # Settings finds the services of `wastepilot services up`

app = typer.Typer(
    help="wastepilot: food-waste disposer pilot and bid support.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(services_app, name="services")
app.add_typer(backup_app, name="backup")
app.add_typer(archive_app, name="archive")
app.add_typer(db_app, name="db")
app.add_typer(broker_app, name="broker")
app.add_typer(certs_app, name="certs")
app.add_typer(households_app, name="households")
app.add_typer(devices_app, name="devices")
app.add_typer(bids_app, name="bids")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(scheduler.rollups_app, name="rollups")
app.command("scheduler")(scheduler.scheduler)
app.command("report")(scheduler.report)
app.command("simulate")(simulate_cmd)
app.command("ingest")(ingest.ingest_cmd)
app.command("replay-dead-letters")(ingest.replay_cmd)
app.command("api")(api.api_cmd)
app.command("run")(run.run_cmd)
console = Console()


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False,
) -> None:
    settings = get_settings()
    setup_logging("DEBUG" if verbose else settings.log_level, json=settings.log_json)
    clock.start_at(settings.clock_at)


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply pending SQL migrations (each once, in order) and load the council reference data;
    re-running is a no-op."""
    for line in prepare_database(get_settings()):
        console.print(line)
    console.print("database schema and council registry are up to date")


def main() -> None:
    """Entry point: user errors are one clear line and exit code 1, not a traceback."""
    try:
        app()
    except WastepilotError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
