"""Web pages served by the API: officers' workshop pages and the analysts' dashboard.

Pages sign in with the cookie session of `/api/v1/auth/session`'s kind; every form that changes
something carries the session's CSRF token. Data tables are in the HTML, so the pages work
without JavaScript; charts (Chart.js, served locally) draw on top of them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from psycopg.rows import dict_row

from analytics import queries
from analytics.kpis import pilot_kpis
from analytics.usage import Bucket, usage_series
from api.auth import SESSION_COOKIE, csrf_token, end_session, start_session
from api.deps import Conn
from api.errors import http_error, status_of
from bids import imports, records, registrations, report
from bids import queries as bids_queries
from bids.audit import set_actor
from bids.councils import CouncilMatcher
from bids.sheets import read_sheet
from core import auth, clock
from core.errors import BidSupportError, SheetError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
LONDON = ZoneInfo("Europe/London")
HOME = {"officer": "/officers/workshops", "analyst": "/analysts", "admin": "/officers/workshops"}
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


def _user(request: Request, conn: Conn) -> auth.Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    return auth.authenticate(conn, token) if token else None


def _need(request: Request, conn: Conn, role: str) -> auth.Principal:
    p = _user(request, conn)
    if p is None:
        raise HTTPException(303, headers={"Location": f"/sign-in?next={quote(request.url.path)}"})
    if p.role not in (role, "admin"):
        raise HTTPException(403, f"this page is for the {role} role")
    set_actor(conn, p.username)
    return p


def _check_csrf(request: Request, sent: str) -> None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or sent != csrf_token(token):
        raise HTTPException(403, "the form has expired: go back, reload the page and try again")


def _page(request: Request, name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("errors", {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


@router.get("/")
def home(request: Request, conn: Conn) -> Response:
    p = _user(request, conn)
    return RedirectResponse(HOME[p.role] if p else "/sign-in", 303)


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "") -> HTMLResponse:
    return _page(request, "sign_in.html", title="Sign in", next=next, username="", user=None)


@router.post("/sign-in")
def sign_in(
    request: Request,
    conn: Conn,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user_id = auth.check_password(conn, username, password) if username and password else None
    if user_id is None:
        errors = {"username": "Enter a correct username and password"}
        return _page(
            request,
            "sign_in.html",
            401,
            title="Sign in",
            errors=errors,
            next=next,
            username=username,
            user=None,
        )
    role = auth.role_of(conn, user_id)
    target = next if next.startswith("/") and not next.startswith("//") else HOME[role]
    resp = RedirectResponse(target, 303)
    start_session(conn, username, request, resp)
    return resp


@router.get("/sign-out")
def sign_out(request: Request, conn: Conn) -> Response:
    resp = RedirectResponse("/sign-in", 303)
    end_session(conn, request, resp)
    return resp


# --- officers --------------------------------------------------------------------------------


@router.get("/officers/workshops")
def workshops_page(request: Request, conn: Conn) -> HTMLResponse:
    p = _need(request, conn, "officer")
    ws = records.list_workshops(conn, None, None)
    return _page(request, "workshops.html", title="Bid workshops", workshops=ws, user=p)


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
    transitions = {k: sorted(v - {"registered"}) for k, v in registrations.TRANSITIONS.items()}
    return _page(
        request,
        "workshop.html",
        status,
        title=w["title"],
        w=w,
        registrations=regs,
        csrf=csrf_token(token),
        fields=FIELDS,
        errors=errors or {},
        values=values or {},
        transitions=transitions,
        user=p,
    )


@router.get("/officers/workshops/{wid}")
def workshop_page(request: Request, conn: Conn, wid: int) -> HTMLResponse:
    p = _need(request, conn, "officer")
    try:
        return _workshop_page(request, conn, p, wid)
    except BidSupportError as exc:
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
    p = _need(request, conn, "officer")
    _check_csrf(request, csrf_token_)
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
    matcher = CouncilMatcher((str(c), str(n)) for c, n in conn.execute(bids_queries.COUNCIL_NAMES))
    m = matcher.match(council) if council.strip() else None
    if m is None:
        errors["council"] = "Enter the person's council"
    elif m.gss_code is None:
        errors["council"] = (
            f"No council is called {council!r}: did you mean {m.suggestion}?"
            if m.suggestion
            else f"No council is called {council!r}"
        )
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
        except BidSupportError as exc:
            conn.rollback()
            errors["email" if "email" in str(exc) else "person_name"] = str(exc).capitalize()
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
    _need(request, conn, "officer")
    _check_csrf(request, csrf_token_)
    try:
        reg = registrations.change_status(conn, rid, status)
    except BidSupportError as exc:
        raise http_error(exc) from exc
    return RedirectResponse(f"/officers/workshops/{reg['workshop_id']}#attendance", 303)


@router.get("/officers/workshops/{wid}/import")
def import_page(request: Request, conn: Conn, wid: int) -> HTMLResponse:
    p = _need(request, conn, "officer")
    w = records.get_workshop(conn, wid)
    return _page(
        request,
        "import.html",
        title="Import an attendance sheet",
        w=w,
        result=None,
        csrf=csrf_token(request.cookies.get(SESSION_COOKIE, "")),
        user=p,
    )


@router.post("/officers/workshops/{wid}/import")
def import_sheet(
    request: Request,
    conn: Conn,
    wid: int,
    file: Annotated[UploadFile, File()],
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    commit: Annotated[str, Form()] = "",
) -> HTMLResponse:
    p = _need(request, conn, "officer")
    _check_csrf(request, csrf_token_)
    w = records.get_workshop(conn, wid)
    ctx: dict[str, Any] = {
        "title": "Import an attendance sheet",
        "w": w,
        "user": p,
        "csrf": csrf_token(request.cookies.get(SESSION_COOKIE, "")),
    }
    try:
        rows = read_sheet(file.filename or "", file.file.read(5 * 1024 * 1024))
        result = imports.import_sheet(conn, w, rows, p.username, commit == "yes")
    except SheetError as exc:
        return _page(request, "import.html", 422, errors={"file": str(exc)}, result=None, **ctx)
    except BidSupportError as exc:
        conn.rollback()
        code = status_of(exc)
        return _page(request, "import.html", code, errors={"file": str(exc)}, result=None, **ctx)
    return _page(request, "import.html", result=result, **ctx)


@router.get("/officers/take-up")
def take_up_page(request: Request, conn: Conn) -> HTMLResponse:
    p = _need(request, conn, "officer")
    r = report.take_up(conn)
    summary = [
        ("Councils reached", r.councils_reached),
        ("People who attended", r.people_attended),
        ("Attendance rate", f"{r.attendance_rate:.0%}" if r.attendance_rate is not None else "-"),
        ("Councils reached that bid", r.reached_and_bid),
        ("… and were funded", r.reached_and_funded),
        ("Awarded to councils reached", f"£{r.reached_amount_awarded:,.0f}"),
        *[(f"Reached, {k}", v) for k, v in r.by_council_type.items()],
        *[(f"Reached, {k}", v) for k, v in r.by_region.items()],
    ]
    return _page(request, "take_up.html", title="Take-up report", r=r, summary=summary, user=p)


@router.get("/officers/take-up.{fmt}")
def take_up_file(request: Request, conn: Conn, fmt: str) -> Response:
    _need(request, conn, "officer")
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


@router.get("/analysts")
def dashboard(
    request: Request, conn: Conn, bucket: str = "1d", days: int = 30, cohort: str = ""
) -> HTMLResponse:
    p = _need(request, conn, "analyst")
    b = Bucket(bucket) if bucket in ("1h", "1d", "1w") else Bucket.D1
    days = days if days in (7, 30, 90, 365) else 30
    cohorts = [str(r[0]) for r in conn.execute(queries.COHORTS)]
    cohort = cohort if cohort in cohorts else ""
    end = clock.now()
    start = end - timedelta(days=days)
    series = usage_series(conn, "cohort" if cohort else "pilot", cohort or None, b, start, end)
    today = end.astimezone(LONDON).date()
    k = pilot_kpis(
        conn, today - timedelta(days=days), today + timedelta(days=1), cohort=cohort or None
    )
    kpis = [
        ("Households enrolled / active", f"{k.households_enrolled} / {k.households_active}"),
        ("Uses per household per day (median)", k.uses_per_household_day_median),
        ("Food waste diverted (estimate, kg)", k.food_kg_diverted),
        ("Water per household per day (L)", k.water_l_per_household_day),
        ("Faults per 100 uses", k.faults_per_100_uses),
        ("Data completeness", f"{k.completeness:.1%}" if k.completeness is not None else "-"),
    ]
    fmt = "%d %b %H:%M" if b is Bucket.H1 else "%d %b %Y"
    points = [
        {
            "label": pt.bucket.astimezone(LONDON).strftime(fmt),
            "uses": pt.uses,
            "water_l": round(pt.water_l, 1),
        }
        for pt in series
    ]
    chart = {
        "labels": [x["label"] for x in points],
        "uses": [x["uses"] for x in points],
        "hours": [h.hour for h in k.time_of_day],
        "shares": [h.share_of_uses for h in k.time_of_day],
    }
    with conn.cursor(row_factory=dict_row) as cur:
        anomalies = cur.execute(
            queries.ANOMALIES, {"include_resolved": False, "limit": 50}
        ).fetchall()
    return _page(
        request,
        "dashboard.html",
        title="Pilot dashboard",
        user=p,
        bucket=b.value,
        days=days,
        cohort=cohort,
        cohorts=cohorts,
        kpis=kpis,
        points=points,
        chart_json=json.dumps(chart).replace("</", "<\\/"),
        anomalies=anomalies,
        start_iso=quote(start.isoformat()),
        start_date=(today - timedelta(days=days)).isoformat(),
    )


@router.get("/analysts/households/{ref}")
def household_page(request: Request, conn: Conn, ref: str) -> HTMLResponse:
    p = _need(request, conn, "analyst")
    if not conn.execute(queries.HOUSEHOLD_EXISTS, (ref,)).fetchone():
        raise HTTPException(404, f"no household {ref!r}")
    end = clock.now()
    series = usage_series(conn, "household", ref, Bucket.D1, end - timedelta(days=30), end)
    points = [
        {
            "label": pt.bucket.astimezone(LONDON).strftime("%d %b %Y"),
            "uses": pt.uses,
            "water_l": round(pt.water_l, 1),
            "faults": pt.faults,
        }
        for pt in series
    ]
    return _page(request, "household.html", title=ref, ref=ref, points=points, user=p)
