"""The analysts' pages: the dashboard and a household's page. Their figures are the API's (the
same functions compute them) written for people by core/display.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from analytics import alerts, digest, listings
from analytics.household import household_record
from analytics.kpis import Kpis, pilot_kpis
from analytics.usage import Bucket, UsagePoint, usage_series
from api.deps import AppSettings, Conn
from api.errors import USER_ERRORS, http_error
from api.web.common import check_csrf, need, page, script_json
from core import clock, display

router = APIRouter(include_in_schema=False)

BUCKET_WORDS = {"1h": "hour", "1d": "day", "1w": "week"}
PERIODS = (7, 30, 90, 365)


def with_empty_buckets(
    series: list[UsagePoint], bucket: Bucket, start: datetime, end: datetime
) -> list[tuple[datetime, UsagePoint | None]]:
    """The series with its empty hours or UK days put back (the API leaves them out; a chart
    must not join the points either side of a quiet night). Weeks are left as they are."""
    if bucket not in (Bucket.H1, Bucket.D1) or not series:
        return [(p.bucket, p) for p in series]
    have = {p.bucket.astimezone(UTC): p for p in series}
    steps = []
    if bucket is Bucket.H1:
        t = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while t < end:
            steps.append(t)
            t += timedelta(hours=1)
    else:
        day = start.astimezone(clock.LONDON).date()
        while (t := datetime.combine(day, time(), clock.LONDON).astimezone(UTC)) < end:
            steps.append(t)
            day += timedelta(days=1)
    return [(t, have.get(t)) for t in steps]


def kpi_rows(k: Kpis) -> list[tuple[str, str, str]]:
    """(API field, label, value as people read it) for the dashboard's summary list."""
    middle = (
        f" (middle half of homes: {display.number(k.uses_per_household_day_p25)} to "
        f"{display.number(k.uses_per_household_day_p75)})"
        if k.uses_per_household_day_p25 is not None
        else ""
    )
    return [
        (
            "households_active",
            "Households",
            f"{display.number(k.households_active, 0)} of "
            f"{display.count(k.households_enrolled, 'household')} enrolled used their disposer",
        ),
        (
            "uses_per_household_day_median",
            "Uses per household per day (median)",
            display.number(k.uses_per_household_day_median) + middle,
        ),
        (
            "food_kg_diverted",
            "Food waste diverted from bins (estimate)",
            display.quantity(k.food_kg_diverted if k.households_active else None, "kg"),
        ),
        (
            "water_l_per_household_day",
            "Water per household per day",
            display.quantity(k.water_l_per_household_day if k.households_active else None, "L"),
        ),
        (
            "energy_wh_per_household_day",
            "Electricity per household per day",
            display.quantity(k.energy_wh_per_household_day if k.households_active else None, "Wh"),
        ),
        (
            "faults_per_100_uses",
            "Faults per 100 uses",
            display.number(k.faults_per_100_uses, 2),
        ),
        ("completeness", "Data completeness (readings received)", display.percent(k.completeness)),
    ]


@router.get("/analysts")
def dashboard(
    request: Request,
    conn: Conn,
    settings: AppSettings,
    bucket: str = "1d",
    days: int = 30,
    cohort: str = "",
) -> HTMLResponse:
    p = need(request, conn, "analyst")
    b = Bucket(bucket) if bucket in BUCKET_WORDS else Bucket.D1
    days = days if days in PERIODS else 30
    cohorts = [str(r["cohort"]) for r in listings.cohorts(conn)]
    cohort = cohort if cohort in cohorts else ""
    end = clock.now()
    start = end - timedelta(days=days)
    series = usage_series(conn, "cohort" if cohort else "pilot", cohort or None, b, start, end)
    today = clock.today()
    first, after = today - timedelta(days=days), today + timedelta(days=1)
    k = pilot_kpis(
        conn, first, after, cohort=cohort or None, food_kg_per_use=settings.food_kg_per_use
    )
    label: Callable[[datetime], str] = display.when if b is Bucket.H1 else display.day
    points = [
        {"label": label(t), "uses": pt.uses if pt else 0, "water_l": pt.water_l if pt else 0.0}
        for t, pt in with_empty_buckets(series, b, start, end)
    ]
    hours = [h for h in k.time_of_day if h.uses]
    chart = {
        "labels": [x["label"] for x in points],
        "uses": [x["uses"] for x in points],
        "hours": [f"{h.hour:02d}:00" for h in k.time_of_day],
        "shares": [round(100 * h.share_of_uses, 2) for h in k.time_of_day],
    }
    anomalies = listings.anomalies(conn, include_resolved=False, limit=50)
    query = {"start": first.isoformat(), "end": after.isoformat()}
    if cohort:
        query["cohort"] = cohort
    return page(
        request,
        "dashboard.html",
        title="Pilot dashboard",
        user=p,
        bucket=b.value,
        bucket_words=BUCKET_WORDS,
        periods=PERIODS,
        days=days,
        cohort=cohort,
        cohorts=cohorts,
        k=k,
        kpis=kpi_rows(k),
        first=first,
        points=points,
        hours=hours,
        chart_json=script_json(chart),
        anomalies=anomalies,
        kpi_query=urlencode(query),
        export_query=urlencode(
            {"bucket": "1d", "start": start.isoformat(), **({"cohort": cohort} if cohort else {})}
        ),
    )


