"""`wastepilot archive ...`: raw readings of old months to Parquet files and back
(analytics/archive.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from analytics import archive
from core.db import connect
from core.settings import get_settings

archive_app = typer.Typer(help="Archive old raw readings to Parquet, or bring them back.",
                          no_args_is_help=True)  # fmt: skip
console = Console()


def _month(text: str) -> date:
    try:
        return archive.parse_month(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@archive_app.command("run")
def archive_run(
    month: Annotated[
        str | None, typer.Argument(help="One month, YYYY-MM (default: every month that is due)")
    ] = None,
) -> None:
    """Archive a month's raw readings (or every month older than
    WASTEPILOT_ARCHIVE_AFTER_MONTHS): written, verified, then deleted from the database."""
    s = get_settings()
    with connect(s.db_url()) as conn:
        months = [_month(month)] if month else archive.due_months(conn, s)
        if not months:
            console.print("no month is due (WASTEPILOT_ARCHIVE_AFTER_MONTHS "
                          f"{s.archive_after_months or 'is unset'})")  # fmt: skip
        for m in months:
            console.print(f"{m:%Y-%m}: {archive.archive_month(conn, s, m)}")


@archive_app.command("restore")
def archive_restore(month: Annotated[str, typer.Argument(help="The month, YYYY-MM")]) -> None:
    """Bring an archived month's raw readings back into the database."""
    s = get_settings()
    with connect(s.db_url()) as conn:
        console.print(f"{month}: {archive.restore_month(conn, s, _month(month))}")


@archive_app.command("list")
def archive_list() -> None:
    """The months archived, or on their way."""
    s = get_settings()
    with connect(s.db_url()) as conn:
        rows = archive.listing(conn)
    table = Table("month", "state", "readings", "bytes", "bytes a reading", "file")
    for r in rows:
        per = f"{r['bytes'] / r['rows']:.1f}" if r["rows"] and r["bytes"] else ""
        table.add_row(f"{r['month']:%Y-%m}", r["state"], str(r["rows"] or ""),
                      str(r["bytes"] or ""), per, r["path"])  # fmt: skip
    console.print(table if rows else "nothing is archived")
