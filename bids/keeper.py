"""What bid support keeps about people (core/keepers.py): attendees' registrations and the
speakers named on workshops. A person asking to be forgotten is found by email (their
registrations); a speaker by name (`registrations.erase_speaker`, its own route)."""

from __future__ import annotations

from bids import registrations
from bids.jobs import attendee_retention
from core.db import Conn
from core.keepers import Keeper


def _erase_person(conn: Conn, email: str) -> dict[str, int]:
    return {"registrations": registrations.erase_person(conn, email)}


KEEPER = Keeper(
    "bids",
    person=("registrations", "workshops"),
    other=(
        "workshop_resources",
        "guidance_resources",
        "bids",
        "bid_partners",
        "bid_status_history",
        "fund_rounds",
        "councils",
        "reference_data",
    ),
    erase_person=_erase_person,
    retention={"attendee_retention": attendee_retention},  # attendees of long-past workshops
    kept={
        "councils": "reference data: the registry of councils, not people",
        "reference_data": "which reference data seeded the registry",
    },
)
