"""The analysts' daily digest (issue 31): asked for on the alerts page, started only once the
address confirms it through an e-mailed link, then queued once a day from its hour, sent
through a real SMTP server on loopback with its figures, its alerts and an unsubscribe link
(also as RFC 8058 one-click headers) that works without signing in, once; the pages in Chromium
at 1280 and 360 px."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx2
import psycopg
import pytest

from analytics import digest
from api.keepers import KEEPERS
from core import clock, keepers
from core.outbox import SmtpMailer, send_due
from core.registry import Household, add_households
from core.settings import Settings
from tests.api.test_pages_tour import SHOTS, look, open_as
from tests.fixtures.mail import Inbox, text_of

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
DAY = date(2026, 6, 10)  # a Wednesday in British Summer Time
MORNING = datetime(2026, 6, 10, 6, 5, tzinfo=UTC)  # 07:05 in London


def user_id(db: Conn, name: str) -> int:
    row = db.execute("SELECT id FROM users WHERE username = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def alert(db: Conn, household: str, kind: str, opened: datetime, state: str = "open") -> None:
    db.execute(
        "INSERT INTO alerts (kind, device_id, household_ref, state, detail, first_found, "
        "last_found, opened_at, resolved_at) VALUES (%s, %s, %s, %s, 'found', %s, %s, %s, %s)",
        (kind, f"D-{household}", household, state, opened, opened, opened,
         opened if state == "resolved" else None),
    )  # fmt: skip


def a_day_of_the_pilot(db: Conn) -> None:
    add_households(db, [Household(h, joined_on=date(2026, 1, 1)) for h in ("HH-A", "HH-B")])
    for h, uses, water in (("HH-A", 3, 12.5), ("HH-B", 2, 7.5)):
        db.execute(
            "INSERT INTO usage_daily VALUES (%s, %s, %s, 60, 250, %s, 0, 1, 0, 288, 0)",
            (h, DAY - timedelta(days=1), uses, water),
        )
    alert(db, "HH-A", "leak", MORNING - timedelta(hours=10))  # new: in the last 24 hours
    alert(db, "HH-A", "water_per_use", datetime(2026, 6, 10, 2, tzinfo=UTC))  # 03:00 today
    alert(db, "HH-B", "offline", MORNING - timedelta(days=3), "acknowledged")  # still open
    alert(db, "HH-B", "jam_rate", MORNING - timedelta(hours=5), "resolved")  # new, resolved
    alert(db, "HH-B", "leak", MORNING - timedelta(days=2), "resolved")  # old news: not told


def test_the_digest_goes_once_a_day_and_its_link_stops_it(
    db: Conn, served: str, tokens: dict[str, str], smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    s = Settings(mail_provider="smtp", smtp_url=f"smtp://127.0.0.1:{port}",
                 public_url=served, digest_hour=7)  # fmt: skip
    a_day_of_the_pilot(db)
    mailer = SmtpMailer(str(s.smtp_url), s.mail_from)
    analyst = user_id(db, "test-analyst")
    with clock.frozen_at(MORNING - timedelta(days=1)):
        assert digest.subscribe(db, s, analyst, "Analyst@Water.example")
        assert not digest.subscribe(db, s, analyst, "analyst@water.example")  # the same again
        digest.subscribe(db, s, user_id(db, "test-officer"), "officer@council.example")
        assert send_due(db, s, mailer).sent == 2  # the confirmation links
    with clock.frozen_at(MORNING):
        assert digest.queue_digests(db, s) == 0  # nobody has confirmed
    # the address confirms through its link: a page, then its button (no sign-in)
    (ask,) = inbox.to("analyst@water.example")
    assert ask["Subject"] == "Confirm your daily digest from the food-waste disposer pilot"
    confirm = text_of(ask).split("open this link and confirm: ", 1)[1].split()[0]
    assert confirm.startswith(f"{served}/digest/confirm/")
    assert "Start the daily digest?" in httpx2.get(confirm).text
    started = httpx2.post(confirm)
    assert started.status_code == 200 and "Digest started" in started.text
    assert httpx2.post(confirm).status_code == 404  # spent
    (officer_ask,) = inbox.to("officer@council.example")
    assert httpx2.post(text_of(officer_ask).split("confirm: ", 1)[1].split()[0]).status_code == 200
    with clock.frozen_at(MORNING - timedelta(hours=1)):
        assert digest.queue_digests(db, s) == 0  # 06:05: not yet
    with clock.frozen_at(MORNING):
        assert digest.queue_digests(db, s) == 1  # the analyst's (an officer gets none)
        assert digest.queue_digests(db, s) == 0  # once a day however often it runs
        assert send_due(db, s, mailer).sent == 1
    assert len(inbox.to("officer@council.example")) == 1  # the confirmation only
    msg = inbox.to("analyst@water.example")[-1]
    assert msg["Subject"] == "Pilot digest for 10 Jun 2026: 3 new alerts, 1 still open"
    body = text_of(msg)
    assert "Leak at household HH-A (device D-HH-A), open" in body
    assert "High water use at household HH-A (device D-HH-A), open" in body  # from 03:00
    assert "Offline at household HH-B (device D-HH-B), acknowledged" in body
    # new in the last 24 hours and resolved since: told, with its state
    assert "Jams often at household HH-B (device D-HH-B), resolved" in body
    assert "Leak at household HH-B" not in body  # resolved before the last 24 hours
    for line in ("households reporting: 2", "uses: 5", "water: 20 litres", "energy: 0.5 kWh",
                 "jams: 2"):  # fmt: skip
        assert line in body, body
    link = body.rsplit("To stop it: ", 1)[1].strip()
    assert link.startswith(f"{served}/digest/unsubscribe/")
    assert "".join(str(msg["List-Unsubscribe"]).split()) == f"<{link}>"  # (folded)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # the link: a page, then a mail program's one-click POST (no sign-in, a small body)
    page = httpx2.get(link)
    assert page.status_code == 200 and "analyst@water.example" in page.text
    one_click = {"content": b"List-Unsubscribe=One-Click",
                 "headers": {"Content-Type": "application/x-www-form-urlencoded"}}  # fmt: skip
    done = httpx2.post(link, **one_click)  # type: ignore[arg-type]
    assert done.status_code == 200 and "Digest stopped" in done.text
    again = httpx2.post(link, **one_click)  # type: ignore[arg-type]
    assert again.status_code == 404 and "used already" in again.text
    assert httpx2.get(link).status_code == 404
    # a bigger body without a credential is still refused before it is read
    big = httpx2.post(link, content=b"x" * 65)
    chunked = httpx2.post(link, content=iter([b"List-Unsubscribe=One-Click"]))  # no length
    assert (big.status_code, chunked.status_code) == (401, 401)
    with clock.frozen_at(MORNING + timedelta(days=1)):
        assert digest.queue_digests(db, s) == 0  # nobody asks for it now

    # erasing the person takes their subscription
    digest.subscribe(db, s, analyst, "analyst@water.example")
    done_erasing = keepers.erase_person(KEEPERS, db, "ANALYST@water.example")
    assert done_erasing["digest_subscriptions"] == 1
    assert digest.subscription(db, user_id(db, "test-analyst")) is None


def test_a_revoked_analyst_gets_no_digest(db: Conn, tokens: dict[str, str]) -> None:
    s = Settings(digest_hour=7)
    me = user_id(db, "test-analyst")
    digest.subscribe(db, s, me, "analyst@water.example")
    db.execute("UPDATE digest_subscriptions SET confirmed_at = now(), confirm = NULL")
    db.execute("UPDATE users SET revoked_at = now() WHERE id = %s", (me,))
    try:
        with clock.frozen_at(MORNING):
            assert digest.queue_digests(db, s) == 0
    finally:
        db.execute("UPDATE users SET revoked_at = NULL WHERE id = %s", (me,))


def test_an_analyst_asks_for_the_digest_and_stops_it_on_the_alerts_page(
    db: Conn, served: str, browser: Any, tokens: dict[str, str]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for width in (1280, 360):
        ctx, page, failed = open_as(browser, served, "test-analyst", width)
        page.goto(f"{served}/analysts/alerts")
        # the menu marks where the analyst is: Alerts, not the dashboard
        assert [t.strip() for t in page.locator("nav [aria-current]").all_inner_texts()] == [
            "Alerts"
        ]
        page.locator("#digest summary").click()
        page.locator("#digest-email").fill("not an address")
        page.locator("button:has-text('Send me the digest')").click()
        page.wait_for_load_state()
        assert "Enter an e-mail address in the correct format" in page.locator(
            ".govuk-error-summary").inner_text()  # fmt: skip
        assert page.locator("#digest-email").input_value() == "not an address"
        problems += look(page, "digest-error", width, failed)
        page.locator("#digest-email").fill("Analyst@Water.example")
        page.locator("button:has-text('Send me the digest')").click()
        page.wait_for_load_state()
        waiting = page.locator("#digest-waiting").inner_text()
        assert "sent a link to analyst@water.example" in waiting, waiting
        problems += look(page, "digest-waiting", width, failed)
        confirm = db.execute("SELECT confirm FROM digest_subscriptions").fetchone()
        assert confirm is not None
        page.goto(f"{served}/digest/confirm/{confirm[0]}")
        problems += look(page, "digest-confirm", width, failed)
        page.locator("button:has-text('Start the digest')").click()
        page.wait_for_load_state()
        assert "Digest started" in page.locator("h1").inner_text()
        page.goto(f"{served}/analysts/alerts?digest=on")
        assert "goes to analyst@water.example" in page.locator("#digest-on").inner_text()
        problems += look(page, "digest-on", width, failed)
        secret = db.execute("SELECT unsubscribe FROM digest_subscriptions").fetchone()
        assert secret is not None
        page.goto(f"{served}/digest/unsubscribe/{secret[0]}")
        problems += look(page, "digest-unsubscribe", width, failed)
        page.goto(f"{served}/analysts/alerts")
        assert "Daily digest by e-mail: on" in page.locator("#digest summary").inner_text()
        page.locator("#digest summary").click()
        page.locator("button:has-text('Stop the digest')").click()
        page.wait_for_load_state()
        assert page.locator("#digest-on").count() == 0
        assert db.execute("SELECT count(*) FROM digest_subscriptions").fetchone() == (0,)
        ctx.close()
    assert not problems, "\n".join(problems)
