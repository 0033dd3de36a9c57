"""Bids to the fund and the audit log, for programme officers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from psycopg.rows import dict_row

from api.deps import AuditedConn, Conn
from api.schemas import AuditEntry, Bid, BidIn, BidPatch, BidStatus, GssCode, RoundCode
from bids import queries as q
from bids import records

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


@router.get("/audit", response_model=list[AuditEntry], summary="Audit log")
def audit(
    conn: Conn,
    table: Annotated[
        str | None,
        Query(
            pattern=r"^(councils|fund_rounds|guidance_resources|workshops|workshop_resources|"
            r"registrations|bids|bid_partners)$",
            description="Only changes to this table",
        ),
    ] = None,
    key: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9._-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Every change to the bid-support records, newest first: who, what, when, before and
    after. The log is append-only; an erased person's details are blanked in it too."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.SELECT_AUDIT, {"table": table, "key": key, "limit": limit}).fetchall()
