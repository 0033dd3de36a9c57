"""The one clock of the pilot's time: every "now" that decides what the product does comes from
here — the simulator's timeline, ingest's "stamped in the future" check, rollup and retention
windows, device health ("not heard from for 48 h"), "the last 30 days", the weekly report's
week, the start of a workshop, attendee retention.

A process's clock is real time unless it was moved: ``WASTEPILOT_CLOCK_AT`` (Settings.clock_at,
applied by the CLI at start) makes it read that instant when the process starts and run on at
the normal pace, so the whole pilot can be run, and tested, at any date. Tests inside one
process move or stop it with :func:`frozen_at`. Child processes get the parent's shift
(:func:`shift` / :func:`set_shift`).

Not here: security expiries (API tokens, sessions, sign-in throttling) and the database's own
bookkeeping stamps (``received_at``, ``updated_at``) stay on real time, so a moved clock never
makes a credential valid or expired.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


class _Clock:
    """Real time plus a shift, or a frozen instant (tests)."""

    __slots__ = ("frozen", "shift")

    def __init__(self) -> None:
        self.shift = timedelta(0)
        self.frozen: datetime | None = None

    def now(self) -> datetime:
        if self.frozen is not None:
            return self.frozen
        return datetime.now(UTC) + self.shift


_CLOCK = _Clock()


def now() -> datetime:
    """The pilot's current instant (aware, UTC)."""
    return _CLOCK.now()


def today() -> date:
    """The pilot's current date in the UK (Europe/London), which is what "today" means for
    people here: at 00:30 BST on a Monday it is Monday, though UTC still says Sunday."""
    return now().astimezone(LONDON).date()


def start_at(instant: datetime | None) -> None:
    """Make this process's clock read ``instant`` now and run on from there (None: real time)."""
    if instant is None:
        set_shift(0.0)
        return
    if instant.tzinfo is None:
        raise ValueError("the clock's instant needs a time zone, e.g. 2027-05-30T12:00:00Z")
    set_shift((instant - datetime.now(UTC)).total_seconds())


def shift() -> float:
    """Seconds this process's clock is ahead of real time (negative: behind), for a child
    process to take (a frozen clock hands on its instant, from which the child's runs on)."""
    return (_CLOCK.now() - datetime.now(UTC)).total_seconds()


def set_shift(seconds: float) -> None:
    """Run this process's clock ``seconds`` ahead of real time (a child taking its parent's)."""
    _CLOCK.shift = timedelta(seconds=seconds)


@contextmanager
def frozen_at(instant: datetime) -> Iterator[datetime]:
    """Stop the clock at ``instant`` inside the block (tests of one process)."""
    if instant.tzinfo is None:
        raise ValueError("the clock's instant needs a time zone")
    before = _CLOCK.frozen
    _CLOCK.frozen = instant.astimezone(UTC)
    try:
        yield _CLOCK.frozen
    finally:
        _CLOCK.frozen = before
