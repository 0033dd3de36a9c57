"""The outbox through GOV.UK Notify: the maintained client's real HTTP calls against a local
server answering as Notify does (tests/fixtures/notify.py) — rate limits and errors backed off,
bad addresses failed with Notify's reason, receipts taken at the callback (and asked for when a
callback never comes): every message ends delivered or failed, none lost, none sent twice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import psycopg
import pytest

from api.routers.notify import DELIVERY_PATH, REFUSED, callback_token_ok
from core import clock
from core.outbox import Message, NotifyMailer, check_deliveries, enqueue, mailer_of, send_due
from core.settings import Settings
from tests.api.conftest import serving
from tests.fixtures.notify import TEMPLATE_ID, NotifyStandIn
from tests.helpers import bearer

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
T0 = datetime(2026, 5, 4, 9, tzinfo=UTC)
CALLBACK_TOKEN = "receipts-secret-0123456789"


def settings_for(notify: NotifyStandIn, db_url: str, **over: Any) -> Settings:
    return Settings(database_url=db_url, mail_provider="notify", notify_api_key=notify.api_key,
                    notify_template_id=TEMPLATE_ID, notify_base_url=notify.url,
                    notify_callback_token=CALLBACK_TOKEN, **over)  # fmt: skip


def queue(db: Conn, ref: str, to: str, unsubscribe: str | None = None) -> None:
    """Queue an alert's message at T0 (the clock the outbox reads)."""
    fields = {"what": "a leak", "household": "HH-1", "device": "dev-1", "detail": "water flowing",
              "since": "9:00am", "link": "https://pilot.example/analysts/alerts",
              "escalate_after": "4 hours"}  # fmt: skip
    with clock.frozen_at(T0):
        assert enqueue(db, Message(ref, "alert_opened", to, fields, unsubscribe_url=unsubscribe))


def rows(db: Conn) -> dict[str, tuple[Any, ...]]:
    got = db.execute(
        "SELECT event_ref, status, attempts, last_error, provider, next_attempt_at FROM outbox"
    ).fetchall()
    return {str(r[0]): r[1:] for r in got}


def test_rate_limits_and_errors_back_off_and_every_message_ends_delivered_or_failed(
    db: Conn, bids_db: Conn, db_url: str, notify: NotifyStandIn
) -> None:
    s = settings_for(notify, db_url)
    mailer = mailer_of(s)
    assert isinstance(mailer, NotifyMailer)
    good = [f"alert:{i}:opened" for i in range(5)]
    for i, ref in enumerate(good):
        queue(db, ref, f"field{i}@council.example")
    queue(db, "alert:7:opened", "gone@refused.example")  # taken, then not deliverable
    queue(db, "alert:8:opened", "not an address")  # refused by Notify at once
    # Notify is over its rate limit for two sends, then fails once, then takes one and the
    # line drops before its answer comes back
    notify.script = [429, 429, 500]

    def run(after_s: int) -> Any:
        with clock.frozen_at(T0 + timedelta(seconds=after_s)):
            return send_due(db, s, mailer)

    for after_s, ref, said in ((0, "alert:0:opened", "Notify answered 429: Exceeded rate limit"),
                               (10, "alert:1:opened", "Notify answered 429"),
                               (20, "alert:2:opened", "Notify answered 500")):  # fmt: skip
        got = run(after_s)
        # the provider's refusal, not the message's: sending pauses for a minute, the message
        # keeps its attempts, the other messages are not tried against a refusing provider
        assert got.paused and got.sent == got.failed == got.retried == 0, got
        status, attempts, error, _, next_at = rows(db)[ref]
        assert (status, attempts) == ("queued", 0) and error.startswith(said), rows(db)[ref]
        assert next_at == T0 + timedelta(seconds=after_s + 60)
    notify.lose_answers = 1
    assert run(30).paused  # taken by Notify, but no answer: it may or may not have it
    assert len(notify.taken("alert:3:opened")) == 1
    got = run(40)
    assert (got.sent, got.failed, got.paused) == (2, 1, False), got  # alert 4, 7; 8 refused
    assert rows(db)["alert:8:opened"][:3] == (
        "failed",
        1,
        "Notify answered 400: email_address Not a valid email address",
    )
    # the paused ones once their pause is over; the one whose answer was lost is looked up by
    # its reference and not sent again
    assert run(95).sent == 4
    now = rows(db)
    assert {r[0] for ref, r in now.items() if ref != "alert:8:opened"} == {"sent"}
    assert {r[3] for r in now.values() if r[0] == "sent"} == {"notify"}
    for ref in [*good, "alert:7:opened"]:
        assert len(notify.taken(ref)) == 1, ref  # none sent twice
    posts = [st for m, p, st in notify.requests if m == "POST"]
    assert sorted(posts) == [0, 201, 201, 201, 201, 201, 400, 429, 429, 500], posts
    taken = notify.taken("alert:0:opened")[0]
    assert taken["subject"] == "Visit needed: a leak at household HH-1"
    assert "water flowing" in taken["body"] and taken["one_click_unsubscribe_url"] is None

    # Notify delivers: its receipts come to the API, all but one (a callback that is lost)
    with serving(s) as base:
        assert notify.deliver(base + DELIVERY_PATH, CALLBACK_TOKEN,
                              lose=frozenset({"alert:4:opened"})) == 5  # fmt: skip
    now = rows(db)
    assert [now[r][0] for r in good] == ["delivered"] * 4 + ["sent"]
    assert now["alert:7:opened"][:1] + now["alert:7:opened"][2:3] == (
        "failed",
        "Notify: the address does not exist or refused it",
    )

    # the lost receipt: the outbox asks Notify once the grace period has passed
    asked_before = sum(m == "GET" and "?" not in p for m, p, _ in notify.requests)
    with clock.frozen_at(T0 + timedelta(minutes=3)):
        assert check_deliveries(db, mailer) == 0  # too soon to ask
    with clock.frozen_at(T0 + timedelta(minutes=15)):
        assert check_deliveries(db, mailer) == 1
    final = rows(db)
    assert {r[0] for r in final.values()} <= {"delivered", "failed"}
    assert sum(r[0] == "delivered" for r in final.values()) == 5 and len(final) == 7
    asked = [p for m, p, _ in notify.requests if m == "GET" and "?" not in p]
    assert len(asked) == asked_before + 1
    assert asked[-1].endswith(notify.taken("alert:4:opened")[0]["id"])


