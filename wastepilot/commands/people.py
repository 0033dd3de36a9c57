"""`wastepilot users ...` and `wastepilot tokens ...`: people and their API tokens."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core import auth
from core.db import connect
from core.settings import get_settings

users_app = typer.Typer(help="People who use the API, with roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (bearer).", no_args_is_help=True)
console = Console()


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password (12+ characters): ")
    if getpass.getpass("again: ") != first:
        raise typer.BadParameter("the passwords differ")
    return first


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="analyst, officer or admin")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin")] = False,
) -> None:
    """Add a person (asks for the password; it is stored as an argon2 hash)."""
    with connect(get_settings().db_url()) as conn:
        auth.add_user(conn, username, role, _password(password_stdin))  # type: ignore[arg-type]
    console.print(f"user {username} added ({role})")


@users_app.command("list")
def users_list() -> None:
    """Everyone with an account."""
    with connect(get_settings().db_url()) as conn:
        rows = auth.list_users(conn)
    t = Table("user", "role", "created", "revoked", "active tokens")
    for name, role, created, revoked, tokens in rows:
        t.add_row(name, role, f"{created:%Y-%m-%d}", f"{revoked:%Y-%m-%d}" if revoked else "",
                  str(tokens))  # fmt: skip
    console.print(t)


@users_app.command("revoke")
def users_revoke(username: str) -> None:
    """Revoke a person: the account and all its tokens stop working."""
    with connect(get_settings().db_url()) as conn:
        auth.revoke_user(conn, username)
    console.print(f"user {username} revoked")


@tokens_app.command("create")
def tokens_create(
    username: str,
    scope: Annotated[str, typer.Option(help="read or write")] = "write",
    days: Annotated[float, typer.Option(min=0.01, max=366)] = 90,
    name: Annotated[str, typer.Option(help="What the token is for")] = "",
) -> None:
    """Create an API token for a user; it is printed once (only its hash is kept)."""
    with connect(get_settings().db_url()) as conn:
        tid, token = auth.create_token(conn, username, scope=scope, days=days, name=name)  # type: ignore[arg-type]
    console.print(f"token {tid} for {username} ({scope}, {days:g} days):")
    print(token)  # the one time it is shown: plain, for scripts


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token at once."""
    with connect(get_settings().db_url()) as conn:
        auth.revoke_token(conn, token_id)
    console.print(f"token {token_id} revoked")
