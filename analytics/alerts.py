"""Field-visit alerts: each device check's finding (analytics/anomalies.py) as an alert per
device and check with a lifecycle, evaluated after every device-health run:

    found  ──(found for ALERTS_OPEN_AFTER_MIN)──▶  open  ──(a person)──▶  acknowledged
      │ (gone before that: resolved quietly)        │                           │
      └──────────────────────────────────────────────┴── resolved ◀─────────────┘
               by the check no longer finding it for ALERTS_RESOLVE_AFTER_MIN, or by a person

One live alert per device and check (a unique index): a finding that is still there refreshes
it, never makes another. Opening tells the rota's first person (an outbox message written in the
same transaction, core/outbox.py); an alert left unacknowledged for ALERTS_ESCALATE_AFTER_H
tells the next person on the rota, and so on. Resolving sends nothing. Every change is a row of
``alert_history``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analytics import queries as q
from core import clock, display
from core.db import Conn
from core.errors import Conflict, NotFound
from core.outbox import Message, enqueue
from core.settings import Settings

Finding = tuple[str, str, str, str]  # (kind, device_id, household_ref, detail)


@dataclass(slots=True)
class Evaluated:
    found: int = 0
    opened: int = 0
    escalated: int = 0
    resolved: int = 0


def evaluate(conn: Conn, findings: Sequence[Finding], s: Settings, now: datetime) -> Evaluated:
    """Move every alert on by this run's findings (in the caller's transaction)."""
    out = Evaluated(found=len(findings))
    live = {(r[1], r[2]): r for r in conn.execute(q.LIVE_ALERTS).fetchall()}
    held = {(str(k), str(d)): int(i) for k, d, i in conn.execute(q.HELD_BACK)}
    open_after = timedelta(minutes=s.alerts_open_after_min)
    resolve_after = timedelta(minutes=s.alerts_resolve_after_min)
    for kind, device, household, detail in findings:
        if held.pop((kind, device), None) is not None:
            continue  # a person resolved it while found: not raised again until it clears
        alert = live.pop((kind, device), None)
        if alert is None:
            row = conn.execute(q.NEW_ALERT, (kind, device, household, detail, now, now)).fetchone()
            assert row is not None  # noqa: S101  (INSERT ... RETURNING)
            _history(conn, int(row[0]), "found", None, detail)
            alert_id, state, first_found = int(row[0]), "pending", now
        else:
            alert_id, state, first_found = int(alert[0]), str(alert[3]), alert[4]
            if alert[5] is not None:
                _history(conn, alert_id, "found again", None, detail)
            conn.execute(q.ALERT_FOUND, (detail, now, alert_id))
        if state == "pending" and now - first_found >= open_after:
            conn.execute(q.OPEN_ALERT, (now, alert_id))
            _history(conn, alert_id, "opened", None, None)
            out.opened += _tell(conn, alert_id, 0, "alert_opened", s, now)
    for alert in live.values():  # no longer found
        alert_id, state, clear_since = int(alert[0]), str(alert[3]), alert[5]
        if state == "pending":
            conn.execute(q.RESOLVE_ALERT, (now, None, "gone before it opened", False, alert_id))
            _history(conn, alert_id, "cleared", None, "gone before it opened")
        elif clear_since is None:
            conn.execute(q.ALERT_CLEARING, (now, alert_id))
            _history(conn, alert_id, "clearing", None, None)
        elif now - clear_since >= resolve_after:
            note = f"the check no longer finds it (since {display.when(clear_since)})"
            conn.execute(q.RESOLVE_ALERT, (now, None, note, False, alert_id))
            _history(conn, alert_id, "resolved", None, note)
            out.resolved += 1
    if held:  # found no more: a new finding may raise a new alert
        conn.execute(q.RELEASE_HELD, (list(held.values()),))
    out.escalated = _escalate(conn, s, now)
    return out


def _escalate(conn: Conn, s: Settings, now: datetime) -> int:
    """Tell the next person on the rota of each alert open and unacknowledged too long."""
    if len(s.alerts_rota) < 2:
        return 0
    due = now - timedelta(hours=s.alerts_escalate_after_h)
    told = 0
    for alert_id, level in conn.execute(q.ALERTS_TO_ESCALATE, (due, len(s.alerts_rota) - 1)):
        nxt = int(level) + 1
        conn.execute(q.ESCALATE_ALERT, (nxt, now, alert_id))
        _history(conn, int(alert_id), "escalated", None, f"told {s.alerts_rota[nxt]}")
        told += _tell(conn, int(alert_id), nxt, "alert_escalated", s, now)
    return told


def _tell(conn: Conn, alert_id: int, level: int, template: str, s: Settings, now: datetime) -> int:
    """Queue the message to the rota's person at ``level`` (none when the rota is empty)."""
    if level >= len(s.alerts_rota):
        return 0
    row = conn.execute(q.ALERT, (alert_id,)).fetchone()
    assert row is not None  # noqa: S101
    kind, device, household, detail, first_found, opened_at = row
    personalisation = {
        "what": display.words(str(kind)).lower(),
        "household": household,
        "device": device,
        "detail": detail,
        "since": display.when(first_found),
        "open_for": display.duration(now - opened_at),
        "escalate_after": display.duration(timedelta(hours=s.alerts_escalate_after_h)),
        "link": f"{s.public_url.rstrip('/')}/analysts/alerts#alert-{alert_id}",
    }
    msg = Message(f"alert:{alert_id}:told:{level}", template, s.alerts_rota[level],
                  personalisation, topic=f"alert:{alert_id}")  # fmt: skip
    return int(enqueue(conn, msg))


