"""Request and response bodies of the bid-support API (its own classes, not table rows)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

from bids.councils import gss_problem
from bids.regions import Region


def _storable(s: str) -> str:
    # PostgreSQL text holds neither NUL nor lone surrogates: refuse them here, with a message
    if "\x00" in s:
        raise ValueError("text must not contain NUL characters")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode") from exc
    return s


def _gss(code: str) -> str:
    problem = gss_problem(code)
    if problem:
        raise ValueError(problem)
    return code


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/London"
        ) from exc
    return name


_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _sensible(t: datetime) -> datetime:
    if not _EARLIEST <= t < _LATEST:
        raise ValueError("must be between 2000-01-01 and 2100-01-01")
    return t


Instant = Annotated[AwareDatetime, AfterValidator(_sensible)]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_storable),
]
LongText = Annotated[str, StringConstraints(max_length=4000), AfterValidator(_storable)]
GssCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, max_length=9),
    AfterValidator(_gss),
]
RoundCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Zone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_zone)]
Url = Annotated[
    str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000), AfterValidator(_storable)
]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- councils and reference data --------------------------------------------------------------


class CouncilIn(Body):
    gss_code: GssCode = Field(description="ONS GSS code, e.g. E06000002 (prefix E06-E10)")
    name: Text
    upper_tier_code: GssCode | None = Field(None, description="County of a district council")
    region: Region | None = None


class CouncilPatch(Body):
    name: Text | None = None
    upper_tier_code: GssCode | None = None
    region: Region | None = None


class Council(BaseModel):
    gss_code: str
    name: str
    council_type: str = Field(description="Derived from the code prefix")
    upper_tier_code: str | None
    region: str | None
    source: str = Field(description="'ons-ltla-utla-lookup 2021-04' or 'officer'")


class ReferenceData(BaseModel):
    name: str
    vintage: str
    source: str
    licence: str
    rows: int
    loaded_at: datetime


# --- fund rounds and guidance ------------------------------------------------------------------


class FundRound(Body):
    code: RoundCode = Field(description="Short code, e.g. 2012")
    name: Text
    opens_on: date | None = None
    closes_on: date | None = None
    results_on: date | None = None
    budget_gbp: Money | None = None


class ResourceIn(Body):
    title: Text
    url: Url
    published_on: date | None = None


class Resource(ResourceIn):
    id: int


# --- workshops ---------------------------------------------------------------------------------


class WorkshopStatus(StrEnum):
    PLANNED = "planned"
    HELD = "held"
    CANCELLED = "cancelled"


class Speaker(Body):
    name: Text
    organisation: Text


class WorkshopIn(Body):
    title: Text
    venue: Text
    town: Text
    region: Region | None = None
    starts_at: Instant = Field(description="Start, ISO 8601 with offset")
    ends_at: Instant = Field(description="End, ISO 8601 with offset")
    timezone: Zone = Field("Europe/London", description="Where the workshop happens (IANA)")
    capacity: int = Field(ge=1, le=10_000, description="Places")
    status: WorkshopStatus = WorkshopStatus.PLANNED
    speakers: list[Speaker] = Field(default_factory=list, max_length=50)
    resource_ids: list[Id] = Field(default_factory=list, max_length=50)


class WorkshopPatch(Body):
    title: Text | None = None
    venue: Text | None = None
    town: Text | None = None
    region: Region | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    timezone: Zone | None = None
    capacity: int | None = Field(None, ge=1, le=10_000)
    status: WorkshopStatus | None = None
    speakers: list[Speaker] | None = Field(None, max_length=50)
    resource_ids: list[Id] | None = Field(None, max_length=50)


class Workshop(BaseModel):
    id: int
    title: str
    venue: str
    town: str
    region: str | None
    starts_at: datetime
    ends_at: datetime
    timezone: str
    starts_local: str = Field(description="Start in the workshop's own time zone")
    capacity: int
    status: WorkshopStatus
    speakers: list[Speaker]
    resources: list[Resource]
    places_taken: int = Field(
        description="Registered, attended and no-show registrations, and places held for an "
        "offer from the waiting list"
    )
    places_free: int
    offered: int = Field(
        0, description="Places offered from the waiting list, held till a deadline"
    )
    waiting: int = Field(description="People on the waiting list")


# --- registrations -----------------------------------------------------------------------------


class RegistrationStatus(StrEnum):
    REGISTERED = "registered"
    WAITING = "waiting"
    OFFERED = "offered"  # a freed place held for them until offer_expires_at
    LAPSED = "lapsed"  # the offer ran out; the place went to the next person
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class RegistrationIn(Body):
    council_code: GssCode = Field(description="GSS code of the person's council")
    person_name: Text
    person_role: Text | None = None
    email: Annotated[EmailStr, StringConstraints(max_length=254)]


class StatusChange(Body):
    status: RegistrationStatus


class Registration(BaseModel):
    id: int
    workshop_id: int
    council_code: str
    council_name: str
    person_name: str | None = Field(description="None once the person's data is erased")
    person_role: str | None
    email: str | None
    status: RegistrationStatus
    waiting_position: int | None = Field(description="1 = next to get a place")
    offer_expires_at: datetime | None = Field(
        None, description="An offered place is held for them until then"
    )
    recorded_by: str
    created_at: datetime
    updated_at: datetime
    erased: bool


class ErasureIn(Body):
    email: Annotated[EmailStr, StringConstraints(max_length=254)]


class Erasure(BaseModel):
    registrations_erased: int
    messages_erased: int = Field(0, description="Outbox messages to them, blanked")


class SpeakerErasureIn(Body):
    name: Text


class SpeakerErasure(BaseModel):
    workshops: int = Field(description="Workshops whose speakers named the person")


# --- bids --------------------------------------------------------------------------------------


class BidStatus(StrEnum):
    INTENDING = "intending"
    SUBMITTED = "submitted"
    SUCCESSFUL = "successful"
    UNSUCCESSFUL = "unsuccessful"
    WITHDRAWN = "withdrawn"


Scheme = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200),
                   AfterValidator(_storable)]  # fmt: skip
Partners = Annotated[
    list[GssCode], Field(max_length=50, description="Partner councils of a joint bid")
]


class BidIn(Body):
    council_code: GssCode = Field(description="The lead council (of a joint bid, the bidder)")
    round_code: RoundCode
    scheme: Scheme = Field("", description="The scheme's name: a council may bid for several")
    partner_codes: Partners = Field(default_factory=list)
    status: BidStatus
    amount_requested: Money | None = None
    amount_awarded: Money | None = None
    submitted_on: date | None = None
    decided_on: date | None = None
    notes: LongText = ""


class BidPatch(Body):
    scheme: Scheme | None = None
    partner_codes: Partners | None = None
    status: BidStatus | None = None
    amount_requested: Money | None = None
    amount_awarded: Money | None = None
    submitted_on: date | None = None
    decided_on: date | None = None
    notes: LongText | None = None


class BidEvent(BaseModel):
    status: BidStatus
    amount_awarded: Decimal | None
    on_date: date | None
    recorded_at: datetime


class Bid(BaseModel):
    id: int
    council_code: str
    council_name: str
    round_code: str
    scheme: str
    partner_codes: list[str]
    status: BidStatus
    amount_requested: Decimal | None
    amount_awarded: Decimal | None
    submitted_on: date | None
    decided_on: date | None
    notes: str
    history: list[BidEvent] = Field(description="Every status it has had, oldest first")


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    table_name: str
    row_key: str
    action: str
    before: dict[str, object] | None
    after: dict[str, object] | None
