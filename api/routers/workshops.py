"""Workshops, registrations, attendance and attendance-sheet imports, for programme officers."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from pydantic import BaseModel, Field

from api.deps import Actor, AuditedConn, Conn, read_upload, with_connection
from api.keepers import KEEPERS
from api.schemas import (
    Erasure,
    ErasureIn,
    Registration,
    RegistrationIn,
    RegistrationStatus,
    SpeakerErasure,
    SpeakerErasureIn,
    StatusChange,
    Workshop,
    WorkshopIn,
    WorkshopPatch,
    WorkshopStatus,
)
from api.security import SHEET_BODY_LIMIT
from bids import imports, records, registrations
from bids.regions import Region
from core import keepers
from core.audit import set_actor
from core.errors import Invalid

router = APIRouter(prefix="/api/v1", tags=["workshops"])


IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


def workshop(workshop_id: IdPath, conn: Conn) -> dict[str, Any]:
    """The workshop of the path, or 404."""
    return records.get_workshop(conn, workshop_id)


WorkshopRow = Annotated[dict[str, Any], Depends(workshop)]


@router.get("/workshops", response_model=list[Workshop], summary="List workshops")
def list_workshops(
    conn: Conn, status: WorkshopStatus | None = None, region: Region | None = None
) -> list[dict[str, Any]]:
    """Bid workshops, earliest first, with places taken and the waiting list's length."""
    return records.list_workshops(conn, status, region)


@router.post("/workshops", response_model=Workshop, status_code=201, summary="Add a workshop")
def create_workshop(body: WorkshopIn, conn: AuditedConn) -> dict[str, Any]:
    """Record a workshop: title, venue, town, region, start and end (ISO 8601 with offset; the
    `timezone` says where it happens), capacity, speakers and linked guidance resources."""
    if body.ends_at <= body.starts_at:
        raise Invalid("a workshop must end after it starts")
    return records.create_workshop(conn, body.model_dump(mode="python"))


@router.get("/workshops/{workshop_id}", response_model=Workshop, summary="One workshop")
def get_workshop(w: WorkshopRow) -> dict[str, Any]:
    """A workshop with its places taken and free and its waiting list's length."""
    return w


@router.patch("/workshops/{workshop_id}", response_model=Workshop, summary="Change a workshop")
def update_workshop(w: WorkshopRow, body: WorkshopPatch, conn: AuditedConn) -> dict[str, Any]:
    """Change a workshop; only the fields sent change. Mark it `held` after the day or
    `cancelled`. Raising the capacity gives places to the waiting list in order; capacity cannot
    go below the places already taken."""
    changes = body.model_dump(mode="python", exclude_unset=True)
    for k in (
        "title", "venue", "town", "starts_at", "ends_at", "timezone", "capacity", "status",
        "speakers", "resource_ids",
    ):  # fmt: skip
        if k in changes and changes[k] is None:
            raise Invalid(f"{k} cannot be null; leave it out to keep it (a list may be [])")
    return records.update_workshop(conn, int(w["id"]), changes)


@router.get(
    "/workshops/{workshop_id}/registrations",
    response_model=list[Registration],
    summary="A workshop's registrations",
)
def list_registrations(
    w: WorkshopRow, conn: Conn, status: RegistrationStatus | None = None
) -> list[dict[str, Any]]:
    """Everyone registered for the workshop, in the order they registered; people waiting carry
    their place on the waiting list."""
    return registrations.list_registrations(conn, int(w["id"]), status)


@router.post(
    "/workshops/{workshop_id}/registrations",
    response_model=Registration,
    status_code=201,
    summary="Register a person",
)
def register(
    w: WorkshopRow, body: RegistrationIn, conn: AuditedConn, actor: Actor
) -> dict[str, Any]:
    """Register a person from a council. They get a place while places are free, otherwise they
    join the waiting list (`status: waiting`, with `waiting_position`). One registration per
    email address per workshop."""
    return registrations.register(
        conn,
        int(w["id"]),
        body.council_code,
        body.person_name,
        body.person_role,
        str(body.email),
        actor,
    )


