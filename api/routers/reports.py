"""The take-up report for the programme board, as JSON, CSV and XLSX."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.deps import Conn
from api.schemas import Instant, RoundCode
from bids import report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


class TakeUp(BaseModel):
    round_code: str | None = Field(description="Fund round the bid figures are for")
    sentence: str = Field(description="The board-paper sentence, generated from the figures")
    councils_reached: int = Field(description="Distinct councils with at least one attendee")
    people_attended: int
    attendance_rate: float | None = Field(
        description="Attended ÷ places taken (registered + attended + no-show), held workshops"
    )
    by_council_type: dict[str, int] = Field(description="Councils reached per council type")
    by_region: dict[str, int] = Field(description="Councils reached per region")
    reached_and_bid: int = Field(description="Councils reached that submitted a bid")
    reached_and_funded: int = Field(description="Councils reached whose bid succeeded")
    reached_amount_requested: Decimal
    reached_amount_awarded: Decimal
    bids_in_round: int = Field(description="All submitted bids in the round, reached or not")
    funded_in_round: int
    workshops: list[dict[str, Any]] = Field(description="Per workshop: places, attendance")
    councils: list[dict[str, Any]] = Field(description="Per council reached or bidding")


Round = Annotated[
    RoundCode | None, Query(alias="round", description="Fund round code; default the latest")
]
Start = Annotated[Instant | None, Query(description="Workshops starting from (inclusive)")]
End = Annotated[Instant | None, Query(description="Workshops starting before")]


@router.get("/take-up", response_model=TakeUp, summary="Take-up report")
def take_up(conn: Conn, round_code: Round = None, start: Start = None, end: End = None) -> Any:
    """How many distinct councils the workshops reached, where (council type, region), how many
    of those registered actually attended, and how many of the councils reached then bid and
    were funded — with the sentence for the board paper."""
    return report.take_up(conn, round_code, start, end).as_dict()


@router.get("/take-up.csv", summary="Take-up report, CSV", response_class=Response)
def take_up_csv(
    conn: Conn, round_code: Round = None, start: Start = None, end: End = None
) -> Response:
    """One row per council reached or bidding: code, name, type, region, workshops and people
    attended, bid status and amounts."""
    body = report.to_csv(report.take_up(conn, round_code, start, end))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="take-up.csv"'},
    )


@router.get("/take-up.xlsx", summary="Take-up report, Excel", response_class=Response)
def take_up_xlsx(
    conn: Conn, round_code: Round = None, start: Start = None, end: End = None
) -> Response:
    """The report as a workbook: Summary (with the sentence), Workshops and Councils sheets."""
    body = report.to_xlsx(report.take_up(conn, round_code, start, end))
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="take-up.xlsx"'},
    )
