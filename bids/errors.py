"""The database's refusals of bid-support records, turned into errors that tell the officer
what to fix (the error classes are in core/errors.py; the API maps them to status codes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pgerrors

from core.errors import Conflict, Invalid

# constraint name -> (kind, what the officer should be told[, the input it is about])
_CONSTRAINT_MESSAGES: dict[
    str, tuple[type[Conflict | Invalid], str] | tuple[type[Conflict | Invalid], str, str]
] = {
    "registrations_one_per_email": (
        Conflict,
        "this email address is already registered for the workshop; change that registration "
        "instead of adding another",
        "email",
    ),
    "bids_one_per_scheme": (
        Conflict,
        "the council already has a bid for this scheme in this fund round; change that bid, "
        "or name the other scheme",
    ),
    "bid_partners_council_code_fkey": (Invalid, "no council with this GSS code is registered"),
    "councils_pkey": (Conflict, "a council with this GSS code is already in the registry"),
    "fund_rounds_pkey": (Conflict, "a fund round with this code already exists"),
    "workshop_resources_pkey": (Conflict, "the resource is already linked to the workshop"),
    "bids_award_only_if_awarded": (
        Invalid,
        "an amount awarded can only be recorded on a successful bid (or one withdrawn after its "
        "award); set status to successful",
    ),
    "bids_decided_after_submitted": (Invalid, "decided_on must not be before submitted_on"),
    "workshops_ends_after_start": (Invalid, "a workshop must end after it starts"),
    "registrations_council_code_fkey": (Invalid, "no council with this GSS code is registered"),
    "bids_council_code_fkey": (Invalid, "no council with this GSS code is registered"),
    "bids_round_code_fkey": (Invalid, "no fund round with this code exists; add it first"),
    "councils_upper_tier_code_fkey": (
        Invalid,
        "the upper-tier council code is not in the registry",
    ),
    "workshop_resources_resource_id_fkey": (Invalid, "no guidance resource with this id exists"),
}


@contextmanager
def translated() -> Iterator[None]:
    """Turn the database's refusals into errors that tell the officer what to fix."""
    try:
        yield
    except psycopg.IntegrityError as exc:
        name = exc.diag.constraint_name or ""
        if name in _CONSTRAINT_MESSAGES:
            cls, message, *about = _CONSTRAINT_MESSAGES[name]
            raise cls(message, field=about[0] if about else None) from exc
        if isinstance(exc, pgerrors.CheckViolation) and not name:
            # raised by our triggers (capacity, cancelled workshop): their text is the message
            raise Conflict(exc.diag.message_primary or "refused by the database") from exc
        raise Invalid(exc.diag.message_primary or "refused by the database") from exc
