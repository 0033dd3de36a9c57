"""The outbox: every message to send is a row written in the transaction of the event that
causes it (an alert opened, a registration confirmed), and the ``send_outbox`` job sends it.

- **Once per event.** A row's ``event_ref`` names its event and is unique: the same event never
  queues a second message. It is also the reference handed to the provider (the e-mail's
  ``Message-ID``, Notify's ``reference``).
- **Interrupted sends are counted.** The job runs under its advisory lock (core/jobs.py), one
  sender at a time, and claims a row (``sending``, committed) before it sends. A row still
  ``sending`` when the next run starts was left by a sender that died between claiming and
  recording: it may or may not have gone out. An SMTP server does not drop a second message
  with the same reference, so the row is sent again and ``interrupted`` counts the possible
  duplicate (shown wherever messages are listed); Notify is asked for the reference first
  (below), so through Notify it is not doubled and not counted.
- **Retries.** A refusal that is the provider's (Notify 429/5xx/403 or a 400 about the
  template, a server that cannot be reached) pauses sending and costs the message no attempt:
  an outage fails nothing. A refusal of the message that may pass (SMTP 4xx) puts it back with
  a backoff (the provider's ``Retry-After`` when it gives one); a permanent one (SMTP 5xx,
  Notify's 400 for the address) fails it; after ``WASTEPILOT_OUTBOX_MAX_ATTEMPTS`` a row fails
  too. Every row ends sent, delivered or failed, none lost.
- **Looked up before sent again.** A message tried before is first looked for at a provider
  that lists messages by reference (Notify): one it has is recorded, not sent twice.
- **Receipts.** A message Notify took is ``sent`` until Notify's receipt (api/routers/notify.py)
  or, when none comes, Notify's answer when asked (``check_deliveries``) settles it:
  ``delivered``, or ``failed`` with the reason.
- **A budget.** At most ``WASTEPILOT_OUTBOX_PER_MINUTE`` messages a minute (Notify's limit is
  3,000).
- **Personal data.** Addresses and personalisation live only here and are never logged;
  erasing a person blanks their rows (``erase_person``).

Templates are text files in ``core/messages/`` (Jinja2): the first line ``Subject: ...``, then
the body, in plain English.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import jinja2
from psycopg.types.json import Jsonb

from core import clock
from core import queries as q
from core.db import Conn
from core.errors import ConfigError
from core.keepers import Keeper
from core.settings import Settings

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "messages"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=False,  # noqa: S701  (plain-text e-mail, never HTML)
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True, slots=True)
class Message:
    """A message to queue: its event's reference, template and recipient."""

    event_ref: str
    template: str
    to: str
    personalisation: dict[str, Any] = field(default_factory=dict)
    transactional: bool = True
    topic: str | None = None  # what it is about ("workshop:12"), for the pages that list them
    unsubscribe_url: str | None = None  # a message that is not transactional carries one


def normal_email(email: str) -> str:
    """An e-mail address as it is stored and compared: NFKC-normalised (fullwidth and other
    compatibility forms become their plain letters), trimmed, lower-case — so one person's
    address is one key for uniqueness and erasure however it was typed."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def enqueue(conn: Conn, msg: Message) -> bool:
    """Queue ``msg`` in the caller's transaction; False if its event has queued one already."""
    row = conn.execute(
        q.OUTBOX_ENQUEUE,
        {
            "ref": msg.event_ref,
            "template": msg.template,
            "to": normal_email(msg.to),
            "p": Jsonb(msg.personalisation),
            "transactional": msg.transactional,
            "topic": msg.topic,
            "unsubscribe": msg.unsubscribe_url,
            "now": clock.now(),
        },
    ).fetchone()
    return row is not None


def render(template: str, personalisation: dict[str, Any]) -> tuple[str, str]:
    """The subject and body of ``template`` (core/messages/<template>.txt)."""
    text = _ENV.get_template(f"{template}.txt").render(**personalisation)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise ConfigError(f"message template {template!r} must start with 'Subject: '")
    return first.removeprefix("Subject: ").strip(), body.lstrip("\n")


