"""Workshop e-mails through the outbox (issue 31), against a real SMTP server on loopback: a
registration for a workshop to come confirms the place with a calendar file a maintained
library reads, a registration for a full workshop says where on the waiting list it is,
attendance recorded for a past workshop tells nobody, and erasing a person blanks their
messages."""

from __future__ import annotations

from datetime import timedelta

import icalendar
import psycopg
import pytest
from fastapi.testclient import TestClient

from core import clock
from core.outbox import SmtpMailer, send_due
from core.settings import Settings
from tests.fixtures.mail import Inbox, text_of
from tests.helpers import person, workshop_body

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]


def test_registrations_are_confirmed_with_a_calendar_file_or_put_on_the_waiting_list(
    db: Conn, api: TestClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    start = (clock.now() + timedelta(days=14)).replace(microsecond=0)
    w = api.post("/api/v1/workshops", json=workshop_body(
        title="Bid workshop, Leeds", capacity=2, starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=3)).isoformat())).json()["id"]  # fmt: skip
    statuses = [
        api.post(f"/api/v1/workshops/{w}/registrations", json=person(i)).json()["status"]
        for i in range(1, 4)
    ]
    assert statuses == ["registered", "registered", "waiting"]
    # a past workshop's attendance, recorded afterwards: nobody is written to
    past = clock.now() - timedelta(days=3)
    old = api.post("/api/v1/workshops", json=workshop_body(
        starts_at=past.isoformat(), ends_at=(past + timedelta(hours=2)).isoformat(),
        status="held")).json()["id"]  # fmt: skip
    r = api.post(f"/api/v1/workshops/{old}/registrations", json=person(9))
    assert r.status_code == 201, r.text
    s = Settings(mail_provider="smtp", smtp_url=f"smtp://127.0.0.1:{port}")
    assert send_due(db, s, SmtpMailer(f"smtp://127.0.0.1:{port}", s.mail_from)).sent == 3
    assert sorted(r[0] for r, _ in inbox.got) == [
        "person1@council.example.org", "person2@council.example.org",
        "person3@council.example.org",
    ]  # fmt: skip
    (confirmed,) = inbox.to("person1@council.example.org")
    assert confirmed["Subject"] == "Your place at Bid workshop, Leeds"
    (ics,) = [p for p in confirmed.walk() if p.get_content_type() == "text/calendar"]
    cal = icalendar.Calendar.from_ical(ics.get_payload(decode=True))
    (event,) = cal.walk("VEVENT")
    assert event.decoded("dtstart") == start
    assert event.decoded("dtend") == start + timedelta(hours=3)
    assert str(event["summary"]) == "Bid workshop, Leeds"
    assert str(event["location"]) == "Civic Hall, Leeds"
    assert str(event["uid"]) == f"workshop-{w}@wastepilot"
    (waiting,) = inbox.to("person3@council.example.org")
    assert waiting["Subject"] == "You are on the waiting list for Bid workshop, Leeds"
    assert "waiting list (number 1)" in text_of(waiting)
    assert not [p for p in waiting.walk() if p.get_content_type() == "text/calendar"]
    # erasing a person blanks what was written to them
    erased = api.post("/api/v1/people/erasure", json={"email": "person3@council.example.org"})
    assert erased.json() == {"registrations_erased": 1, "messages_erased": 1}
    rows = db.execute(
        "SELECT to_address, personalisation FROM outbox WHERE event_ref LIKE %s",
        ("registration:%:waiting",),
    ).fetchall()
    assert rows == [(None, {})]


def test_a_registration_queues_its_message_once_in_its_own_transaction(
    db: Conn, api: TestClient
) -> None:
    """The message is written with the registration: a registration refused (the same address
    twice) queues nothing, and each accepted one queues exactly one."""
    w = api.post("/api/v1/workshops", json=workshop_body()).json()["id"]
    assert api.post(f"/api/v1/workshops/{w}/registrations", json=person(1)).status_code == 201
    again = api.post(f"/api/v1/workshops/{w}/registrations", json=person(1))
    assert again.status_code == 409
    rows = db.execute("SELECT event_ref, template, status FROM outbox").fetchall()
    assert [(t, st) for _, t, st in rows] == [("workshop_confirmed", "queued")]
