"""Waiting-list offers with a hold deadline (issue 31), against the real database and a real
SMTP server on loopback: a cancellation offers the freed place to the first person waiting,
whose e-mail carries a link to accept or decline; an offer nobody answers lapses at its
deadline and the place is offered to the next; accepting books the place and confirms it with
a calendar file; a workshop moved or cancelled tells everyone on it."""

from __future__ import annotations

import re
from datetime import timedelta

import icalendar
import psycopg
import pytest
from fastapi.testclient import TestClient

from bids import notices
from core import clock
from core.outbox import SmtpMailer, send_due
from core.settings import Settings
from tests.fixtures.mail import Inbox, text_of
from tests.helpers import person, workshop_body

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
LINK = re.compile(r"http://127\.0\.0\.1:8080(/offers/[A-Za-z0-9_-]+)")


def _send(db: Conn, port: int) -> int:
    s = Settings(mail_provider="smtp", smtp_url=f"smtp://127.0.0.1:{port}")
    return send_due(db, s, SmtpMailer(f"smtp://127.0.0.1:{port}", s.mail_from)).sent


def _statuses(api: TestClient, w: int) -> dict[str, str]:
    regs = api.get(f"/api/v1/workshops/{w}/registrations").json()
    return {r["person_name"]: r["status"] for r in regs}


