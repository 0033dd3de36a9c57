"""Running scheduled jobs (analytics' and bid support's): each runs under a database advisory
lock, so two scheduler processes never run the same job at the same time, and leaves a row in
`job_runs` (start, end, outcome, rows)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from core import queries
from core.db import Conn, connect
from core.settings import Settings

log = logging.getLogger(__name__)

JobFn = Callable[[Conn, Settings], int]


@dataclass(frozen=True, slots=True)
class Outcome:
    job: str
    outcome: str  # ok | failed | skipped
    rows: int | None
    detail: str


def run_job(db_url: str, name: str, fn: JobFn, settings: Settings) -> Outcome:
    """Run `fn` if no other process is running the job `name`; record the run either way."""
    with connect(db_url, autocommit=True) as conn:
        got = conn.execute(queries.JOB_TRY_LOCK, ("wastepilot-job:" + name,)).fetchone()
        if not got or not got[0]:
            _record(conn, name, "skipped", None, "another scheduler process is running this job")
            log.info("job %s skipped: running elsewhere", name)
            return Outcome(name, "skipped", None, "another scheduler process is running this job")
        try:
            row = conn.execute(
                queries.JOB_RUN_STARTED, (name, socket.gethostname(), os.getpid())
            ).fetchone()
            assert row is not None  # noqa: S101  (INSERT ... RETURNING)
            run_id = int(str(row[0]))
            try:
                rows = fn(conn, settings)
            except (psycopg.Error, OSError, ValueError, RuntimeError) as exc:
                # a failed run is recorded and the scheduler goes on; the next run retries
                log.exception("job %s failed", name)
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.rollback()
                _finish(conn, run_id, "failed", None, f"{type(exc).__name__}: {exc}")
                return Outcome(name, "failed", None, str(exc))
            _finish(conn, run_id, "ok", rows, "")
            log.info("job %s ok: %s rows", name, rows)
            return Outcome(name, "ok", rows, "")
        finally:
            conn.execute(queries.JOB_UNLOCK, ("wastepilot-job:" + name,))


def _record(conn: Conn, name: str, outcome: str, rows: int | None, detail: str) -> None:
    conn.execute(
        queries.JOB_RUN_RECORDED,
        (name, outcome, rows, detail, socket.gethostname(), os.getpid()),
    )


def _finish(conn: Conn, run_id: int, outcome: str, rows: int | None, detail: str) -> None:
    conn.execute(queries.JOB_RUN_FINISHED, (outcome, rows, detail, run_id))
