"""The `wastepilot` command line."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.console import Console

from core.errors import WastepilotError
from core.logs import setup_logging
from core.settings import get_settings
from wastepilot import services

app = typer.Typer(help="wastepilot: food-waste disposer pilot and bid support.", no_args_is_help=True)
services_app = typer.Typer(help="Local PostgreSQL+TimescaleDB and Mosquitto.", no_args_is_help=True)
app.add_typer(services_app, name="services")
console = Console()
log = logging.getLogger(__name__)


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging")] = False) -> None:
    settings = get_settings()
    setup_logging("DEBUG" if verbose else settings.log_level, json=settings.log_json)


@services_app.command("up")
def services_up() -> None:
    """Install what is missing and start the local services (idempotent)."""
    st = services.up(get_settings())
    _print_status(st)


@services_app.command("down")
def services_down() -> None:
    """Stop the local services; their data stays in the state folder."""
    services.down(get_settings())
    console.print("local services stopped")


@services_app.command("status")
def services_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable, with credentials")] = False,
) -> None:
    """Say what runs where."""
    st = services.status(get_settings())
    if as_json:
        typer.echo(json.dumps(st, indent=2))
    else:
        _print_status(st)


def _print_status(st: dict[str, object]) -> None:
    db = st["database"]
    mq = st["mqtt"]
    assert isinstance(db, dict) and isinstance(mq, dict)
    for name, part in (("database", db), ("broker", mq)):
        if not part.get("managed"):
            console.print(f"{name}: external ({_redact(str(part['url']))})")
        else:
            state = "[green]running[/]" if part.get("running") else "[red]stopped[/]"
            console.print(f"{name}: {state} on 127.0.0.1:{part['port']}")
    console.print(f"state folder: {st['state_dir']}  (credentials: `wastepilot services status --json`)")


def _redact(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, cred = head.partition("://")
    return f"{scheme}://{cred.split(':')[0]}:***@{tail}"


def main() -> None:
    """Entry point: user errors are one clear line and exit code 1, not a traceback."""
    try:
        app()
    except WastepilotError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