def test_a_message_notify_no_longer_knows_is_asked_of_for_a_week_then_left(
    db: Conn, db_url: str, notify: NotifyStandIn
) -> None:
    s = settings_for(notify, db_url)
    mailer = mailer_of(s)
    assert mailer is not None
    queue(db, "alert:1:opened", "field@council.example")
    with clock.frozen_at(T0):
        assert send_due(db, s, mailer).sent == 1
    notify.notifications.clear()  # Notify keeps a message's status for 7 days, then 404s
    with clock.frozen_at(T0 + timedelta(minutes=15)):
        assert check_deliveries(db, mailer) == 0
    gets = [st for m, _, st in notify.requests if m == "GET"]
    assert gets == [404]
    with clock.frozen_at(T0 + timedelta(days=8)):
        assert check_deliveries(db, mailer) == 0
    assert [st for m, _, st in notify.requests if m == "GET"] == [404]  # not asked again
    assert rows(db)["alert:1:opened"][0] == "sent"  # taken by Notify; its delivery unknown


def test_a_wrong_key_keeps_messages_waiting_however_long_instead_of_failing_them(
    db: Conn, db_url: str, notify: NotifyStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    s = settings_for(notify, db_url, outbox_max_attempts=2)
    wrong = notify.api_key[:-36] + "00000000-0000-4000-8000-000000000000"
    mailer = NotifyMailer(wrong, TEMPLATE_ID, notify.url)
    link = "https://pilot.example/digest/unsubscribe/abc"  # (a message that is not transactional)
    queue(db, "alert:1:opened", "field@council.example", unsubscribe=link)
    queue(db, "alert:2:opened", "field@council.example")
    with caplog.at_level(logging.ERROR):
        for minute in range(6):  # far past the attempts a message has
            with clock.frozen_at(T0 + timedelta(minutes=minute, seconds=1)):
                got = send_due(db, s, mailer)
            assert got.paused and (got.sent, got.failed) == (0, 0), got
    # one request a run (a send, or for a message tried before, a look for it by reference)
    assert [st for _, _, st in notify.requests] == [403] * 6
    for ref in ("alert:1:opened", "alert:2:opened"):
        assert rows(db)[ref][:3] == (
            "queued",
            0,
            "Notify answered 403: Invalid token: API key not found",
        )
    assert "refused the set-up" in caplog.text
    assert "field@council.example" not in caplog.text  # addresses are never logged
    # mended: the right key sends each once
    with clock.frozen_at(T0 + timedelta(minutes=10)):
        assert send_due(db, s, mailer_of(s)).sent == 2  # type: ignore[arg-type]
    (taken,) = notify.taken("alert:1:opened")
    assert taken["one_click_unsubscribe_url"] == link  # Notify shows its unsubscribe link


def test_receipts_need_the_callback_token(
    db: Conn, bids_db: Conn, db_url: str, notify: NotifyStandIn, tokens: dict[str, str]
) -> None:
    receipt = {"id": "8a0d1c53-4a4b-4d3c-9b9a-1f0e4e1f2d3c", "reference": "alert:1:opened",
               "to": "a@b.example", "status": "delivered", "notification_type": "email"}  # fmt: skip
    with serving(settings_for(notify, db_url)) as base:
        url = base + DELIVERY_PATH
        none = httpx2.post(url, json=receipt)
        bare = httpx2.post(url)  # no body, no token: the route's own check
        wrong = httpx2.post(url, json=receipt, headers={"Authorization": "Bearer guess"})
        admin = httpx2.post(url, json=receipt, headers=bearer(tokens["admin"]))  # a user's token
        right = {"Authorization": f"Bearer {CALLBACK_TOKEN}"}
        unknown = httpx2.post(url, json=receipt, headers=right)
        empty = httpx2.post(url, headers=right)
        long_id = httpx2.post(url, json={**receipt, "id": "x" * 65}, headers=right)
        on_the_way = httpx2.post(url, json={**receipt, "status": "sending"}, headers=right)
    assert (none.status_code, wrong.status_code, admin.status_code) == (401, 401, 401)
    assert bare.status_code == 401 and bare.json()["detail"] == REFUSED
    assert "callback's bearer token" in wrong.json()["detail"]
    assert unknown.status_code == 200 and unknown.json() == {"recorded": False}
    assert empty.status_code == 422 and long_id.status_code == 422
    assert on_the_way.json() == {"recorded": False}
    # with no callback token configured (or one set empty, as compose's ${X:-} leaves it), no
    # receipt is taken at all, not even one with an empty token
    for unset in ({}, {"notify_callback_token": ""}):
        with serving(Settings(database_url=db_url, **unset)) as base:
            refused = httpx2.post(base + DELIVERY_PATH, json=receipt, headers=right)
        assert refused.status_code == 401, unset
        assert not callback_token_ok(Settings(**unset), "")  # (HTTP clients refuse to send it)
    with pytest.raises(ValueError, match="at least 24 characters"):
        Settings(notify_callback_token="guessable")  # a token that could be guessed online
