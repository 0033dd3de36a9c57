"""Retention of raw readings: whole chunks older than the setting are dropped (`drop_chunks`);
the rollups of that period are brought up to date first and kept."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import psycopg

from analytics import queries as q
from analytics.rollups import rebuild
from core import clock

log = logging.getLogger(__name__)


def drop_raw(conn: psycopg.Connection[Any], retention_days: int) -> int:
    """Drop raw-reading chunks entirely older than `retention_days`; returns how many."""
    row = conn.execute(q.OLDEST_READING).fetchone()
    assert row is not None  # noqa: S101  (aggregate returns a row)
    oldest, cutoff = row[0], clock.now() - timedelta(days=retention_days)
    if oldest is None or oldest >= cutoff:
        return 0
    # the readings about to go may never have been rolled up (older than the late window when
    # they arrived): aggregate them now, so the rollups keep the period
    rebuild(conn, oldest, cutoff)
    with conn.transaction():
        got = conn.execute(q.DROP_READING_CHUNKS, (cutoff,)).fetchone()
    dropped = int(got[0]) if got else 0
    log.info("retention: dropped %d chunks of readings older than %s", dropped, cutoff)
    return dropped


def drop_dead_letters(conn: psycopg.Connection[Any], retention_days: int) -> int:
    """Delete dead letters (and their raw payloads) older than `retention_days`; how many."""
    cutoff = clock.now() - timedelta(days=retention_days)
    with conn.transaction():
        n = conn.execute(q.DROP_OLD_DEAD_LETTERS, (cutoff,)).rowcount
    log.info("retention: deleted %d dead letters received before %s", n, cutoff)
    return n
