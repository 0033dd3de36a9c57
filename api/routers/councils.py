"""Councils, fund rounds and guidance resources, for programme officers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import AuditedConn, Conn
from api.schemas import (
    Council,
    CouncilIn,
    CouncilPatch,
    FundRound,
    ReferenceData,
    Resource,
    ResourceIn,
)
from bids import records
from bids.regions import Region

router = APIRouter(prefix="/api/v1", tags=["councils"])

CodePath = Annotated[
    str, Path(pattern=r"^[A-Za-z]\d{8}$", description="ONS GSS code, e.g. E06000002")
]
CouncilType = Annotated[
    str | None,
    Query(
        pattern=r"^(unitary|non-metropolitan district|metropolitan district|london borough"
        r"|county)$",
        description="unitary, non-metropolitan district, metropolitan district, london borough "
        "or county",
    ),
]


@router.get("/councils", response_model=list[Council], summary="Find councils")
def list_councils(
    conn: Conn,
    q_: Annotated[
        str | None, Query(alias="q", max_length=100, description="Part of the name, or a GSS code")
    ] = None,
    council_type: CouncilType = None,
    region: Region | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[dict[str, Any]]:
    """Councils in the registry (the ONS April 2021 lookup plus councils officers added), by
    name. Search by part of a name (`q=middles`) or an exact GSS code."""
    return records.search_councils(
        conn,
        q=q_.replace("\x00", "") if q_ else None,
        type=council_type,
        region=region,
        limit=limit,
        offset=offset,
    )


@router.get("/councils/{code}", response_model=Council, summary="One council")
def get_council(code: CodePath, conn: Conn) -> dict[str, Any]:
    """A council by its GSS code."""
    return records.get_council(conn, code.upper())


@router.post("/councils", response_model=Council, status_code=201, summary="Add a council")
def add_council(body: CouncilIn, conn: AuditedConn) -> dict[str, Any]:
    """Add a council created after the registry's reference data (e.g. a new unitary). The type
    follows from the code's prefix: E06 unitary, E07 non-metropolitan district, E08 metropolitan
    district, E09 London borough, E10 county."""
    return records.add_council(conn, body.model_dump())


@router.patch("/councils/{code}", response_model=Council, summary="Correct a council")
def update_council(code: CodePath, body: CouncilPatch, conn: AuditedConn) -> dict[str, Any]:
    """Correct a council's name, region or upper tier. Only the fields sent change."""
    records.get_council(conn, code.upper())
    records.update_row(
        conn, "councils", "gss_code", code.upper(), body.model_dump(exclude_unset=True)
    )
    return records.get_council(conn, code.upper())


@router.get("/reference-data", response_model=list[ReferenceData], summary="Data vintages")
def reference_data(conn: Conn) -> list[dict[str, Any]]:
    """Which reference data seeded the registry: source, vintage, licence and when loaded."""
    return records.reference_data(conn)


@router.get("/fund-rounds", response_model=list[FundRound], summary="Fund rounds")
def list_rounds(conn: Conn) -> list[dict[str, Any]]:
    """Rounds of the weekly collection support fund that bids are made to."""
    return records.fund_rounds(conn)


@router.post("/fund-rounds", response_model=FundRound, status_code=201, summary="Add a round")
def add_round(body: FundRound, conn: AuditedConn) -> dict[str, Any]:
    """Add a fund round (code, name, dates, budget)."""
    return records.add_fund_round(conn, body.model_dump())


@router.get("/guidance-resources", response_model=list[Resource], summary="Guidance resources")
def list_resources(conn: Conn) -> list[dict[str, Any]]:
    """Published guidance that workshops link to."""
    return records.resources(conn)


@router.post(
    "/guidance-resources", response_model=Resource, status_code=201, summary="Add a resource"
)
def add_resource(body: ResourceIn, conn: AuditedConn) -> dict[str, Any]:
    """Record a guidance resource (title, web address, publication date)."""
    return records.add_resource(conn, body.title, body.url, body.published_on)
