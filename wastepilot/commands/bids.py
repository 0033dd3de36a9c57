"""`wastepilot bids ...`: council reference data, the demo programme and data retention."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from core.db import connect
from core.settings import get_settings

bids_app = typer.Typer(
    help="Bid support: councils, demo programme, retention.", no_args_is_help=True
)
console = Console()


@bids_app.command("load-councils")
def load_councils() -> None:
    """Load the ONS April 2021 council lookup into the registry (councils already there stay)."""
    from bids.records import load_reference_councils

    with connect(get_settings().db_url()) as conn:
        added = load_reference_councils(conn)
    console.print(f"{added} councils added")


@bids_app.command("seed-demo")
def seed_demo(
    seed: Annotated[int, typer.Option(help="Random seed")] = 2012,
) -> None:
    """Seed a demo programme: five 2012 bid workshops, 130 councils attending, 118 bids."""
    from bids.demo import seed_demo as seed_fn
    from bids.report import take_up

    with connect(get_settings().db_url()) as conn:
        summary = seed_fn(conn, seed=seed)
        if not summary.seeded:
            console.print("the demo programme is already there (fund round 2012 exists)")
            return
        console.print(
            f"seeded {summary.workshops} workshops, {summary.registrations} registrations from "
            f"{summary.councils_registered} councils, {summary.bids} bids"
        )
        console.print(take_up(conn).sentence)


@bids_app.command("erase-expired")
def erase_expired(
    days: Annotated[
        int | None, typer.Option(min=1, help="Override WASTEPILOT_ATTENDEE_RETENTION_DAYS")
    ] = None,
) -> None:
    """Anonymise attendees of workshops that ended more than the retention period ago."""
    from bids.registrations import erase_expired as erase_fn
    from core.audit import set_actor

    s = get_settings()
    with connect(s.db_url()) as conn:
        set_actor(conn, "retention")
        n = erase_fn(conn, days or s.attendee_retention_days)
    console.print(f"{n} registrations anonymised")
