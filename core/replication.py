"""Synchronous replication that degrades deliberately (docs/recovery.md).

With a synchronous standby, a commit returns once the standby has it: ingest acknowledges a
reading to the broker only then, so "stored" means "on two machines". When the standby is lost,
PostgreSQL makes every commit wait for it — ingest stops, readings pile up on the broker. The
guard (`wastepilot db guard`, one process beside the database) watches the primary: when no
standby named ``db_standby_name`` has streamed for ``db_standby_grace_s`` seconds it
switches synchronous replication off (``ALTER SYSTEM``, a reload: the waiting commits return at
once), says so in the log at CRITICAL and in its metrics (an alert), and switches it back on
once the standby streams again — to :func:`synchronous_names` of the standby, written with
``ALTER SYSTEM`` too, so that it holds whether the server's files named the standby (locally)
or an ``ALTER SYSTEM`` did (compose). Whether it is off is read from the server at every look,
never remembered: another hand (`services up`) may have switched it. The decision is
:class:`SyncGuard`, pure; the SQL is below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, LiteralString

from psycopg import sql

Action = Literal["degrade", "restore"]

# the standbys of the configured names that stream now (any sync state)
STREAMING: LiteralString = (
    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
    "AND application_name = ANY(%s)"
)
# whether synchronous replication is off now (no standby named)
DEGRADED: LiteralString = "SELECT current_setting('synchronous_standby_names') = ''"
IN_RECOVERY: LiteralString = "SELECT pg_is_in_recovery()"
DEGRADE: LiteralString = "ALTER SYSTEM SET synchronous_standby_names = ''"
UNDO: LiteralString = "ALTER SYSTEM RESET synchronous_standby_names"
RELOAD: LiteralString = "SELECT pg_reload_conf()"
WAITING_COMMITS: LiteralString = (
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
)


def synchronous_names(standby: str) -> str:
    """synchronous_standby_names for one standby: any one of it must confirm each commit."""
    return f'ANY 1 ("{standby}")'


def restore(standby: str) -> sql.Composed:
    """Synchronous replication on again, for the standby (ALTER SYSTEM takes no parameters)."""
    return sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(
        sql.Literal(synchronous_names(standby))
    )


@dataclass(slots=True)
class SyncGuard:
    """When to switch synchronous replication off and on again: off once no standby has
    streamed for ``grace_s`` seconds, on as soon as one streams."""

    grace_s: float
    degraded: bool = False
    missing_since: float | None = None

    def step(self, now: float, streaming: bool) -> Action | None:
        if streaming:
            self.missing_since = None
            if self.degraded:
                self.degraded = False
                return "restore"
            return None
        if self.missing_since is None:
            self.missing_since = now
        if not self.degraded and now - self.missing_since >= self.grace_s:
            self.degraded = True
            return "degrade"
        return None
