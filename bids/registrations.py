"""Registrations and attendance: places, the waiting list, status changes and erasure.

Capacity and the waiting list are held by the database (migrations 004 and 020): an insert that
finds the workshop full becomes `waiting`, and a place freed in a planned workshop is offered to
the first person waiting (`offered`, held until a deadline: bids/notices.py), in a workshop
already held given to them. This module adds the rules about which status may follow which.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from bids import notices
from bids import queries as q
from bids.errors import translated
from core import clock
from core.db import Conn
from core.errors import Conflict, NotFound
from core.outbox import normal_email

Row = dict[str, Any]

PLACE_TAKING = frozenset({"registered", "offered", "attended", "no_show"})

# status -> the statuses an officer may change it to
TRANSITIONS: dict[str, frozenset[str]] = {
    "registered": frozenset({"attended", "no_show", "cancelled"}),
    "waiting": frozenset({"registered", "cancelled"}),
    "offered": frozenset({"registered", "cancelled"}),  # accepted, declined (or it lapses)
    "lapsed": frozenset(),
    "attended": frozenset({"no_show", "registered"}),
    "no_show": frozenset({"attended", "registered"}),
    "cancelled": frozenset(),
}


def transition_problem(current: str, new: str) -> str | None:
    """Why a registration may not go from `current` to `new`, or None if it may."""
    if new == current:
        return None
    if new not in TRANSITIONS[current]:
        if current in ("cancelled", "lapsed"):
            return f"a {current} registration cannot change; register the person again"
        allowed = ", ".join(sorted(TRANSITIONS[current]))
        return f"a {current} registration can become only: {allowed}"
    return None


def attendance_problem(new: str, workshop_status: str, starts_at: datetime) -> str | None:
    """Attendance is recorded only for a workshop that is not cancelled and has started."""
    if new not in {"attended", "no_show"}:
        return None
    if workshop_status == "cancelled":
        return "the workshop is cancelled: no attendance can be recorded"
    if workshop_status != "held" and starts_at > clock.now():
        return "the workshop has not started yet: record attendance on or after the day"
    return None


def get_registration(conn: Conn, registration_id: int) -> Row:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.SELECT_REGISTRATION, (registration_id,)).fetchone()
    if row is None:
        raise NotFound(f"no registration with id {registration_id}")
    return row


def list_registrations(conn: Conn, workshop_id: int, status: str | None) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            q.LIST_REGISTRATIONS, {"workshop": workshop_id, "status": status}
        ).fetchall()


NAME_MAX = 200  # a person's name and role: the API's limit (api/schemas.py, Text)
EMAIL_MAX = 254


def register(
    conn: Conn,
    workshop_id: int,
    council_code: str,
    person_name: str,
    person_role: str | None,
    email: str,
    actor: str,
    status: str = "registered",
) -> Row:
    """Register a person for a workshop: a place if one is free, else the waiting list."""
    with translated():
        row = conn.execute(
            q.INSERT_REGISTRATION,
            (
                workshop_id,
                council_code,
                person_name,
                person_role,
                normal_email(email),
                status,
                actor,
            ),
        ).fetchone()
    assert row is not None  # noqa: S101  (INSERT ... RETURNING)
    got = get_registration(conn, int(row[0]))
    notices.confirm(conn, got)
    return got


def change_status(conn: Conn, registration_id: int, new: str) -> Row:
    """Move a registration on (attended, no-show, cancelled ...); a freed place is offered to
    the first person waiting (the database marks the offer, bids/notices.py stamps its deadline
    and queues its e-mail), in the same transaction."""
    with conn.cursor(row_factory=dict_row) as cur:
        state = cur.execute(q.SELECT_REGISTRATION_STATE, (registration_id,)).fetchone()
    if state is None:
        raise NotFound(f"no registration with id {registration_id}")
    problem = transition_problem(state["status"], new) or attendance_problem(
        new, state["workshop_status"], state["starts_at"]
    )
    if problem:
        raise Conflict(problem)
    with translated():
        conn.execute(q.UPDATE_REGISTRATION_STATUS, (new, registration_id))
    notices.stamp_offers(conn)  # a freed place's offer, in this transaction
    got = get_registration(conn, registration_id)
    if new == "registered" and state["status"] != "registered":
        notices.confirm(conn, got)  # from the waiting list or an offer: tell them
    return got


def erase(conn: Conn, registration_ids: list[int]) -> int:
    """Anonymise registrations: name, role and email go, here and in the audit log's earlier
    rows; council, workshop and status stay, so take-up counts do not change."""
    if not registration_ids:
        return 0
    conn.execute(q.ERASING_ON)
    erased = conn.execute(q.ERASE_REGISTRATIONS, (registration_ids,)).rowcount
    conn.execute(q.ERASE_AUDIT, ([str(i) for i in registration_ids],))
    conn.execute(q.ERASING_OFF)
    return erased


def erase_person(conn: Conn, email: str) -> int:
    """Erase every registration of one person (found by email); returns how many."""
    ids = [int(r[0]) for r in conn.execute(q.REGISTRATIONS_BY_EMAIL, (normal_email(email),))]
    return erase(conn, ids)


def erase_expired(conn: Conn, retention_days: int) -> int:
    """Erase attendees' personal data of workshops that ended more than `retention_days` ago."""
    params = {"now": clock.now(), "days": retention_days}
    ids = [int(r[0]) for r in conn.execute(q.EXPIRED_REGISTRATIONS, params)]
    return erase(conn, ids)


def erase_speaker(conn: Conn, name: str) -> int:
    """Erase a speaker: their entries go from every workshop's speakers and from the audit log's
    earlier rows of those workshops; returns how many workshops named them."""
    key = unicodedata.normalize("NFKC", name).strip().lower()
    ids = [int(r[0]) for r in conn.execute(q.WORKSHOPS_WITH_SPEAKER, {"name": key})]
    if not ids:
        return 0
    conn.execute(q.ERASING_ON)
    conn.execute(q.ERASE_SPEAKER, {"name": key, "ids": ids})
    conn.execute(q.ERASE_SPEAKER_AUDIT, {"name": key, "keys": [str(i) for i in ids]})
    conn.execute(q.ERASING_OFF)
    return len(ids)
