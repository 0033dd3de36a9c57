"""`wastepilot devices ...`: disposer meters in the registry, each with its broker login
(register one or a sheet of them, reissue a password, decommission): core/devices.py."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core import devices
from core.db import connect
from core.registry import Device
from core.settings import Settings, get_settings
from core.topics import KIND_FAMILY, V1_KIND, maker_root

devices_app = typer.Typer(help="Disposer meters (registry) and their broker logins.",
                          no_args_is_help=True)  # fmt: skip
console = Console()


def _admin_url(s: Settings) -> str | None:
    url = s.broker_admin_url()
    if url is None:
        console.print(
            "[yellow]no broker admin identity (WASTEPILOT_MQTT_ADMIN_URL): the registry changes, "
            "the device's broker login does not[/]"
        )
    return url


class DeviceKind(StrEnum):
    """The device kinds (core/topics.py KIND_FAMILY)."""

    V1 = "wastepilot-v1"
    SHELLY = "shelly-gen2"
    TASMOTA = "tasmota"
    WMBUS = "wmbus"


@devices_app.command("add")
def devices_add(
    device_id: Annotated[
        str, typer.Argument(help="Device id: upper-case letters, digits, - and _ (FWD-000123)")
    ],
    household: Annotated[str, typer.Option(help="Household reference (created if new)")],
    model: Annotated[str, typer.Option(help="Meter model")] = "unknown",
    cohort: Annotated[str, typer.Option(help="Cohort of a new household")] = "default",
    kind: Annotated[
        DeviceKind,
        typer.Option(help="How it speaks: the v1 contract, or its maker's format (docs/devices/)"),
    ] = DeviceKind.V1,
) -> None:
    """Register a device in a household with its broker login (password printed once): the
    device may publish only under its own topics (the v1 contract's, or for a maker's kind its
    own <prefix>/<family>/<id>/ tree); ingest accepts registered devices."""
    s = get_settings()
    with connect(s.db_url()) as conn:
        logins = devices.register(
            conn, [Device(device_id, household, model, kind=kind.value)], _admin_url(s),
            cohort=cohort,
        )  # fmt: skip
    console.print(f"device {device_id} registered ({household}, {kind.value})")
    family = KIND_FAMILY[kind.value]
    if family:
        console.print(f"topic prefix: {maker_root(s.topic_prefix, family, device_id)}")
    for login in logins:
        console.print(f"MQTT login (shown once): username and client id {device_id}, password:")
        print(login.password)  # the one time it is shown: plain, for scripts


@devices_app.command("import")
def devices_import(
    sheet: Annotated[
        typer.FileText, typer.Argument(help="CSV: device_id,household[,model[,cohort]]")
    ],
    out: Annotated[
        Path, typer.Option(help="Where the logins are written (CSV, readable by you only)")
    ],
) -> None:
    """Register many devices at once, all or none; their logins (device_id,username,password)
    are written once to --out, which must not exist yet. A kind column (wastepilot-v1,
    shelly-gen2, tasmota, wmbus) is optional."""
    import csv

    rows = [r for r in csv.DictReader(sheet) if any(v.strip() for v in r.values() if v)]
    missing = [
        i + 2 for i, r in enumerate(rows) if not r.get("device_id") or not r.get("household")
    ]
    if not rows or missing:
        raise typer.BadParameter(
            "the sheet needs device_id and household on every row "
            + (f"(line {missing[0]})" if missing else "(no rows)")
        )
    if out.exists():
        raise typer.BadParameter(f"{out} exists: logins are written to a new file only")
    s = get_settings()
    devs: list[Device] = []
    cohorts: dict[str, str] = {}
    for r in rows:
        model = (r.get("model") or "unknown").strip()
        kind = (r.get("kind") or V1_KIND).strip()
        devs.append(Device(r["device_id"].strip(), r["household"].strip(), model, kind=kind))
        cohorts[devs[-1].household_ref] = (r.get("cohort") or "default").strip()
    # the file first: logins are shown once, so there must be somewhere to put them
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        try:
            with connect(s.db_url()) as conn:
                logins = devices.register(conn, devs, _admin_url(s), cohort=cohorts)
        except BaseException:
            out.unlink()
            raise
        w = csv.writer(f)
        w.writerow(["device_id", "username", "password"])
        w.writerows([x.device_id, x.device_id, x.password] for x in logins)
    console.print(f"{len(rows)} devices registered; {len(logins)} logins written to {out}")


@devices_app.command("reissue")
def devices_reissue(device_id: str) -> None:
    """A new broker password for a device (printed once); its live connection is dropped."""
    s = get_settings()
    url = _admin_url(s)
    if url is None:
        raise typer.Exit(1)
    with connect(s.db_url()) as conn:
        login = devices.reissue(conn, device_id, url)
    console.print(f"new password for {device_id} (shown once):")
    print(login.password)


@devices_app.command("decommission")
def devices_decommission(device_id: str) -> None:
    """Take a device out of the pilot: ingest refuses its readings and its broker login goes
    (its live connection is dropped)."""
    s = get_settings()
    with connect(s.db_url()) as conn:
        devices.decommission(conn, device_id, _admin_url(s))
    console.print(f"device {device_id} decommissioned")
