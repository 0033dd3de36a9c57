"""Getting a database ready for the product: migrations, then the council reference data (both
idempotent). Used by `wastepilot migrate`, `wastepilot run` and the tests' fresh databases."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from core.db import connect
from core.migrate import MIGRATIONS_DIR, migrate
from core.settings import Settings


def prepare_database(s: Settings) -> list[str]:
    """Apply pending migrations and load the council registry; what was done, one line each."""
    from bids.records import load_reference_councils

    done = [
        f"applied {m.version:03d}_{m.name}"
        for m in migrate(s.db_owner_url(), s.migrations_dir or MIGRATIONS_DIR)
    ]
    with connect(s.db_url()) as conn:
        added = load_reference_councils(conn)
    if added:
        done.append(
            f"council registry: {added} councils loaded from mySociety's local authority register"
        )
    return done


def database_url(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server, as the same user."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def fresh_database(admin_url: str, name: str, *, migrated: bool = True) -> str:
    """Drop and create database ``name`` (tests, benchmarks), migrated unless told not to; its
    URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(admin_url, name)
    if migrated:
        migrate(url)
    return url
