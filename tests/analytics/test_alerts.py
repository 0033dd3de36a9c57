"""Field-visit alerts and their e-mails (issue 31), against the real database and a real SMTP
server on loopback (aiosmtpd): one alert per leak however often the check runs, one e-mail to
the rota's first person, the second told when nobody acknowledges, the alert resolved after its
pending period when the leak is gone, and nothing more sent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.anomalies import check_devices
from analytics.rollups import refresh
from core import clock
from core.outbox import Message, SmtpMailer, enqueue, send_due
from core.registry import Device, Household, add_devices, add_households
from core.settings import Settings
from tests.analytics.test_rollups import insert
from tests.fixtures.mail import Inbox, text_of

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
ROTA = ["first@field.example", "second@field.example"]
T0 = datetime(2026, 3, 10, 9, tzinfo=UTC)


def settings_for(port: int, **over: Any) -> Settings:
    return Settings(mail_provider="smtp", smtp_url=f"smtp://127.0.0.1:{port}",
                    alerts_rota=ROTA, **over)  # fmt: skip


def health(db: Conn, s: Settings, at: datetime) -> None:
    with clock.frozen_at(at):
        check_devices(db, s)


def send(db: Conn, s: Settings) -> int:
    assert s.smtp_url is not None
    return send_due(db, s, SmtpMailer(s.smtp_url, s.mail_from)).sent


def a_leak(db: Conn, device: str, household: str) -> None:
    """A household whose disposer leaked the evening before T0, rolled up."""
    add_households(db, [Household(household, joined_on=date(2026, 1, 1))])
    add_devices(db, [Device(device, household)])
    insert(db, device, 1, T0 - timedelta(hours=18), "fault", "leak")
    with clock.frozen_at(T0):
        refresh(db, timedelta(days=7), commit_lag=timedelta(0))


def test_a_leak_opens_one_alert_tells_the_rota_in_turn_and_resolves_quietly(
    db: Conn, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    s = settings_for(port)
    a_leak(db, "D-LEAK", "HH-LEAK")
    # the check runs every 15 minutes: found, still pending, then open after 30 minutes
    for minutes in (0, 15, 30, 45, 60):
        health(db, s, T0 + timedelta(minutes=minutes))
        send(db, s)
    alerts = db.execute("SELECT id, kind, state FROM alerts").fetchall()
    assert [(k, st) for _, k, st in alerts] == [("leak", "open")]
    assert len(inbox.to(ROTA[0])) == 1 and inbox.to(ROTA[1]) == []
    first = inbox.to(ROTA[0])[0]
    assert first["Subject"] == "Visit needed: leak at household HH-LEAK"
    assert "Device: D-LEAK" in text_of(first) and "Acknowledge it" in text_of(first)
    # nobody acknowledges it for four hours: the next person on the rota is told, once
    for minutes in range(75, 6 * 60, 15):
        health(db, s, T0 + timedelta(minutes=minutes))
        send(db, s)
    assert len(inbox.to(ROTA[0])) == 1 and len(inbox.to(ROTA[1])) == 1
    assert inbox.to(ROTA[1])[0]["Subject"].startswith("Still not acknowledged: leak")
    # the leak leaves the check's window (14 days): clearing, resolved after an hour; no e-mail
    later = T0 + timedelta(days=15)
    for minutes in (0, 15, 30, 45, 60, 75):
        health(db, s, later + timedelta(minutes=minutes))
        send(db, s)
    state = db.execute("SELECT state, resolved_by, resolution_note FROM alerts").fetchall()
    assert [(st, by) for st, by, _ in state] == [("resolved", None)]
    assert len(inbox.got) == 2
    actions = [a for (a,) in db.execute("SELECT action FROM alert_history ORDER BY id")]
    assert actions == ["found", "opened", "escalated", "clearing", "resolved"]


def test_acknowledged_alerts_are_not_escalated_and_people_resolve_with_a_note(
    db: Conn, smtp: tuple[Inbox, int]
) -> None:
    from analytics import alerts
    from core.errors import Conflict

    inbox, port = smtp
    s = settings_for(port)
    a_leak(db, "D-ACK", "HH-ACK")
    health(db, s, T0)
    ((alert_id,),) = db.execute("SELECT id FROM alerts").fetchall()
    with pytest.raises(Conflict, match="not open yet"):
        alerts.acknowledge(db, int(alert_id), "field-1")  # type: ignore[call-overload]
    db.rollback()
    health(db, s, T0 + timedelta(minutes=30))
    alerts.acknowledge(db, int(alert_id), "field-1")  # type: ignore[call-overload]
    alerts.assign(db, int(alert_id), "field-2", "field-1")  # type: ignore[call-overload]
    db.commit()
    for minutes in range(45, 8 * 60, 15):
        health(db, s, T0 + timedelta(minutes=minutes))
    send(db, s)
    assert len(inbox.to(ROTA[0])) == 1 and inbox.to(ROTA[1]) == []
    alerts.resolve(db, int(alert_id), "field-2", "tap washer replaced")  # type: ignore[call-overload]
    db.commit()
    row = db.execute("SELECT state, resolved_by, resolution_note, assigned_to FROM alerts")
    assert row.fetchone() == ("resolved", "field-2", "tap washer replaced", "field-2")
    with pytest.raises(Conflict, match="resolved already"):
        alerts.resolve(db, int(alert_id), "field-2", "again")  # type: ignore[call-overload]
    db.rollback()
    # the leak is still in the check's window: resolved by a person, it is not raised again
    # until the check has stopped finding it
    for hours in (9, 10, 11):
        health(db, s, T0 + timedelta(hours=hours))
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (1,)
    health(db, s, T0 + timedelta(days=15))  # out of the window: found no more
    insert(db, "D-ACK", 2, T0 + timedelta(days=15, hours=1), "fault", "leak")  # a new leak
    with clock.frozen_at(T0 + timedelta(days=15, hours=2)):
        refresh(db, timedelta(days=7), commit_lag=timedelta(0))
    health(db, s, T0 + timedelta(days=15, hours=2))
    states = [st for (st,) in db.execute("SELECT state FROM alerts ORDER BY id")]
    assert states == ["resolved", "pending"]


SENDER = """
import sys
from core.outbox import SmtpMailer, send_due
from core.settings import Settings
import psycopg
s = Settings(mail_provider="smtp", smtp_url=sys.argv[2])
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute("SELECT pg_advisory_lock(hashtext('wastepilot-job:send_outbox'))")
    print("sent", send_due(conn, s, SmtpMailer(s.smtp_url, s.mail_from)).sent, flush=True)
