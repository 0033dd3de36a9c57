"""What the people who book workshops are told, and waiting-list offers (issue 31).

Every message is queued in the outbox (core/outbox.py) in the transaction of its event, with
the event as its reference, so an event tells a person once:

- ``registration:<id>:registered`` — a place, with the workshop's calendar file;
- ``registration:<id>:waiting`` — on the waiting list, at which position;
- ``registration:<id>:offered`` — a place freed up and is held for them until a deadline
  (``WASTEPILOT_OFFER_HOLD_H``, never past the start), with a link to accept or decline it;
- ``registration:<id>:lapsed`` — the offer ran out and the place went to the next person;
- ``registration:<id>:reminder`` — ``WASTEPILOT_REMINDER_DAYS`` before the workshop;
- ``workshop:<id>:cancelled:<registration>`` and ``workshop:<id>:changed:<version>:<registration>``
  — to everyone with a place, an offer or a waiting-list spot, with an updated calendar file.

Offers: the database's promotion (migration 020) marks the first person waiting ``offered``
whenever a place frees up; ``stamp_offers`` — called in the same transaction by whatever freed
it, and by the ``workshop_offers`` job each minute as a backstop — gives each new offer its
deadline and secret link and queues its e-mail. ``lapse_offers`` (the same job) ends offers past
their deadline, which frees the place for the next person.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.rows import dict_row

from bids import queries as q
from core import clock, display, outbox
from core.db import Conn
from core.errors import Conflict, NotFound
from core.outbox import Message
from core.settings import Settings, get_settings

Row = dict[str, Any]


def _workshop_fields(w: Row) -> dict[str, Any]:
    local = ZoneInfo(str(w["timezone"]))
    return {
        "title": w["title"],
        "where": f"{w['venue']}, {w['town']}",
        "when": display.when(w["starts_at"].astimezone(local)),
        "until": w["ends_at"].astimezone(local).strftime("%H:%M"),
    }


def _calendar(w: Row, *, sequence: int = 0, cancelled: bool = False) -> dict[str, Any]:
    return {
        "uid": f"workshop-{w['id']}@wastepilot",
        "start": w["starts_at"].isoformat(),
        "end": w["ends_at"].isoformat(),
        "summary": w["title"],
        "location": f"{w['venue']}, {w['town']}",
        "sequence": sequence,
        "cancelled": cancelled,
    }


def _workshop(conn: Conn, workshop_id: int) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.WORKSHOP_FOR_MESSAGE, (workshop_id,)).fetchone()


def confirm(conn: Conn, reg: Row) -> None:
    """Queue a person's confirmation (a place, with the calendar file) or waiting-list notice,
    for a workshop still to come; attendance recorded afterwards tells nobody anything."""
    if reg["status"] not in ("registered", "waiting") or not reg["email"]:
        return
    w = _workshop(conn, int(reg["workshop_id"]))
    if w is None or w["status"] != "planned" or w["starts_at"] <= clock.now():
        return
    fields = {"name": reg["person_name"] or "", **_workshop_fields(w)}
    fields["position"] = reg.get("waiting_position")
    if reg["status"] == "registered":
        fields["calendar"] = _calendar(w)
    template = "workshop_confirmed" if reg["status"] == "registered" else "workshop_waiting"
    outbox.enqueue(
        conn,
        Message(
            f"registration:{reg['id']}:{reg['status']}",
            template,
            reg["email"],
            fields,
            topic=f"workshop:{reg['workshop_id']}",
        ),
    )


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def stamp_offers(conn: Conn, s: Settings | None = None) -> int:
    """Give each new offer its deadline and link, and queue its e-mail (the caller's
    transaction); an offer for a workshop that has started becomes a place at once."""
    s = s or get_settings()
    now = clock.now()
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(q.NEW_OFFERS).fetchall()
    for r in rows:
        if r["starts_at"] <= now:
            conn.execute(q.UPDATE_REGISTRATION_STATUS, ("registered", r["id"]))
            continue
        token = secrets.token_urlsafe(24)
        expires = min(now + timedelta(hours=s.offer_hold_h), r["starts_at"])
        conn.execute(q.STAMP_OFFER, (expires, token_hash(token), r["id"]))
        if not r["email"]:
            continue  # erased: nobody to tell; the offer lapses at its deadline
        w = _workshop(conn, int(r["workshop_id"]))
        assert w is not None  # noqa: S101  (the registration references it)
        local = ZoneInfo(str(w["timezone"]))
        fields = {
            "name": r["person_name"] or "",
            **_workshop_fields(w),
            "deadline": display.when(expires.astimezone(local)),
            "link": f"{s.public_url.rstrip('/')}/offers/{token}",
        }
        outbox.enqueue(
            conn,
            Message(
                f"registration:{r['id']}:offered",
                "workshop_offer",
                r["email"],
                fields,
                topic=f"workshop:{r['workshop_id']}",
            ),
        )
    return len(rows)


def lapse_offers(conn: Conn, s: Settings) -> int:
    """End the offers past their deadline (each place goes to the next person waiting, whose
    offer is stamped here too) and tell the people whose offer lapsed; returns how many."""
    with conn.cursor(row_factory=dict_row) as cur:
        lapsed = cur.execute(q.LAPSE_OFFERS, (clock.now(),)).fetchall()
    for r in lapsed:
        w = _workshop(conn, int(r["workshop_id"]))
        if r["email"] and w is not None and w["status"] == "planned":  # cancelled: told so
            fields = {"name": r["person_name"] or "", **_workshop_fields(w)}
            msg = Message(f"registration:{r['id']}:lapsed", "workshop_offer_lapsed", r["email"],
                          fields, topic=f"workshop:{r['workshop_id']}")  # fmt: skip
            outbox.enqueue(conn, msg)
    stamp_offers(conn, s)
    return len(lapsed)


def workshop_offers(conn: Conn, s: Settings) -> int:
    """The scheduled job (every minute): lapse what ran out, stamp what is new."""
    with conn.transaction():
        return lapse_offers(conn, s)


def offer_by_token(conn: Conn, token: str) -> Row:
    """The offer behind a link's secret, with its workshop; NotFound once answered or lapsed,
    or when the workshop was cancelled."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.OFFER_BY_TOKEN, (token_hash(token),)).fetchone()
    if row is None:
        raise NotFound("this offer has been answered or has run out")
    return row


