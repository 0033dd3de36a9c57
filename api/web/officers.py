"""The officers' pages: workshops, attendance, sheet imports, the take-up report."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import SESSION_COOKIE, csrf_token
from api.deps import Conn, read_upload, with_connection
from api.errors import USER_ERRORS, UserError, http_error, status_of
from api.security import SHEET_BODY_LIMIT
from api.web.common import check_csrf, need, page
from bids import imports, notices, records, registrations, report
from core import auth, display
from core.audit import set_actor
from core.clock import LONDON
from core.errors import SheetError

router = APIRouter(include_in_schema=False)
Connection = psycopg.Connection[tuple[object, ...]]
FIELDS = [
    ("person_name", "Full name", "text", None),
    ("person_role", "Job title", "text", None),
    ("email", "Email address", "email", None),
    (
        "council",
        "Council",
        "text",
        "The council's name or its GSS code, for example Leeds or E08000035",
    ),
]


@router.get("/officers/workshops")
def workshops_page(request: Request, conn: Conn) -> HTMLResponse:
    p = need(request, conn, "officer")
    ws = records.list_workshops(conn, None, None)
    return page(request, "workshops.html", title="Bid workshops", workshops=ws, user=p)


def _workshop_page(
    request: Request,
    conn: Conn,
    p: auth.Principal,
    wid: int,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    w = records.get_workshop(conn, wid)
    regs = registrations.list_registrations(conn, wid, None)
    token = request.cookies.get(SESSION_COOKIE, "")
    # "booked" is recorded with the form below, except for an offer taken on the person's behalf
    transitions = {
        k: sorted(v if k == "offered" else v - {"registered"})
        for k, v in registrations.TRANSITIONS.items()
    }
    return page(
        request,
        "workshop.html",
        status,
        title=w["title"],
        w=w,
        registrations=regs,
        messages=notices.sent_for_workshop(conn, wid),
        csrf=csrf_token(token),
        fields=FIELDS,
        errors=errors or {},
        values=values or {},
        transitions=transitions,
        user=p,
    )


@router.get("/officers/workshops/{wid}")
def workshop_page(request: Request, conn: Conn, wid: int) -> HTMLResponse:
    p = need(request, conn, "officer")
    try:
        return _workshop_page(request, conn, p, wid)
    except USER_ERRORS as exc:
        raise http_error(exc) from exc


@router.post("/officers/workshops/{wid}/attendance")
def record_attendance(
    request: Request,
    conn: Conn,
    wid: int,
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    person_name: Annotated[str, Form(max_length=200)] = "",
    person_role: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    council: Annotated[str, Form(max_length=200)] = "",
    status: Annotated[str, Form(max_length=20)] = "attended",
) -> Response:
    """Record one person's attendance, with GOV.UK-style errors when something is wrong."""
    p = need(request, conn, "officer")
    check_csrf(request, csrf_token_)
    values = {
        "person_name": person_name,
        "person_role": person_role,
        "email": email,
        "council": council,
        "status": status,
    }
    errors: dict[str, str] = {}
    if not person_name.strip():
        errors["person_name"] = "Enter the person's full name"
    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        errors["email"] = "Enter an email address in the correct format, like name@example.org"
    w = records.get_workshop(conn, wid)
    on = w["starts_at"].astimezone(LONDON).date()  # the councils of the workshop's day
    m = records.council_matcher(conn).match(council, on) if council.strip() else None
    if m is None:
        errors["council"] = "Enter the person's council"
    elif m.gss_code is None:
        why = m.explain(council)
        errors["council"] = why[:1].upper() + why[1:]
    if status not in ("attended", "registered", "no_show"):
        errors["status"] = "Choose whether they attended"
    if not errors:
        assert m is not None  # noqa: S101  (checked above)
        assert m.gss_code is not None  # noqa: S101
        try:
            reg = registrations.register(
                conn,
                wid,
                m.gss_code,
                person_name.strip(),
                person_role.strip() or None,
                email,
                p.username,
            )
            if status != "registered" and reg["status"] == "registered":
                registrations.change_status(conn, int(reg["id"]), status)
        except USER_ERRORS as exc:
            conn.rollback()
            errors[exc.field or "person_name"] = str(exc).capitalize()
    if errors:
        return _workshop_page(request, conn, p, wid, 422, errors, values)
    return RedirectResponse(f"/officers/workshops/{wid}#attendance", 303)