class TemporaryFailure(Exception):
    """The provider may take it later (rate limited, down, 4xx). ``provider_wide``: the refusal
    is the provider's, not the message's (down, over its rate limit, a wrong key): sending
    pauses, and the message keeps its attempts — an outage, however long, fails nothing."""

    def __init__(
        self, detail: str, retry_after_s: float | None = None, provider_wide: bool = False
    ) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
        self.provider_wide = provider_wide


class PermanentFailure(Exception):
    """The provider will never take it (a refused address, a bad request)."""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    mime: str  # e.g. text/calendar
    content: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as a provider sends it."""

    to: str
    subject: str
    body: str
    reference: str  # the event's reference (the outbox row's event_ref)
    attachments: list[Attachment] = field(default_factory=list)
    unsubscribe_url: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """A provider's final word on a message: delivered, or failed and why."""

    delivered: bool
    reason: str | None = None


class Mailer(Protocol):
    name: str  # stored with each message it took (outbox.provider)
    attaches_files: bool  # False: the calendar file cannot go with the message

    def find(self, reference: str) -> str | Literal[False] | None:
        """The provider's id of a message it took with this reference, None if it has none,
        False if it cannot tell (SMTP keeps no list). Raises TemporaryFailure."""
        ...

    def send(self, msg: Outgoing) -> str:
        """Send one message; returns the provider's id for it. Raises TemporaryFailure or
        PermanentFailure."""
        ...

    def receipt(self, provider_ref: str) -> Receipt | None:
        """The provider's final word on a message it took, None while it has none (or keeps
        none: an SMTP server's acceptance is its last word)."""
        ...


def calendar_file(event: dict[str, Any]) -> Attachment:
    """An iCalendar file (RFC 5545, icalendar) of one event: ``uid``, ``start`` and ``end``
    (ISO 8601 with offset), ``summary``, ``location``, and for a change ``sequence`` (higher
    replaces lower) and ``cancelled``; one UID per workshop, so a calendar that imports a
    change notice updates the event rather than adding another."""
    from datetime import datetime as dt

    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", "-//wastepilot//workshops//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    ev = icalendar.Event()
    ev.add("uid", event["uid"])
    ev.add("dtstamp", clock.now())
    ev.add("dtstart", dt.fromisoformat(event["start"]))
    ev.add("dtend", dt.fromisoformat(event["end"]))
    ev.add("summary", event["summary"])
    ev.add("location", event["location"])
    ev.add("sequence", int(event.get("sequence", 0)))  # a change notice's file replaces the last
    if event.get("cancelled"):
        ev.add("status", "CANCELLED")
    cal.add_component(ev)
    return Attachment("workshop.ics", "text/calendar", cal.to_ical())