def answer_offer(conn: Conn, s: Settings, token: str, accept: bool) -> Row:
    """The person takes the place (registered: their confirmation is queued) or declines it
    (cancelled: the next person is offered it)."""
    offer = offer_by_token(conn, token)
    if offer["offer_expires_at"] <= clock.now():
        raise Conflict("this offer ran out: the place has gone to the next person waiting")
    new = "registered" if accept else "cancelled"
    conn.execute(q.UPDATE_REGISTRATION_STATUS, (new, offer["id"]))
    stamp_offers(conn, s)
    if accept:
        confirm(conn, {**offer, "status": "registered"})
    return {**offer, "status": new}


def remind(conn: Conn, s: Settings) -> int:
    """The ``workshop_reminders`` job: queue each reminder due (once per registration)."""
    now = clock.now()
    queued = 0
    with conn.transaction():
        with conn.cursor(row_factory=dict_row) as cur:
            due = cur.execute(q.REMINDERS_DUE, {"now": now, "days": s.reminder_days}).fetchall()
        for r in due:
            fields = {"name": r["person_name"] or "", **_workshop_fields(r)}
            fields["calendar"] = _calendar(r)
            msg = Message(f"registration:{r['registration_id']}:reminder", "workshop_reminder",
                          r["email"], fields, topic=f"workshop:{r['id']}")  # fmt: skip
            queued += outbox.enqueue(conn, msg)
    return queued


NOTICE_FIELDS = ("starts_at", "ends_at", "venue", "town", "timezone")


def workshop_changed(conn: Conn, before: Row, after: Row) -> int:
    """Tell everyone with a place, an offer or a waiting-list spot that their workshop was
    cancelled, or moved (time or place); returns how many messages were queued."""
    if after["status"] == "cancelled" and before["status"] != "cancelled":
        template, version = "workshop_cancelled", "cancelled"
    elif after["status"] == "planned" and any(before[k] != after[k] for k in NOTICE_FIELDS):
        template = "workshop_changed"
        version = f"changed:{int(after['updated_at'].timestamp() * 1_000_000)}"
    else:
        return 0
    if after["starts_at"] <= clock.now() and template == "workshop_changed":
        return 0
    seq = int(after["updated_at"].timestamp())
    w = {**after}
    queued = 0
    with conn.cursor(row_factory=dict_row) as cur:
        people = cur.execute(q.PEOPLE_TO_TELL, (after["id"],)).fetchall()
    for r in people:
        fields = {"name": r["person_name"] or "", **_workshop_fields(w), "status": r["status"]}
        fields["was_when"] = _workshop_fields(before)["when"]
        fields["was_where"] = _workshop_fields(before)["where"]
        if r["status"] in ("registered", "offered") or template == "workshop_cancelled":
            fields["calendar"] = _calendar(
                w, sequence=seq, cancelled=template == "workshop_cancelled"
            )
        ref = f"workshop:{after['id']}:{version}:{r['id']}"
        queued += outbox.enqueue(
            conn, Message(ref, template, r["email"], fields, topic=f"workshop:{after['id']}")
        )
    return queued


def sent_for_workshop(conn: Conn, workshop_id: int) -> list[Row]:
    """The workshop's messages, newest first, for the officers' page: to whom, what, when and
    its status (an erased person's rows show no address)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.WORKSHOP_MESSAGES, {"topic": f"workshop:{workshop_id}"}).fetchall()