@router.get("/analysts/households/{ref}")
def household_page(request: Request, conn: Conn, settings: AppSettings, ref: str) -> HTMLResponse:
    p = need(request, conn, "analyst")
    h = household_record(conn, ref, settings)
    if h is None:
        raise HTTPException(404, "There is no such household in the pilot.")
    chart: dict[str, Any] = {
        "labels": [display.day(d.day) for d in h.days],
        "uses": [d.uses for d in h.days],
        "median": [d.cohort_median_uses for d in h.days],
        "cohort": h.cohort,
    }
    return page(
        request,
        "household.html",
        title=f"Household {h.ref}",
        user=p,
        h=h,
        alerts=alerts.household_alerts(conn, h.ref),
        chart_json=script_json(chart),
        export_query=urlencode({"bucket": "1d", "household": h.ref, "start": h.start.isoformat()}),
    )


# --- field-visit alerts (analytics/alerts.py) ---------------------------------------------------

ALERT_STATES = ("open", "pending", "acknowledged", "resolved", "all")
ALERT_KINDS = ("offline", "jam_rate", "leak", "water_per_use")


def _alerts_page(
    request: Request,
    conn: Conn,
    p: Any,
    state: str = "",
    kind: str = "",
    household: str = "",
    status: int = 200,
    errors: dict[str, str] | None = None,
    digest_typed: str = "",
) -> HTMLResponse:
    state = state if state in ALERT_STATES else ""
    kind = kind if kind in ALERT_KINDS else ""
    household = household.strip()[:64]
    rows = alerts.list_alerts(
        conn, state=state or None, kind=kind or None, household=household or None, limit=200
    )
    return page(
        request,
        "alerts.html",
        status,
        title="Alerts for field visits",
        user=p,
        alerts=rows,
        state=state,
        kind=kind,
        household=household,
        states=ALERT_STATES,
        kinds=ALERT_KINDS,
        errors=errors or {},
        digest=digest.subscription(conn, p.user_id),
        digest_typed=digest_typed,
        digest_changed=request.query_params.get("digest") is not None,
    )


@router.get("/analysts/alerts")
def alerts_page(
    request: Request, conn: Conn, state: str = "", kind: str = "", household: str = ""
) -> HTMLResponse:
    p = need(request, conn, "analyst")
    return _alerts_page(request, conn, p, state, kind, household)


def _back(back: str, alert_id: int) -> str:
    """Where an action returns to: the page it was sent from (the alerts list or a household
    page, never another site), at the alert."""
    if not back.startswith(("/analysts/alerts", "/analysts/households/")) or "//" in back:
        back = "/analysts/alerts"
    return f"{back.split('#')[0]}#alert-{alert_id}"


@router.post("/analysts/alerts/{alert_id}/{action}")
def alert_action(
    request: Request,
    conn: Conn,
    alert_id: Annotated[int, Path(ge=1, le=2**62)],
    action: str,
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    to: Annotated[str, Form(max_length=120)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Acknowledge, assign or resolve an alert from the pages (the API's rules)."""
    p = need(request, conn, "analyst")
    check_csrf(request, csrf_token_)
    if action not in ("acknowledge", "assign", "resolve"):
        raise HTTPException(404, "Not Found")
    if action == "assign" and not to.strip():
        err = {f"to-{alert_id}": "Enter who the visit is assigned to"}
        return _alerts_page(request, conn, p, status=422, errors=err)
    if action == "resolve" and not note.strip():
        err = {f"note-{alert_id}": "Enter what was done, or why it needs nothing"}
        return _alerts_page(request, conn, p, status=422, errors=err)
    try:
        if action == "acknowledge":
            alerts.acknowledge(conn, alert_id, p.username)
        elif action == "assign":
            alerts.assign(conn, alert_id, to.strip(), p.username)
        else:
            alerts.resolve(conn, alert_id, p.username, note.strip())
    except USER_ERRORS as exc:
        raise http_error(exc) from exc
    return RedirectResponse(_back(back, alert_id), 303)


BAD_EMAIL = "Enter an e-mail address in the correct format, like name@example.com"


@router.post("/analysts/digest")
def digest_subscribe(
    request: Request,
    conn: Conn,
    s: AppSettings,
    csrf_token_: Annotated[str, Form(alias="csrf_token")] = "",
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Ask for the daily digest at ``email``: a link sent there confirms it."""
    from email_validator import EmailNotValidError, validate_email

    p = need(request, conn, "analyst")
    check_csrf(request, csrf_token_)
    try:
        address = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        err = {"digest-email": BAD_EMAIL}
        return _alerts_page(request, conn, p, status=422, errors=err, digest_typed=email[:254])
    digest.subscribe(conn, s, p.user_id, address)
    return RedirectResponse("/analysts/alerts?digest=on#digest", 303)


@router.post("/analysts/digest/stop")
def digest_stop(
    request: Request, conn: Conn, csrf_token_: Annotated[str, Form(alias="csrf_token")] = ""
) -> Response:
    p = need(request, conn, "analyst")
    check_csrf(request, csrf_token_)
    digest.unsubscribe(conn, p.user_id)
    return RedirectResponse("/analysts/alerts?digest=off#digest", 303)