@router.post("/officers/registrations/{rid}/status")
def change_status(
    request: Request,
    conn: Conn,
    rid: int,
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    status: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    need(request, conn, "officer")
    check_csrf(request, csrf_token_)
    try:
        reg = registrations.change_status(conn, rid, status)
    except USER_ERRORS as exc:
        raise http_error(exc) from exc
    return RedirectResponse(f"/officers/workshops/{reg['workshop_id']}#attendance", 303)


@router.get("/officers/workshops/{wid}/import")
def import_page(request: Request, conn: Conn, wid: int) -> HTMLResponse:
    p = need(request, conn, "officer")
    w = records.get_workshop(conn, wid)
    return page(
        request,
        "import.html",
        title="Import an attendance sheet",
        w=w,
        result=None,
        csrf=csrf_token(request.cookies.get(SESSION_COOKIE, "")),
        user=p,
    )


@router.post("/officers/workshops/{wid}/import", max_body_size=SHEET_BODY_LIMIT)
async def import_sheet(
    request: Request,
    wid: int,
    file: Annotated[UploadFile, File()],
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    commit: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """The same path as the API's import: the sheet is read within its budget before the
    database connection for the import is taken, and refused whole above the same size."""

    def who(conn: Connection) -> tuple[auth.Principal, dict[str, Any]]:
        p = need(request, conn, "officer")
        check_csrf(request, csrf_token_)
        return p, records.get_workshop(conn, wid)

    p, w = await with_connection(request, who)
    ctx: dict[str, Any] = {"title": "Import an attendance sheet", "w": w, "user": p}
    try:
        rows = await read_upload(request, file)
    except SheetError as exc:
        return page(request, "import.html", 422, errors={"file": str(exc)}, result=None, **ctx)

    def apply(conn: Connection) -> imports.ImportResult | UserError:
        set_actor(conn, p.username)
        try:
            return imports.import_sheet(conn, w, rows, p.username, commit == "yes")
        except USER_ERRORS as exc:
            conn.rollback()
            return exc

    result = await with_connection(request, apply)
    if not isinstance(result, imports.ImportResult):
        code = status_of(result) or 500
        return page(request, "import.html", code, errors={"file": str(result)}, result=None, **ctx)
    return page(request, "import.html", result=result, **ctx)


@router.get("/officers/take-up")
def take_up_page(request: Request, conn: Conn) -> HTMLResponse:
    p = need(request, conn, "officer")
    r = report.take_up(conn)
    summary = [
        ("Councils reached", display.count(r.councils_reached, "council")),
        ("People who attended", display.count(r.people_attended, "person", "people")),
        ("Attendance rate (of those booked)", display.percent(r.attendance_rate, 0)),
        ("Councils reached that bid", display.count(r.reached_and_bid, "council")),
        ("Councils reached that were funded", display.count(r.reached_and_funded, "council")),
        ("Awarded to councils reached", display.money(r.reached_amount_awarded)),
    ]
    by_type = [
        (display.words(k), display.count(n, "council")) for k, n in r.by_council_type.items()
    ]
    by_region = [(k, display.count(n, "council")) for k, n in r.by_region.items()]
    return page(
        request,
        "take_up.html",
        title="Take-up report",
        r=r,
        summary=summary,
        by_type=by_type,
        by_region=by_region,
        user=p,
    )


@router.get("/officers/take-up.{fmt}")
def take_up_file(request: Request, conn: Conn, fmt: str) -> Response:
    need(request, conn, "officer")
    r = report.take_up(conn)
    if fmt == "csv":
        return Response(
            report.to_csv(r),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="take-up.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            report.to_xlsx(r),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="take-up.xlsx"'},
        )
    raise HTTPException(404, "csv or xlsx")


# --- analysts --------------------------------------------------------------------------------