def _history(conn: Conn, alert_id: int, action: str, actor: str | None, note: str | None) -> None:
    conn.execute(q.ALERT_HISTORY, (alert_id, action, actor, note, clock.now()))


def _live(conn: Conn, alert_id: int) -> str:
    """The alert's state, locked; NotFound or Conflict (resolved) otherwise."""
    row = conn.execute(q.ALERT_STATE, (alert_id,)).fetchone()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    if row[0] == "resolved":
        raise Conflict(f"alert {alert_id} is resolved already")
    return str(row[0])


def acknowledge(conn: Conn, alert_id: int, by: str) -> None:
    """A person takes it on: no further escalation."""
    state = _live(conn, alert_id)
    if state == "pending":
        raise Conflict(f"alert {alert_id} is not open yet")
    if state == "acknowledged":
        raise Conflict(f"alert {alert_id} is acknowledged already")
    conn.execute(q.ACKNOWLEDGE_ALERT, (by, alert_id))
    _history(conn, alert_id, "acknowledged", by, None)


def assign(conn: Conn, alert_id: int, to: str, by: str) -> None:
    _live(conn, alert_id)
    conn.execute(q.ASSIGN_ALERT, (to, alert_id))
    _history(conn, alert_id, "assigned", by, f"to {to}")


def resolve(conn: Conn, alert_id: int, by: str, note: str) -> None:
    """A person closes it, saying why (a visit done, a false alarm)."""
    _live(conn, alert_id)
    # it holds back a new alert while the check still finds what it found
    conn.execute(q.RESOLVE_ALERT, (None, by, note, True, alert_id))
    _history(conn, alert_id, "resolved", by, note)


def list_alerts(
    conn: Conn,
    *,
    state: str | None = None,
    kind: str | None = None,
    household: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Alerts newest first: those not resolved (``state`` None), one state, or ``"all"``."""
    from psycopg.rows import dict_row

    params = {"state": state, "kind": kind, "household": household, "limit": limit}
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.LIST_ALERTS, params).fetchall()


def household_alerts(conn: Conn, ref: str, limit: int = 20) -> list[dict[str, Any]]:
    """A household's latest alerts, whatever their state, each with its ``history``."""
    from psycopg.rows import dict_row

    rows = list_alerts(conn, state="all", household=ref, limit=limit)
    with conn.cursor(row_factory=dict_row) as cur:
        events = cur.execute(q.HISTORIES_OF, ([r["id"] for r in rows],)).fetchall()
    for r in rows:
        r["history"] = [e for e in events if e["alert_id"] == r["id"]]
    return rows


def history(conn: Conn, alert_id: int) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.ALERT_HISTORY_OF, (alert_id,)).fetchall()
