"""Bids to the fund and the audit log, for programme officers."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, File, HTTPException, Path, Query, Request, UploadFile
from pydantic import BaseModel, Field

from api.auth import Caller
from api.deps import Actor, AuditedConn, Conn, read_upload, with_connection
from api.routers.workshops import ImportProblem
from api.schemas import AuditEntry, Bid, BidIn, BidPatch, BidStatus, GssCode, RoundCode
from api.security import SHEET_BODY_LIMIT
from bids import awards, records
from bids.sheets import AWARDS
from core.audit import set_actor

router = APIRouter(prefix="/api/v1", tags=["bids"])

IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/bids", response_model=list[Bid], summary="List bids")
def list_bids(
    conn: Conn,
    round_code: Annotated[RoundCode | None, Query(alias="round")] = None,
    status: BidStatus | None = None,
    council: GssCode | None = None,
) -> list[dict[str, Any]]:
    """Bids, optionally for one fund round, status or council."""
    return records.list_bids(conn, round=round_code, status=status, council=council)


@router.post("/bids", response_model=Bid, status_code=201, summary="Record a bid")
def create_bid(body: BidIn, conn: AuditedConn) -> dict[str, Any]:
    """Record a bid to a fund round: the lead council, the partner councils of a joint bid, the
    scheme (a council may bid for several in one round), status (intending, submitted,
    successful, unsuccessful, withdrawn), amounts requested and awarded, dates. Every status it
    has had is kept in its history, with the award as it stood (a bid withdrawn after its award
    keeps it there)."""
    return records.create_bid(conn, body.model_dump())


@router.get("/bids/{bid_id}", response_model=Bid, summary="One bid")
def get_bid(bid_id: IdPath, conn: Conn) -> dict[str, Any]:
    """A bid by id."""
    return records.get_bid(conn, bid_id)


@router.patch("/bids/{bid_id}", response_model=Bid, summary="Update a bid")
def update_bid(bid_id: IdPath, body: BidPatch, conn: AuditedConn) -> dict[str, Any]:
    """Move a bid on (e.g. submitted → successful with the amount awarded); only the fields
    sent change."""
    changes = body.model_dump(exclude_unset=True)
    if "status" in changes and changes["status"] is None:
        changes.pop("status")
    return records.update_bid(conn, bid_id, changes)


class AwardRow(BaseModel):
    row: int = Field(description="Row number in the sheet")
    council: str
    council_code: str | None
    scheme: str
    amount: Decimal | None
    partner_codes: list[str]
    outcome: str = Field(description="new, update, unchanged or error")
    problems: list[ImportProblem]
    bid_id: int | None


class AwardImport(BaseModel):
    committed: bool
    round_code: str
    counts: dict[str, int]
    rows: list[AwardRow]


@router.post(
    "/fund-rounds/{code}/award-import",
    response_model=AwardImport,
    summary="Import a published award list",
    max_body_size=SHEET_BODY_LIMIT,
)
async def import_award_list(
    request: Request,
    code: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")],
    file: Annotated[UploadFile, File(description="The list: .xlsx or .csv")],
    actor: Actor,
    commit: Annotated[
        bool, Query(description="false: preview only (default); true: apply the good rows")
    ] = False,
) -> AwardImport:
    """Import a fund's published award list into a round: a council (or a partnership's lead
    council), the scheme, the amount awarded ('£1,234,567', '£1.2m'), and partner councils
    separated by ';'. Councils are matched as they were on the round's results day, as in
    attendance sheets; each good row becomes (or updates) that council's successful bid for the
    scheme. Preview first; the same list again changes nothing."""
    rows = await read_upload(request, file, AWARDS)

    def apply(conn: psycopg.Connection[tuple[object, ...]]) -> awards.AwardResult:
        set_actor(conn, actor)
        return awards.import_awards(conn, code, rows, commit)

    result = await with_connection(request, apply)
    return AwardImport.model_validate(result, from_attributes=True)


# whose changes each role may read in the audit log: what it may list elsewhere
BID_SUPPORT_TABLES = (
    "councils",
    "fund_rounds",
    "guidance_resources",
    "workshops",
    "workshop_resources",
    "registrations",
    "bids",
    "bid_partners",
)
ADMIN_TABLES = ("users", "api_tokens", "devices")


@router.get("/audit", response_model=list[AuditEntry], summary="Audit log")
def audit(
    conn: Conn,
    caller: Caller,
    table: Annotated[
        str | None,
        Query(
            pattern="^(" + "|".join(BID_SUPPORT_TABLES + ADMIN_TABLES) + ")$",
            description="Only changes to this table (users, api_tokens and devices: admins only)",
        ),
    ] = None,
    key: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9._-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Every change to the bid-support records, newest first: who, what, when, before and
    after — and, for admins, to people, their tokens and devices. The log is append-only; an
    erased person's details are blanked in it too."""
    tables = BID_SUPPORT_TABLES + (ADMIN_TABLES if caller.role == "admin" else ())
    if table is not None and table not in tables:
        raise HTTPException(403, f"a {caller.role} may not read changes to {table}")
    return records.audit_trail(conn, list(tables), table, key, limit)
