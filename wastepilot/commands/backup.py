"""`wastepilot backup ...`: backups of the local database (pgBackRest) and broker, and restores
to a point in time (docs/recovery.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.settings import get_settings
from wastepilot.localservices import backup

backup_app = typer.Typer(
    help="Backups of the local database and broker; restores to a point in time.",
    no_args_is_help=True,
)
console = Console()


@backup_app.command("run")
def backup_run(
    kind: Annotated[
        str, typer.Option(help="full, diff or incr (full when there is none)")
    ] = "incr",
) -> None:
    """Back up the database and the broker's store and identities now."""
    with console.status(f"{kind} backup of the database, then a copy of the broker's files"):
        made = backup.back_up(get_settings(), kind)
    console.print(
        f"backup {made['label']} ({made['kind']}) taken, up to {made['stop']:%Y-%m-%d %H:%M:%S} UTC"
    )


@backup_app.command("list")
def backup_list() -> None:
    """The backups kept (oldest first); WAL archived since lets a restore reach any later time."""
    table = Table("label", "kind", "started (UTC)", "finished (UTC)", "broker copied")
    for b in backup.backups(get_settings()):
        when = [f"{b[k]:%Y-%m-%d %H:%M:%S}" for k in ("start", "stop")]
        table.add_row(b["label"], b["kind"], *when, "yes" if b["broker"] else "no")
    console.print(table)


@backup_app.command("restore")
def backup_restore(
    to: Annotated[
        str,
        typer.Option(
            help="The instant to restore to, ISO 8601 with its offset (2026-12-02T14:05:00Z)"
        ),
    ],
    into: Annotated[
        Path, typer.Option(help="A fresh folder for the restored cluster and broker files")
    ],
    port: Annotated[int, typer.Option(help="Port of the restored cluster")] = 55439,
) -> None:
    """Restore the database as it was at TO into a fresh cluster (started on PORT), and the
    broker's files of the newest backup before TO beside it. The live services are left alone."""
    try:
        instant = datetime.fromisoformat(to.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{to!r} is not an ISO 8601 instant", param_hint="--to") from None
    if instant.tzinfo is None:
        raise typer.BadParameter(
            "give the offset too (Z for UTC): a restore point must be exact", param_hint="--to"
        )
    with console.status(f"restoring to {instant.isoformat()} (the backup, then the WAL up to it)"):
        info, broker_dir = backup.restore(get_settings(), instant, into, port)
    console.print(f"restored database running: psql '{info}'")
    if broker_dir is None:
        console.print("[yellow]no broker copy taken before that instant[/]")
    else:
        console.print(f"broker store and identities of that time: {broker_dir}")
