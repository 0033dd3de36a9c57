"""The bid-support jobs the scheduler runs (through core/jobs.py's runner)."""

from __future__ import annotations

from bids.notices import remind, workshop_offers
from bids.registrations import erase_expired
from core.audit import set_actor
from core.db import Conn
from core.jobs import JobFn
from core.settings import Settings


def attendee_retention(conn: Conn, s: Settings) -> int:
    """Bid support's retention rule: anonymise attendees of long-past workshops."""
    with conn.transaction():
        set_actor(conn, "retention job")
        return erase_expired(conn, s.attendee_retention_days)


BIDS_JOBS: dict[str, JobFn] = {
    "attendee_retention": attendee_retention,
    "workshop_offers": workshop_offers,  # waiting-list offers: lapse and stamp (bids/notices.py)
    "workshop_reminders": remind,
}
