"""`wastepilot services ...`: the local PostgreSQL+TimescaleDB and Mosquitto."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from core.settings import get_settings
from wastepilot.localservices import services

services_app = typer.Typer(help="Local PostgreSQL+TimescaleDB and Mosquitto.", no_args_is_help=True)
console = Console()


@services_app.command("up")
def services_up(
    standby: Annotated[
        bool | None,
        typer.Option(
            "--standby/--no-standby",
            help="Run the database with a synchronous standby (remembered; default: as before)",
        ),
    ] = None,
    backups: Annotated[
        bool | None,
        typer.Option(
            "--backups/--no-backups",
            help="Archive WAL to the backup repository for `wastepilot backup` (remembered)",
        ),
    ] = None,
) -> None:
    """Install what is missing and start the local services (idempotent, safe to repeat)."""
    _print_status(services.up(get_settings(), standby=standby, backups=backups))


@services_app.command("promote")
def services_promote() -> None:
    """Fail over: stop the primary if it still runs and make the standby the primary (the
    services' URL names both; they reconnect by themselves). `services up` then rebuilds the
    other node as the new standby."""
    _print_status(services.promote(get_settings()))


@services_app.command("browser")
def services_browser() -> None:
    """Install Debian's Chromium for the browser tests (idempotent)."""
    from wastepilot.localservices import install

    path = install.ensure_chromium(install.Apt())
    console.print(f"browser: {path}")


@services_app.command("down")
def services_down() -> None:
    """Stop the local services; their data stays in the state folder."""
    services.down(get_settings())
    console.print("local services stopped")


@services_app.command("status")
def services_status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable, with credentials")
    ] = False,
) -> None:
    """Say what runs where."""
    st = services.status(get_settings())
    if as_json:
        typer.echo(json.dumps(st, indent=2))
    else:
        _print_status(st)


def _print_status(st: dict[str, Any]) -> None:
    for name, key in (("database", "database"), ("broker", "mqtt")):
        part: dict[str, Any] = st[key]
        if not part.get("managed"):
            console.print(f"{name}: external ({_redact(str(part['url']))})")
        else:
            state = "[green]running[/]" if part.get("running") else "[red]stopped[/]"
            console.print(f"{name}: {state} on 127.0.0.1:{part['port']}")
            if part.get("standby"):
                sb = part["standby"]
                mark = "[green]running[/]" if sb["running"] else "[red]stopped[/]"
                console.print(f"database standby: {mark} on 127.0.0.1:{sb['port']}")
    console.print(
        f"state folder: {st['state_dir']} (credentials: wastepilot services status --json)"
    )


def _redact(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, cred = head.partition("://")
    return f"{scheme}://{cred.split(':')[0]}:***@{tail}"
