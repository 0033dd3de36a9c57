"""The analysts' daily digest: an e-mail each morning to every analyst (or admin) who asked for
one — the alerts opened since the day before, those still open, and yesterday's figures.

- **Opt in, confirmed, opt out.** A signed-in analyst gives an address on the alerts page
  (``subscribe``); a link e-mailed to it confirms it (``/digest/confirm/<secret>``), so a
  mistyped address never gets the pilot's alerts each morning. Every digest carries an
  unsubscribe link (``/digest/unsubscribe/<secret>``, no sign-in, also
  as a one-click ``List-Unsubscribe`` header and Notify's unsubscribe link): the digest is the
  one message that is not transactional. A revoked user's digest stops.
- **Once a day.** The ``analyst_digest`` job runs hourly and queues the day's digest from
  ``WASTEPILOT_DIGEST_HOUR`` (UK time) on; its reference (``digest:<user>:<day>``) queues it
  once however often the job runs, and a missed hour is made up at the next run. "New" is the
  24 hours before it is made; "still open", alerts opened before those and not resolved.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row

from analytics import queries as q
from core import clock, display
from core.db import Conn
from core.keepers import Keeper
from core.outbox import Message, enqueue, normal_email
from core.settings import Settings

LISTED = 20  # alerts named in one digest, of each kind; the rest counted
TOKEN_MAX = 64


def subscribe(conn: Conn, s: Settings, user_id: int, email: str) -> bool:
    """Ask for the daily digest for ``user_id`` at ``email``: the address is sent a link that
    confirms it, and the digest starts once it is opened. A new address replaces the last (and
    waits for its own confirmation); the same address again changes nothing. True if a
    confirmation was queued."""
    address = normal_email(email)
    row = conn.execute(
        q.DIGEST_SUBSCRIBE,
        {"user": user_id, "email": address, "unsubscribe": secrets.token_urlsafe(24),
         "confirm": secrets.token_urlsafe(24)},
    ).fetchone()  # fmt: skip
    if row is None:
        return False
    link = f"{s.public_url.rstrip('/')}/digest/confirm/{row[0]}"
    msg = Message(f"digest:{user_id}:confirm:{row[0][:12]}", "digest_confirm", address,
                  {"link": link}, topic="digest")  # fmt: skip
    return enqueue(conn, msg)


def confirm_by_link(conn: Conn, secret: str) -> str | None:
    """Start the digest of this confirmation link; the address, None if no digest waits on it
    (unknown, or confirmed already)."""
    if not secret or len(secret) > TOKEN_MAX:
        return None
    row = conn.execute(q.DIGEST_CONFIRM_LINK, (clock.now(), secret)).fetchone()
    return None if row is None else str(row[0])


def address_to_confirm(conn: Conn, secret: str) -> str | None:
    """The address a confirmation link is for, None if none waits on it."""
    if not secret or len(secret) > TOKEN_MAX:
        return None
    row = conn.execute(q.DIGEST_OF_CONFIRM, (secret,)).fetchone()
    return None if row is None else str(row[0])


def unsubscribe(conn: Conn, user_id: int) -> bool:
    return conn.execute(q.DIGEST_UNSUBSCRIBE, (user_id,)).rowcount > 0


def unsubscribe_by_link(conn: Conn, secret: str) -> str | None:
    """Stop the digest of this link; the address it went to, None if no digest has it."""
    if not secret or len(secret) > TOKEN_MAX:
        return None
    row = conn.execute(q.DIGEST_UNSUBSCRIBE_LINK, (secret,)).fetchone()
    return None if row is None else str(row[0])


def address_of_link(conn: Conn, secret: str) -> str | None:
    """The address the digest of this unsubscribe link goes to, None if none."""
    if not secret or len(secret) > TOKEN_MAX:
        return None
    row = conn.execute(q.DIGEST_OF_LINK, (secret,)).fetchone()
    return None if row is None else str(row[0])


def subscription(conn: Conn, user_id: int) -> tuple[str, bool] | None:
    """The address ``user_id`` asked for the digest at and whether it is confirmed; None if
    they did not."""
    row = conn.execute(q.DIGEST_OF, (user_id,)).fetchone()
    return None if row is None else (str(row[0]), bool(row[1]))


def _alert_lines(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"{display.words(r['kind'])} at household {r['household_ref']} (device {r['device_id']}),"
        f" {display.words(r['state']).lower()}, found {display.when(r['first_found'])}"
        for r in rows[:LISTED]
    ]


def contents(conn: Conn, s: Settings, now: datetime) -> dict[str, Any]:
    """What the digest made at ``now`` says (the personalisation of its template): alerts
    opened in the 24 hours before, those opened earlier and still open, and the figures of
    the UK day before."""
    since = now - timedelta(days=1)
    yesterday = now.astimezone(clock.LONDON).date() - timedelta(days=1)
    with conn.cursor(row_factory=dict_row) as cur:
        new = cur.execute(q.DIGEST_NEW_ALERTS, (since, now)).fetchall()
        still = cur.execute(q.DIGEST_OPEN_ALERTS, (since,)).fetchall()
        figures = cur.execute(q.DIGEST_DAY_FIGURES, (yesterday,)).fetchone() or {}
    return {
        "day": display.day(now.astimezone(clock.LONDON).date()),
        "yesterday": display.day(yesterday),
        "new_count": len(new),
        "new": _alert_lines(new),
        "new_more": max(0, len(new) - LISTED),
        "open_count": len(still),
        "open": _alert_lines(still),
        "open_more": max(0, len(still) - LISTED),
        "households": display.number(figures.get("households") or 0, 0),
        "uses": display.number(figures.get("uses") or 0, 0),
        "water_l": display.number(figures.get("water_l") or 0, 0),
        "energy_kwh": display.number((figures.get("energy_wh") or 0) / 1000, 1),
        "jams": display.number(figures.get("jams") or 0, 0),
        "leaks": display.number(figures.get("leaks") or 0, 0),
        "link": f"{s.public_url.rstrip('/')}/analysts/alerts",
    }


def queue_digests(conn: Conn, s: Settings) -> int:
    """The ``analyst_digest`` job: queue today's digest for each subscriber who has not had
    it, once it is ``WASTEPILOT_DIGEST_HOUR`` in the UK; returns how many were queued."""
    now = clock.now().astimezone(clock.LONDON)
    if now.hour < s.digest_hour:
        return 0
    queued = 0
    fields: dict[str, Any] | None = None
    for user_id, email, secret in conn.execute(q.DIGEST_SUBSCRIBERS).fetchall():
        fields = fields if fields is not None else contents(conn, s, now)
        link = f"{s.public_url.rstrip('/')}/digest/unsubscribe/{secret}"
        msg = Message(
            f"digest:{user_id}:{now.date().isoformat()}",
            "analyst_digest",
            str(email),
            {**fields, "unsubscribe": link},
            transactional=False,
            unsubscribe_url=link,
            topic="digest",
        )
        with conn.transaction():
            queued += enqueue(conn, msg)
    return queued


def _erase_person(conn: Conn, email: str) -> dict[str, int]:
    return {"digest_subscriptions": conn.execute(q.DIGEST_ERASE, (normal_email(email),)).rowcount}


# the digest's subscribers: a user's address (erased with the person)
KEEPER = Keeper("digest", person=("digest_subscriptions",), erase_person=_erase_person)
