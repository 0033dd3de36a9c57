"""Re-ingesting dead letters after a fix (a device registered, a limit raised, a bug mended)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from core import clock
from core.errors import ReplayConflict
from ingest import queries
from ingest.protocol import Validated
from ingest.validate import Limits
from ingest.writer import Writer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    replayed: int
    stored: int
    duplicates: int
    dead_again: int


def replay_dead_letters(
    db_url: str,
    limits: Limits,
    *,
    reason: str | None = None,
    limit: int = 10_000,
    dead_letter_max_bytes: int = 16 * 1024,
) -> ReplayResult:
    """Check each pending dead letter again under today's rules and registry.

    What is now valid is stored (idempotently); what is still bad becomes a new dead letter;
    the old row is marked replayed in the same transaction, so a replay never runs twice.
    Truncated payloads cannot be replayed and are left as they are.
    """
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            queries.DEAD_LETTERS_TO_REPLAY, {"reason": reason, "limit": limit}
        ).fetchall()
        conn.rollback()
    if not rows:
        return ReplayResult(0, 0, 0, 0)
    now = clock.now()
    messages = [(str(topic), bytes(payload), now.timestamp()) for _, topic, payload in rows]
    batch = [Validated.check(0, messages, limits, now)]
    ids = [int(i) for i, _, _ in rows]

    def mark(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        if conn.execute(queries.MARK_REPLAYED, (ids,)).rowcount != len(ids):
            raise ReplayConflict("another replay took some of these dead letters; run it again")

    # a replay keeps every row it re-dead-letters (they were kept once already)
    writer = Writer(
        db_url,
        prefix=limits.prefix,
        dead_letter_max_bytes=dead_letter_max_bytes,
        dead_letters_per_min=10**9,
        readings_per_min=limits.readings_per_min,
    )
    try:
        res = writer.write(batch, after=mark)
    finally:
        writer.close()
    log.info(
        "replayed %d dead letters: %d stored, %d already stored, %d still bad",
        len(rows),
        res.inserted,
        res.duplicates,
        res.dead_letters,
    )
    return ReplayResult(len(rows), res.inserted, res.duplicates, res.dead_letters)