"""


def test_a_sender_killed_mid_send_loses_nothing_and_counts_what_it_may_have_doubled(
    db: Conn, db_url: str, smtp: tuple[Inbox, int]
) -> None:
    """600 messages; the sending process is killed -9 at varying moments and started again
    until the outbox is empty. Every message arrives; a message that arrived twice is one a
    killed sender had claimed, and the outbox counts it (interrupted)."""
    inbox, port = smtp
    n = 600
    for i in range(n):
        enqueue(db, Message(f"drill:{i}", "alert_opened", f"person{i}@field.example",
                            {"what": "leak", "household": f"HH-{i}", "device": f"D-{i}",
                             "detail": "1 leak", "since": "today", "escalate_after": "4 hours",
                             "link": "http://localhost/alerts"}))  # fmt: skip
    db.commit()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    kills = 0
    for round_no in range(60):
        left = db.execute("SELECT count(*) FROM outbox WHERE status <> 'sent'").fetchone()
        db.commit()
        if left == (0,):
            break
        proc = subprocess.Popen([sys.executable, "-c", SENDER, db_url, f"smtp://127.0.0.1:{port}"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        if round_no < 8:
            # the first eight runs are killed part way: once this one has sent a few (5 to 9),
            # so the kill lands mid-run however fast or slow the machine is
            target = len(inbox.got) + 5 + round_no % 5
            while proc.poll() is None and len(inbox.got) < target:
                time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        assert proc.wait(120) in (0, -signal.SIGKILL)
    rows = db.execute("SELECT event_ref, to_address, status, interrupted FROM outbox").fetchall()
    assert all(status == "sent" for _, _, status, _ in rows), "every message ends sent"
    received: dict[str, int] = {}
    for rcpt, _ in inbox.got:
        for r in rcpt:
            received[r] = received.get(r, 0) + 1
    assert set(received) == {to for _, to, _, _ in rows}, "every message arrived"
    for _ref, to, _status, interrupted in rows:
        assert 1 <= received[to] <= 1 + int(interrupted), (to, received[to], interrupted)  # type: ignore[call-overload]
    doubled = sum(received.values()) - n
    counted = sum(int(r[3]) for r in rows)  # type: ignore[call-overload]
    assert kills >= 5 and counted >= 1, "the drill killed senders mid-send"
    assert doubled <= counted
    print(f"drill: {kills} senders killed, {counted} sends interrupted, {doubled} doubled")


def test_the_outbox_says_what_is_missing_and_what_an_smtp_server_refuses(
    db: Conn, smtp: tuple[Inbox, int]
) -> None:
    """SMTP without a server's address is refused when the settings load; an address the
    server refuses for good fails its message with the server's words (nothing retried), and
    a server that cannot be reached puts it back with a backoff."""
    with pytest.raises(ValueError, match="needs WASTEPILOT_SMTP_URL"):
        Settings(mail_provider="smtp")
    inbox, port = smtp
    s = settings_for(port)
    enqueue(db, Message("t:1", "alert_opened", "nobody@refused.example",
                        {"what": "leak", "household": "H", "device": "D", "detail": "x",
                         "since": "today", "escalate_after": "4 hours", "link": "l"}))  # fmt: skip
    got = send_due(db, s, SmtpMailer(f"smtp://127.0.0.1:{port}", s.mail_from))
    assert (got.sent, got.failed) == (0, 1)
    row = db.execute("SELECT status, last_error, attempts FROM outbox").fetchone()
    assert row is not None and row[0] == "failed" and row[2] == 1
    assert row[1] == "the server refused the address (550)"
    enqueue(db, Message("t:2", "alert_opened", "someone@field.example",
                        {"what": "leak", "household": "H", "device": "D", "detail": "x",
                         "since": "today", "escalate_after": "4 hours", "link": "l"}))  # fmt: skip
    away = send_due(db, s, SmtpMailer("smtp://127.0.0.1:9", s.mail_from))  # nothing listens
    # the server's trouble, not the message's: sending pauses, the message keeps its attempts
    assert (away.sent, away.retried, away.paused) == (0, 0, True)
    row = db.execute(
        "SELECT status, next_attempt_at > now(), attempts, last_error FROM outbox "
        "WHERE event_ref = 't:2'"
    ).fetchone()
    assert row is not None and row[:3] == ("queued", True, 0) and inbox.got == []
    assert str(row[3]).startswith("could not talk to the mail server")
