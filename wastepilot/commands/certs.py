"""`wastepilot certs ...`: a private CA and server certificates for a pilot without a public CA
(wastepilot/localservices/certs.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from wastepilot.localservices import certs

certs_app = typer.Typer(help="TLS certificates (a private CA).", no_args_is_help=True)
console = Console()


@certs_app.command("issue")
def issue(
    hosts: Annotated[
        list[str],
        typer.Argument(help="Names devices or browsers use: DNS names or IP addresses"),
    ],
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the CA and certificates live")
    ] = Path("deploy/certs"),
    stem: Annotated[
        str, typer.Option(help="File name stem: broker (Mosquitto) or site (the proxy)")
    ] = "broker",
    days: Annotated[int, typer.Option(min=1, max=825, help="Validity in days")] = certs.SERVER_DAYS,
    owner: Annotated[
        int | None,
        typer.Option(help="Numeric uid to own the key (the broker image's mosquitto: 1883)"),
    ] = None,
) -> None:
    """Issue (or renew) a server certificate signed by the CA in --dir, making the CA the first
    time. The CA is kept: devices pinning ca.pem trust the renewed certificate as they are.
    Then reload the server: `docker compose kill -s HUP mosquitto` (no connection is dropped)
    or `docker compose exec proxy caddy reload --config /etc/caddy/Caddyfile`."""
    made = certs.issue_server(folder, hosts, stem=stem, days=days)
    if owner is not None:  # the broker reads its key again on SIGHUP, as its own user
        os.chown(made.key, owner, owner)
    console.print(f"wrote {made.cert} and {made.key} (valid until {made.not_after:%Y-%m-%d})")
    console.print(f"devices pin {made.ca}; keep {folder / certs.CA_KEY} secret")