class SmtpMailer:
    """Plain SMTP to any server: ``smtp://[user:password@]host[:port][?starttls=1]`` (STARTTLS
    before the login when asked; ``smtps://`` for TLS from the start)."""

    def __init__(self, url: str, sender: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError("WASTEPILOT_SMTP_URL: smtp://[user:password@]host[:port]")
        self.host = parts.hostname
        self.tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.starttls = parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true")
        self.sender = sender
        self.timeout_s = timeout_s

    name = "smtp"
    attaches_files = True

    def find(self, reference: str) -> Literal[False]:
        return False

    def send(self, out: Outgoing) -> str:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, out.to, out.subject
        msg_id = make_msgid(idstring=out.reference.replace(":", "."), domain="wastepilot")
        msg["Message-ID"] = msg_id
        msg["X-Wastepilot-Reference"] = out.reference
        if out.unsubscribe_url:  # RFC 8058: mail programs offer a one-click unsubscribe
            msg["List-Unsubscribe"] = f"<{out.unsubscribe_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(out.body)
        for a in out.attachments:
            maintype, _, subtype = a.mime.partition("/")
            msg.add_attachment(a.content, maintype=maintype, subtype=subtype, filename=a.filename)
        try:
            cls = smtplib.SMTP_SSL if self.tls else smtplib.SMTP
            with cls(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [c for c, _ in exc.recipients.values()]
            if all(c >= 500 for c in codes):
                raise PermanentFailure(f"the server refused the address ({codes[0]})") from None
            raise TemporaryFailure(f"the server deferred the address ({codes[0]})") from None
        except smtplib.SMTPResponseException as exc:
            detail = f"the server answered {exc.smtp_code}"
            if exc.smtp_code >= 500:
                raise PermanentFailure(detail) from None
            raise TemporaryFailure(detail) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(
                f"could not talk to the mail server: {exc}", provider_wide=True
            ) from None
        return msg_id

    def receipt(self, provider_ref: str) -> Receipt | None:
        return None  # the server's acceptance is all SMTP says


# Notify's final statuses of an e-mail (docs.notifications.service.gov.uk, "Status - email");
# the others (created, sending, pending) are on the way
NOTIFY_FINAL = {
    "delivered": None,
    "permanent-failure": "Notify: the address does not exist or refused it",
    "temporary-failure": "Notify: the inbox was full or refused it for days",
    "technical-failure": "Notify: a technical problem at Notify, it was not sent",
}


class NotifyMailer:
    """GOV.UK Notify through its maintained client (``notifications-python-client``). Every
    message goes through one e-mail template whose subject is ``((subject))`` and body
    ``((body))``: the wording stays in this repository's templates. Notify sends files only as
    download links, so workshop messages go without their calendar file (their text has the
    date, time and place).

    Notify's answers: 201 taken; 400 a bad request (an address it will not take, a team key's
    outsider) — permanent; 403 a wrong key, 429 over the rate limit, 5xx, no answer —
    temporary (the outbox backs off; a wrong key must not fail every message before someone
    mends it)."""

    name = "notify"
    attaches_files = False

    def __init__(
        self, api_key: str, template_id: str, base_url: str, timeout_s: float = 30.0
    ) -> None:
        from notifications_python_client.notifications import NotificationsAPIClient

        if len(api_key) < 74:
            raise ConfigError(
                "WASTEPILOT_NOTIFY_API_KEY: the whole key as Notify shows it "
                "(<name>-<service id>-<secret>)"
            )
        self.client = NotificationsAPIClient(  # type: ignore[no-untyped-call]
            api_key, base_url=base_url, timeout=timeout_s
        )
        self.template_id = template_id

    def send(self, out: Outgoing) -> str:
        from notifications_python_client.errors import APIError

        try:
            got = self.client.send_email_notification(  # type: ignore[no-untyped-call]
                email_address=out.to,
                template_id=self.template_id,
                personalisation={"subject": out.subject, "body": out.body},
                reference=out.reference,
                one_click_unsubscribe_url=out.unsubscribe_url,
            )
        except APIError as exc:
            raise _notify_failure(exc) from None
        return str(got["id"])

    def find(self, reference: str) -> str | None:
        """Notify lists messages by reference: a send that was interrupted, or timed out, is
        looked for before it is sent again, so Notify never gets one twice."""
        from notifications_python_client.errors import APIError

        try:
            got = self.client.get_all_notifications(reference=reference)  # type: ignore[no-untyped-call]
        except APIError as exc:
            raise _notify_failure(exc) from None
        found = [n for n in got.get("notifications", []) if n.get("reference") == reference]
        return str(found[0]["id"]) if found else None

    def receipt(self, provider_ref: str) -> Receipt | None:
        from notifications_python_client.errors import APIError

        try:
            got = self.client.get_notification_by_id(provider_ref)  # type: ignore[no-untyped-call]
        except APIError as exc:
            log.warning("could not ask Notify how a message went: %s", exc.status_code)
            return None
        status = str(got.get("status", ""))
        if status not in NOTIFY_FINAL:
            return None
        return Receipt(status == "delivered", NOTIFY_FINAL[status])


def _notify_failure(exc: Any) -> Exception:
    """What a refusal from Notify means for the message (the client's APIError)."""
    code = int(exc.status_code)
    said = exc.message  # Notify's errors: [{"error": ..., "message": ...}], or a message
    if isinstance(said, list):
        said = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in said)
    detail = f"Notify answered {code}: {said}"
    if code == 400 and not any(w in str(said) for w in NOTIFY_SETUP_ERRORS):
        return PermanentFailure(detail)  # this message's (an address Notify will not take)
    response = getattr(exc, "response", None)
    header = response.headers.get("Retry-After") if response is not None else None
    try:
        retry_after = float(header) if header else None
    except ValueError:
        retry_after = None
    if code in (400, 403):
        log.error("GOV.UK Notify refused the set-up (%s): messages wait until it is mended",
                  detail)  # fmt: skip
    return TemporaryFailure(detail, retry_after, provider_wide=True)


# 400s that are the set-up's, not a message's: the template is missing or wants other fields
NOTIFY_SETUP_ERRORS = ("template", "Missing personalisation", "service")


def mailer_of(s: Settings) -> Mailer | None:
    """The configured provider (None: WASTEPILOT_MAIL_PROVIDER=none, messages stay queued)."""
    if s.mail_provider == "smtp" and s.smtp_url:  # (Settings refuses smtp without a URL)
        return SmtpMailer(s.smtp_url, s.mail_from)
    if s.mail_provider == "notify" and s.notify_api_key and s.notify_template_id:
        return NotifyMailer(
            s.notify_api_key.get_secret_value(), s.notify_template_id, s.notify_base_url
        )
    return None


@dataclass(slots=True)
class SendResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    interrupted: int = 0  # rows a dead sender left mid-send, queued again
    paused: bool = False  # the provider refused as a whole (down, rate limit, a wrong key)


PROVIDER_PAUSE = timedelta(seconds=60)  # after a provider-wide refusal with no Retry-After


def backoff(attempts: int, retry_after_s: float | None) -> timedelta:
    """Wait before the next attempt: the provider's word if it gave one, else 30 s doubling to
    an hour."""
    if retry_after_s is not None:
        return timedelta(seconds=max(1.0, retry_after_s))
    return timedelta(seconds=min(3600.0, 30.0 * 2 ** max(0, attempts - 1)))


def send_due(conn: Conn, s: Settings, mailer: Mailer, limit: int | None = None) -> SendResult:
    """Send what is due, one row at a time, within the minute's budget. Call under the job's
    advisory lock (one sender at a time): rows found ``sending`` are a dead sender's."""
    out = SendResult()
    with conn.transaction():
        out.interrupted = conn.execute(q.OUTBOX_REQUEUE_INTERRUPTED).rowcount
    if out.interrupted:
        log.warning("%d messages were being sent when a sender stopped: sending again "
                    "(each counted as a possible duplicate)", out.interrupted)  # fmt: skip
    done = 0
    while (limit is None or done < limit) and not out.paused:
        now = clock.now()
        with conn.transaction():
            budget = conn.execute(q.OUTBOX_TRIED_SINCE, (now - timedelta(minutes=1),)).fetchone()
            if budget is not None and int(budget[0]) >= s.outbox_per_minute:
                break
            row = conn.execute(q.OUTBOX_CLAIM, (now, now)).fetchone()
        if row is None:
            break
        done += 1
        _send_one(conn, s, mailer, row, now, out)
    return out


def _send_one(
    conn: Conn, s: Settings, mailer: Mailer, row: tuple[Any, ...], now: Any, out: SendResult
) -> None:
    row_id, ref, template, to, personalisation, attempts, unsubscribe, tried = row
    try:
        # tried before (interrupted, refused, timed out): a provider that lists messages by
        # reference is asked first, and a message it has is not sent again
        found = mailer.find(str(ref)) if tried else False
        if found is not False:
            with conn.transaction():
                conn.execute(q.OUTBOX_NOT_DOUBLED, (row_id,))  # it cannot go twice now
        if found:
            with conn.transaction():
                conn.execute(q.OUTBOX_SENT, (clock.now(), found, mailer.name, row_id))
            out.sent += 1
            return
        fields = dict(personalisation)
        attach = mailer.attaches_files and "calendar" in fields
        fields.setdefault("calendar_attached", attach)
        subject, body = render(str(template), fields)
        files = [calendar_file(fields["calendar"])] if attach else []
        provider_ref = mailer.send(
            Outgoing(str(to), subject, body, str(ref), files, unsubscribe and str(unsubscribe))
        )
    except TemporaryFailure as exc:
        if exc.provider_wide:  # the provider's trouble: pause, and count no attempt
            wait = timedelta(seconds=max(1.0, exc.retry_after_s or PROVIDER_PAUSE.total_seconds()))
            with conn.transaction():
                conn.execute(q.OUTBOX_PAUSED, (now + wait, str(exc), row_id))
            out.paused = True
            log.warning("the mail provider refused: sending paused for %s", wait)
            return
        failed = int(attempts) >= s.outbox_max_attempts
        wait = backoff(int(attempts), exc.retry_after_s)
        with conn.transaction():
            conn.execute(q.OUTBOX_RETRY, (failed, now + wait, str(exc), row_id))
        out.failed += failed
        out.retried += not failed
        return
    except (PermanentFailure, jinja2.TemplateError, ConfigError) as exc:
        with conn.transaction():
            conn.execute(q.OUTBOX_FAILED, (str(exc), row_id))
        out.failed += 1
        return
    with conn.transaction():
        conn.execute(q.OUTBOX_SENT, (clock.now(), provider_ref, mailer.name, row_id))
    out.sent += 1


def record_receipt(conn: Conn, provider: str, provider_ref: str, receipt: Receipt) -> bool:
    """Settle a sent message by its provider's final word; False if no message awaited it
    (unknown, or settled already)."""
    row = conn.execute(
        q.OUTBOX_RECEIPT,
        {
            "status": "delivered" if receipt.delivered else "failed",
            "at": clock.now(),
            "reason": receipt.reason,
            "ref": provider_ref,
            "provider": provider,
        },
    ).fetchone()
    return row is not None


# a receipt normally comes within minutes; ask the provider of messages without one after
RECEIPT_GRACE = timedelta(minutes=10)
RECEIPT_ASK_EVERY = timedelta(minutes=30)


# Notify keeps a message's status for 7 days: a message with no final word by then stays
# 'sent' (taken by the provider, its delivery unknown) and is asked of no more
RECEIPT_GIVE_UP = timedelta(days=7)


def check_deliveries(conn: Conn, mailer: Mailer, limit: int = 100) -> int:
    """Ask the provider how messages it took went that have had no receipt (a lost callback,
    none configured); returns how many were settled."""
    now = clock.now()
    rows = conn.execute(
        q.OUTBOX_AWAITING_RECEIPT,
        {"provider": mailer.name, "sent_before": now - RECEIPT_GRACE,
         "sent_after": now - RECEIPT_GIVE_UP, "checked_before": now - RECEIPT_ASK_EVERY,
         "limit": limit},
    ).fetchall()  # fmt: skip
    settled = 0
    for row_id, provider_ref in rows:
        got = mailer.receipt(str(provider_ref))
        with conn.transaction():
            if got is not None and record_receipt(conn, mailer.name, str(provider_ref), got):
                settled += 1
            else:
                conn.execute(q.OUTBOX_CHECKED, (now, row_id))
    return settled


def send_outbox(conn: Conn, s: Settings) -> int:
    """The scheduled job: send what is due with the configured provider, then ask it about
    messages it has given no word on; returns how many were sent."""
    mailer = mailer_of(s)
    if mailer is None:
        return 0
    sent = send_due(conn, s, mailer).sent
    check_deliveries(conn, mailer)
    return sent


def forget(conn: Conn, ref_prefixes: list[str]) -> int:
    """Delete the messages of these events (references starting with one of the prefixes):
    what a household's erasure takes with its alerts."""
    if not ref_prefixes:
        return 0
    return conn.execute(q.OUTBOX_FORGET, (ref_prefixes,)).rowcount


def _erase_person(conn: Conn, email: str) -> dict[str, int]:
    erased = conn.execute(q.OUTBOX_ERASE_PERSON, {"email": normal_email(email)})
    return {"outbox": erased.rowcount}


# the outbox keeps addresses and what was written to them: erased with the person
KEEPER = Keeper("outbox", person=("outbox",), erase_person=_erase_person)
