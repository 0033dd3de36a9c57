"""The mail catcher of `wastepilot run`: the outbox's SMTP sender talks to it over a real
connection, and each message is kept as an .eml file that opens as the message sent."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path

from core.outbox import Attachment, Outgoing, SmtpMailer
from wastepilot.localservices.mailcatcher import catching


def test_the_catcher_keeps_each_message_as_a_file(tmp_path: Path) -> None:
    told: list[tuple[list[str], str]] = []
    folder = tmp_path / "mail"
    with catching(folder, lambda to, subject, _: told.append((to, subject))) as url:
        mailer = SmtpMailer(url, "Pilot <no-reply@pilot.localhost>")
        for i in (1, 2):
            mailer.send(Outgoing(f"p{i}@council.example", f"Workshop {i}", "Hello",
                                 f"registration:{i}:confirmed",
                                 [Attachment("workshop.ics", "text/calendar", b"BEGIN:VCALENDAR")]))  # fmt: skip
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2 and files[0].name.endswith("-0001.eml")
    kept = message_from_bytes(files[1].read_bytes())
    assert (kept["To"], kept["Subject"]) == ("p2@council.example", "Workshop 2")
    assert [p.get_filename() for p in kept.walk() if p.get_filename()] == ["workshop.ics"]
    assert told == [(["p1@council.example"], "Workshop 1"), (["p2@council.example"], "Workshop 2")]