@router.get(
    "/registrations/{registration_id}", response_model=Registration, summary="One registration"
)
def get_registration(registration_id: IdPath, conn: Conn) -> dict[str, Any]:
    """A registration by id."""
    return registrations.get_registration(conn, registration_id)


@router.patch(
    "/registrations/{registration_id}",
    response_model=Registration,
    summary="Record attendance or a cancellation",
)
def change_status(registration_id: IdPath, body: StatusChange, conn: AuditedConn) -> dict[str, Any]:
    """Move a registration on: `attended` or `no_show` on or after the day, `cancelled` at any
    time. A place freed in a workshop still to come is offered to the first person on the
    waiting list (`offered`, held for them till `offer_expires_at`, with an e-mail to accept or
    decline); an offered place becomes `registered` when they (or an officer for them) take
    it."""
    return registrations.change_status(conn, registration_id, body.status.value)


class ImportProblem(BaseModel):
    field: str
    message: str
    suggestion: str | None = None
    suggestion_code: str | None = None


class ImportRow(BaseModel):
    row: int = Field(description="Row number in the sheet")
    name: str
    email: str
    council: str
    council_code: str | None
    status: str | None
    outcome: str = Field(description="new, update, unchanged or error")
    problems: list[ImportProblem]
    registration_id: int | None


class ImportResult(BaseModel):
    committed: bool
    counts: dict[str, int]
    sheet_problems: list[str]
    rows: list[ImportRow]


@router.post(
    "/workshops/{workshop_id}/attendance-import",
    response_model=ImportResult,
    max_body_size=SHEET_BODY_LIMIT,
    summary="Import an attendance sheet",
)
async def import_attendance(
    request: Request,
    workshop_id: IdPath,
    file: Annotated[UploadFile, File(description="The sheet: .xlsx or .csv")],
    actor: Actor,
    commit: Annotated[
        bool, Query(description="false: preview only (default); true: apply the good rows")
    ] = False,
    accept_suggestions: Annotated[
        bool, Query(description="Take the closest council name where a name is misspelt")
    ] = False,
) -> ImportResult:
    """Check an attendance sheet against the workshop and the council registry. Headers are
    recognised in the usual wordings (Name, Email, Council or GSS code, Attended). Every row's
    problems are listed — unknown council (with the closest match), bad email, duplicate. With
    `commit=true` the rows without problems are applied together; importing the same sheet
    again changes nothing. The sheet is read (within a time and memory budget) before a
    database connection is taken; a sheet that cannot be read is a 422 that says why."""
    rows = await read_upload(request, file)

    def apply(conn: psycopg.Connection[tuple[object, ...]]) -> imports.ImportResult:
        set_actor(conn, actor)
        w = records.get_workshop(conn, workshop_id)
        return imports.import_sheet(conn, w, rows, actor, commit, accept_suggestions)

    result = await with_connection(request, apply)
    return ImportResult.model_validate(result, from_attributes=True)


@router.post("/speakers/erasure", response_model=SpeakerErasure, summary="Erase a speaker's name")
def erase_speaker(body: SpeakerErasureIn, conn: AuditedConn) -> SpeakerErasure:
    """Erase a speaker: their name and organisation go from every workshop's speakers and from
    the audit log's earlier rows of those workshops (names compared without regard to case or
    compatibility forms)."""
    return SpeakerErasure(workshops=registrations.erase_speaker(conn, body.name))


@router.post("/people/erasure", response_model=Erasure, summary="Erase a person's data")
def erase_person(body: ErasureIn, conn: AuditedConn) -> Erasure:
    """Erase a person's personal data (name, role, email) from every registration, from the
    messages sent or queued to them and from the audit log; the registrations stay, anonymous,
    so take-up counts do not change."""
    done = keepers.erase_person(KEEPERS, conn, str(body.email))
    return Erasure(
        registrations_erased=done.get("registrations", 0), messages_erased=done.get("outbox", 0)
    )
