"""Who is changing records (bid support, people, tokens, devices): the audit triggers read it
from the transaction; and audit rows for actions that change no row."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from core import queries as q


def set_actor(conn: psycopg.Connection[tuple[object, ...]], actor: str) -> None:
    """Name the actor of the current transaction in the audit log."""
    conn.execute(q.SET_ACTOR, (actor,))


def record(
    conn: psycopg.Connection[tuple[object, ...]],
    table: str,
    key: str,
    action: str,
    after: dict[str, object],
) -> None:
    """An audit row for an action that changes no row of its own (a device's broker password
    reissued): who (the transaction's actor), what, when."""
    conn.execute(q.AUDIT_RECORD, (table, key, action, Jsonb(after)))
