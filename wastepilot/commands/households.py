"""`wastepilot households ...`: the pilot's household registry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from core.db import connect
from core.registry import Household, add_households
from core.settings import get_settings

households_app = typer.Typer(help="Pilot households (registry).", no_args_is_help=True)
console = Console()


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


@households_app.command("erase")
def households_erase(
    ref: Annotated[str, typer.Argument(help="The household that withdraws")],
    yes: Annotated[bool, typer.Option("--yes", help="Do it (it cannot be undone)")] = False,
) -> None:
    """Erase a household that leaves the pilot and withdraws its data: readings, statuses, dead
    letters, rollups, anomalies, devices (and their broker logins) and the household."""
    from api.keepers import OTHERS
    from core.audit import set_actor
    from core.devices import erase_household

    if not yes:
        raise typer.BadParameter("erasure cannot be undone: add --yes to go ahead")
    s = get_settings()
    with connect(s.db_url()) as conn:
        set_actor(conn, "wastepilot households erase")
        done = erase_household(
            conn, ref, s.broker_admin_url(), prefix=s.topic_prefix, others=OTHERS
        )
    console.print(
        f"household {done.household} erased: {done.devices} devices, {done.readings} readings, "
        f"{done.dead_letters} dead letters"
    )