def test_a_freed_place_is_offered_in_turn_until_someone_takes_it(
    db: Conn, api: TestClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    start = (clock.now() + timedelta(days=10)).replace(microsecond=0)
    w = api.post("/api/v1/workshops", json=workshop_body(
        title="Bid workshop, York", capacity=2, starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=3)).isoformat())).json()["id"]  # fmt: skip
    ids = [
        api.post(f"/api/v1/workshops/{w}/registrations", json=person(i)).json()["id"]
        for i in range(1, 5)
    ]
    assert _send(db, port) == 4  # two confirmations, two waiting-list notices
    # person 2 cancels: the place is offered to person 3 (first waiting), not given silently
    r = api.patch(f"/api/v1/registrations/{ids[1]}", json={"status": "cancelled"})
    assert r.status_code == 200, r.text
    assert _statuses(api, w) == {
        "Person 1": "registered", "Person 2": "cancelled",
        "Person 3": "offered", "Person 4": "waiting",
    }  # fmt: skip
    held = api.get(f"/api/v1/workshops/{w}").json()
    assert (held["places_taken"], held["places_free"], held["offered"]) == (2, 0, 1)
    # a fifth registration still waits: the offered place is held
    five = api.post(f"/api/v1/workshops/{w}/registrations", json=person(5)).json()
    assert five["status"] == "waiting"
    assert _send(db, port) == 2  # the offer, and person 5's waiting-list notice
    (offer,) = inbox.to("person3@council.example.org")[-1:]
    assert offer["Subject"].startswith("A place is free at Bid workshop, York: accept it by ")
    expires = db.execute(
        "SELECT offer_expires_at FROM registrations WHERE id = %s", (ids[2],)
    ).fetchone()
    assert expires is not None
    assert timedelta(hours=47) < expires[0] - clock.now() <= timedelta(hours=48)
    link3 = LINK.search(text_of(offer))
    assert link3 is not None, text_of(offer)

    # nobody answers: at the deadline the offer lapses and person 4 is offered the place
    with clock.frozen_at(expires[0] + timedelta(seconds=1)):
        assert notices.workshop_offers(db, Settings()) == 1
        db.commit()
        assert _statuses(api, w)["Person 3"] == "lapsed"
        assert _statuses(api, w)["Person 4"] == "offered"
        assert _send(db, port) == 2  # person 3 told it lapsed, person 4 offered it
        assert notices.workshop_offers(db, Settings()) == 0  # nothing new: nothing sent again
        db.commit()
        assert _send(db, port) == 0
    (lapsed,) = inbox.to("person3@council.example.org")[-1:]
    assert lapsed["Subject"] == "The place at Bid workshop, York has gone to someone else"
    # the lapsed link no longer works; person 4's does
    assert api.get(link3.group(1)).status_code == 404
    (offer4,) = inbox.to("person4@council.example.org")[-1:]
    link4 = LINK.search(text_of(offer4))
    assert link4 is not None
    page = api.get(link4.group(1), headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "A place is free at Bid workshop, York" in page.text
    # accepting: a post with no body and no sign-in, the place is booked and confirmed
    anon = TestClient(api.app)
    taken = anon.post(link4.group(1) + "/accept", headers={"accept": "text/html"})
    assert taken.status_code == 200, taken.text
    assert "Your place is booked" in taken.text
    assert _statuses(api, w)["Person 4"] == "registered"
    assert anon.post(link4.group(1) + "/accept").status_code == 404  # answered: link spent
    assert _send(db, port) == 1
    (confirmed,) = inbox.to("person4@council.example.org")[-1:]
    assert confirmed["Subject"] == "Your place at Bid workshop, York"
    assert [p for p in confirmed.walk() if p.get_content_type() == "text/calendar"]
    # every event told its person once
    refs = [r[0] for r in db.execute("SELECT event_ref FROM outbox ORDER BY id")]
    assert len(refs) == len(set(refs)) == 9
    audit = db.execute(
        "SELECT actor FROM audit_log WHERE table_name = 'registrations' AND row_key = %s"
        " ORDER BY id DESC LIMIT 1",
        (str(ids[3]),),
    ).fetchone()
    assert audit == ("the person, by their offer link",)


def test_declining_offers_the_place_to_the_next_and_a_forged_link_is_refused(
    db: Conn, api: TestClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    w = api.post("/api/v1/workshops", json=workshop_body(capacity=1)).json()["id"]
    ids = [
        api.post(f"/api/v1/workshops/{w}/registrations", json=person(i)).json()["id"]
        for i in range(1, 4)
    ]
    api.patch(f"/api/v1/registrations/{ids[0]}", json={"status": "cancelled"})
    _send(db, port)
    link = LINK.search(text_of(inbox.to("person2@council.example.org")[-1]))
    assert link is not None
    anon = TestClient(api.app)
    for forged in ("/offers/" + "A" * 32, "/offers/" + "x" * 5000, link.group(1)[:-1] + "!"):
        assert anon.get(forged).status_code == 404
        assert anon.post(forged + "/accept").status_code == 404
    assert anon.post(link.group(1) + "/maybe").status_code == 404
    assert anon.post(link.group(1) + "/decline").status_code == 200
    assert _statuses(api, w) == {
        "Person 1": "cancelled", "Person 2": "cancelled", "Person 3": "offered"
    }  # fmt: skip
    # an officer may also answer for them (on the phone): offered -> registered
    r = api.patch(f"/api/v1/registrations/{ids[2]}", json={"status": "registered"})
    assert r.status_code == 200, r.text
    _send(db, port)
    assert inbox.to("person3@council.example.org")[-1]["Subject"] == "Your place at Bid workshop"


def test_a_moved_or_cancelled_workshop_tells_everyone_on_it_once(
    db: Conn, api: TestClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    start = (clock.now() + timedelta(days=20)).replace(microsecond=0)
    w = api.post("/api/v1/workshops", json=workshop_body(
        capacity=1, starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=2)).isoformat())).json()["id"]  # fmt: skip
    for i in (1, 2):
        api.post(f"/api/v1/workshops/{w}/registrations", json=person(i))
    _send(db, port)
    later = start + timedelta(days=1)
    r = api.patch(f"/api/v1/workshops/{w}", json={
        "starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=2)).isoformat()})  # fmt: skip
    assert r.status_code == 200, r.text
    assert (
        api.patch(f"/api/v1/workshops/{w}", json={"title": "Bid workshop (2)"}).status_code == 200
    )
    assert _send(db, port) == 2  # the move told both; a new title alone tells nobody
    moved = inbox.to("person1@council.example.org")[-1]
    assert moved["Subject"].startswith("Changed: Bid workshop is now ")
    (ics,) = [p for p in moved.walk() if p.get_content_type() == "text/calendar"]
    (event,) = icalendar.Calendar.from_ical(ics.get_payload(decode=True)).walk("VEVENT")
    assert event.decoded("dtstart") == later
    assert int(event["sequence"]) > 0
    waiting = inbox.to("person2@council.example.org")[-1]
    assert "You are still on its waiting list" in text_of(waiting)
    # person 1 cancels: person 2 is offered the place; then the workshop is cancelled
    (p1,) = [r["id"] for r in api.get(f"/api/v1/workshops/{w}/registrations").json()
             if r["person_name"] == "Person 1"]  # fmt: skip
    api.patch(f"/api/v1/registrations/{p1}", json={"status": "cancelled"})
    assert _send(db, port) == 1
    link = LINK.search(text_of(inbox.to("person2@council.example.org")[-1]))
    assert link is not None
    assert api.patch(f"/api/v1/workshops/{w}", json={"status": "cancelled"}).status_code == 200
    assert api.patch(f"/api/v1/workshops/{w}", json={"status": "cancelled"}).status_code == 200
    assert _send(db, port) == 1  # the person offered the place; person 1 had cancelled
    gone = inbox.to("person2@council.example.org")[-1]
    assert gone["Subject"].startswith("Cancelled: Bid workshop (2), ")
    (ics,) = [p for p in gone.walk() if p.get_content_type() == "text/calendar"]
    (event,) = icalendar.Calendar.from_ical(ics.get_payload(decode=True)).walk("VEVENT")
    assert str(event["status"]) == "CANCELLED"
    # the offer of a cancelled workshop cannot be taken, and its lapse tells nobody more
    assert TestClient(api.app).post(link.group(1) + "/accept").status_code == 404
    with clock.frozen_at(later):
        assert notices.workshop_offers(db, Settings()) == 1
    db.commit()
    assert _send(db, port) == 0


def test_reminders_go_once_to_people_booked_before_the_reminder_window(
    db: Conn, api: TestClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    start = (clock.now() + timedelta(days=5)).replace(microsecond=0)
    w = api.post("/api/v1/workshops", json=workshop_body(
        capacity=5, starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=2)).isoformat())).json()["id"]  # fmt: skip
    api.post(f"/api/v1/workshops/{w}/registrations", json=person(1))
    s = Settings(reminder_days=2)
    assert notices.remind(db, s) == 0  # five days out: not yet
    with clock.frozen_at(start - timedelta(days=1)):
        assert notices.remind(db, s) == 1
        assert notices.remind(db, s) == 0  # once
        api.post(f"/api/v1/workshops/{w}/registrations", json=person(2))
        db.commit()
        _send(db, port)  # due from the clock's now, when they were queued
    (reminder,) = [m for m in inbox.to("person1@council.example.org")
                   if m["Subject"].startswith("Reminder: ")]  # fmt: skip
    assert "Civic Hall, Leeds" in text_of(reminder)
    assert not [m for m in inbox.to("person2@council.example.org")
                if m["Subject"].startswith("Reminder: ")]  # fmt: skip
