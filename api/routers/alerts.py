"""Field-visit alerts through the API: list them, acknowledge, assign, resolve (analysts and
field teams; analytics/alerts.py has the lifecycle)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, StringConstraints

from analytics import alerts
from api.deps import Actor, AuditedConn, Conn

router = APIRouter(prefix="/api/v1", tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**62)]
State = Literal["pending", "open", "acknowledged", "resolved"]


class AlertOut(BaseModel):
    id: int
    kind: str = Field(description="offline, jam_rate, leak or water_per_use")
    device_id: str
    household_ref: str
    state: State
    detail: str
    first_found: datetime
    last_found: datetime
    opened_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    assigned_to: str | None
    escalation_level: int = Field(description="The rota's position last told (0: the first)")
    resolved_at: datetime | None
    resolved_by: str | None = Field(description="Who resolved it; null: the check cleared")
    resolution_note: str | None


class HistoryOut(BaseModel):
    at: datetime
    action: str
    actor: str | None
    note: str | None


class AssignIn(BaseModel):
    to: Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]


class ResolveIn(BaseModel):
    note: Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


@router.get("/alerts", response_model=list[AlertOut], summary="Field-visit alerts")
def list_alerts(
    conn: Conn,
    state: Annotated[
        State | Literal["all"] | None, Query(description="Default: every live one; all: any")
    ] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    household: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AlertOut]:
    """Alerts newest first (at most 500): by default those not resolved."""
    rows = alerts.list_alerts(conn, state=state, kind=kind, household=household)
    return [AlertOut.model_validate(r) for r in rows]


@router.get(
    "/alerts/{alert_id}/history", response_model=list[HistoryOut], summary="An alert's history"
)
def alert_history(alert_id: AlertId, conn: Conn) -> list[HistoryOut]:
    return [HistoryOut.model_validate(r) for r in alerts.history(conn, alert_id)]


@router.post("/alerts/{alert_id}/acknowledge", status_code=204, summary="Acknowledge an alert")
def acknowledge(alert_id: AlertId, conn: AuditedConn, actor: Actor) -> None:
    """You take it on: the rota is told no further. 409 if it is resolved, not open yet, or
    acknowledged already."""
    alerts.acknowledge(conn, alert_id, actor)


@router.post("/alerts/{alert_id}/assign", status_code=204, summary="Assign an alert")
def assign(alert_id: AlertId, body: AssignIn, conn: AuditedConn, actor: Actor) -> None:
    alerts.assign(conn, alert_id, body.to, actor)


@router.post("/alerts/{alert_id}/resolve", status_code=204, summary="Resolve an alert")
def resolve(alert_id: AlertId, body: ResolveIn, conn: AuditedConn, actor: Actor) -> None:
    """Close it with a note (a visit done, a false alarm); nobody is sent anything."""
    alerts.resolve(conn, alert_id, actor, body.note)
