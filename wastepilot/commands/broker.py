"""`wastepilot broker ...`: the broker's identities where the broker is not the local one
(compose): the first dynamic-security file, then roles and service identities."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core.brokeradmin import BrokerAdmin, initial_config
from core.settings import get_settings

broker_app = typer.Typer(help="Broker identities (dynamic security).", no_args_is_help=True)
console = Console()


@broker_app.command("init-file")
def init_file(
    path: Annotated[Path, typer.Argument(help="The plugin's config file, e.g. /mosquitto/data/…")],
    admin_password: Annotated[
        str, typer.Option(envvar="MQTT_ADMIN_PASSWORD", help="Password of wp-admin")
    ],
    owner: Annotated[
        int, typer.Option(help="Numeric uid:gid owner of the file (the image's mosquitto: 1883)")
    ] = 1883,
) -> None:
    """Write the dynamic-security file a new broker starts from (deny by default, only
    wp-admin); an existing file is left alone: the broker keeps its identities in it."""
    if path.exists():
        console.print(f"{path} exists: left as it is")
        return
    if len(admin_password) < 12:
        raise typer.BadParameter("the admin password needs 12 characters or more")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(initial_config(admin_password, get_settings().topic_prefix), f, indent=2)
    if os.geteuid() == 0:
        os.chown(path, owner, owner)
    console.print(f"wrote {path}")


@broker_app.command("provision")
def provision(
    ingest_password: Annotated[
        str, typer.Option(envvar="MQTT_INGEST_PASSWORD", help="Password of wp-ingest")
    ],
    simulator_password: Annotated[
        str, typer.Option(envvar="MQTT_SIMULATOR_PASSWORD", help="Password of wp-simulator")
    ],
) -> None:
    """Create or update the roles (device, ingest, simulator, admin) and the service identities
    over the control topic, as the admin identity (WASTEPILOT_MQTT_ADMIN_URL). Idempotent."""
    s = get_settings()
    url = s.broker_admin_url()
    if url is None:
        raise typer.BadParameter("set WASTEPILOT_MQTT_ADMIN_URL (the wp-admin identity)")
    with BrokerAdmin(url) as broker:
        broker.provision(
            s.topic_prefix,
            {"ingest": ingest_password, "simulator": simulator_password},
            test_root=None,
        )
    console.print("broker roles and service identities are up to date")
