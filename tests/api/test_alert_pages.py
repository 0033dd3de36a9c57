"""The alerts pages and the workshop's "messages sent" table (issue 31), in Chromium at 1280
and 360 px against the API served over real HTTP: an analyst acknowledges, assigns (an empty
name is refused with a message) and resolves an alert with a note through the buttons; the
household page tells the alert's history; an officer sees what was sent to whom and its
status. No page shows None or nan, scrolls sideways on a phone or has a serious axe finding;
each is saved as a screenshot (test-artifacts/pages/)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2 as httpx
import psycopg
import pytest

from core import clock
from tests.analytics.test_alerts import T0, a_leak, health, send, settings_for
from tests.api.test_pages_tour import SHOTS, look, open_as
from tests.fixtures.mail import Inbox
from tests.helpers import bearer, person, workshop_body

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]


def test_alerts_are_moved_on_through_the_pages_and_messages_are_listed(
    db: Conn, served: str, browser: Any, tokens: dict[str, str], smtp: tuple[Inbox, int]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    _, port = smtp
    s = settings_for(port)
    a_leak(db, "D-LEAK", "HH-LEAK")
    for minutes in (0, 15, 30, 45):
        health(db, s, T0 + timedelta(minutes=minutes))
    assert send(db, s) == 1
    (alert_id,) = [r[0] for r in db.execute("SELECT id FROM alerts WHERE state = 'open'")]
    # a workshop with a full list, a cancellation and so an offer: its messages
    officer = bearer(tokens["officer"])
    w = httpx.post(f"{served}/api/v1/workshops", headers=officer,
                   json=workshop_body(title="Bid workshop, Hull", capacity=1)).json()["id"]  # fmt: skip
    url = f"{served}/api/v1/workshops/{w}/registrations"
    regs = [httpx.post(url, headers=officer, json=person(i)).json()["id"] for i in (1, 2)]
    httpx.patch(f"{served}/api/v1/registrations/{regs[0]}", headers=officer,
                json={"status": "cancelled"})  # fmt: skip
    httpx.post(f"{served}/api/v1/workshops/{w}/registrations", headers=officer,
               json=person(3) | {"email": "nobody@refused.example"})  # fmt: skip
    with clock.frozen_at(clock.now()):
        send(db, s)
    problems: list[str] = []

    for width in (1280, 360):
        ctx, page, failed = open_as(browser, served, "test-analyst", width)
        page.goto(f"{served}/analysts/alerts")
        row = page.locator(f"#alert-{alert_id}")
        assert "Leak at household HH-LEAK" in row.inner_text()
        problems += look(page, "alerts", width, failed)
        if width == 1280:
            row.locator("button:has-text('Acknowledge')").click()
            page.wait_for_load_state()
            assert "Acknowledged by test-analyst" in page.locator(f"#alert-{alert_id}").inner_text()
            row = page.locator(f"#alert-{alert_id}")
            row.locator("summary").click()
            row.locator("button:has-text('Assign')").click()  # nobody named
            page.wait_for_load_state()
            assert (
                "Enter who the visit is assigned to"
                in page.locator(".govuk-error-summary").inner_text()
            )
            problems += look(page, "alerts-assign-error", width, failed)
            row = page.locator(f"#alert-{alert_id}")
            row.locator(f"#to-{alert_id}").fill("Field team B")
            row.locator("button:has-text('Assign')").click()
            page.wait_for_load_state()
            assert "Assigned to Field team B" in page.locator(f"#alert-{alert_id}").inner_text()
        page.goto(f"{served}/analysts/households/HH-LEAK")
        card = page.locator(f"#alert-{alert_id}")
        history = card.locator("ol").inner_text()
        for step in ("found", "opened", "acknowledged by test-analyst",
                     "assigned by test-analyst (to Field team B)"):  # fmt: skip
            assert step in history, history
        problems += look(page, "household-alerts", width, failed)
        ctx.close()

    ctx, page, failed = open_as(browser, served, "test-analyst", 1280)
    page.goto(f"{served}/analysts/households/HH-LEAK")
    card = page.locator(f"#alert-{alert_id}")
    card.locator("summary").click()
    card.locator(f"#note-{alert_id}").fill("Visited: the seal was replaced")
    card.locator("button:has-text('Resolve')").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/analysts/households/HH-LEAK#alert-{alert_id}")
    card_text = page.locator(f"#alert-{alert_id}").inner_text()
    assert "By test-analyst: Visited: the seal was replaced" in card_text
    assert not page.locator(f"#alert-{alert_id} button").count()  # resolved: no more buttons
    page.goto(f"{served}/analysts/alerts")
    assert not page.locator(f"#alert-{alert_id}").count()  # the list shows live alerts
    page.goto(f"{served}/analysts/alerts?state=resolved&kind=leak")
    assert page.locator(f"#alert-{alert_id}").count() == 1
    ctx.close()
    stored = db.execute(
        "SELECT state, acknowledged_by, assigned_to, resolved_by, resolution_note FROM alerts"
    ).fetchone()
    assert stored == ("resolved", "test-analyst", "Field team B", "test-analyst",
                      "Visited: the seal was replaced")  # fmt: skip

    for width in (1280, 360):
        ctx, page, failed = open_as(browser, served, "test-officer", width)
        page.goto(f"{served}/officers/workshops/{w}")
        rows = page.locator("#messages tbody tr").all_inner_texts()
        cells = sorted(tuple(" ".join(c.split()) for c in r.split("\t")[:2]) for r in rows)
        assert cells == [
            ("On the waiting list nobody@refused.example",
             "Not delivered the server refused the address (550)"),
            ("On the waiting list person2@council.example.org", "Sent"),
            ("Place confirmed person1@council.example.org", "Sent"),
            ("Place offered person2@council.example.org", "Sent"),
        ]  # fmt: skip
        tags = page.locator("#attendance .govuk-tag").all_inner_texts()
        assert sorted(tags) == ["Cancelled", "Place offered", "Waiting list"], tags
        assert "held for an offer" in page.locator("main").inner_text()
        problems += look(page, "workshop-messages", width, failed)
        ctx.close()
    assert problems == []
