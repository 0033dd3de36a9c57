"""Who is changing bid-support records: the audit triggers read it from the transaction."""

from __future__ import annotations

import psycopg

from bids import queries as q


def set_actor(conn: psycopg.Connection[tuple[object, ...]], actor: str) -> None:
    """Name the actor of the current transaction in the audit log."""
    conn.execute(q.SET_ACTOR, (actor,))
