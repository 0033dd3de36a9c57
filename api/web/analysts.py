"""The analysts' pages: the dashboard and a household's page."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from psycopg.rows import dict_row

from analytics import queries
from analytics.kpis import pilot_kpis
from analytics.usage import Bucket, usage_series
from api.deps import Conn
from api.web.common import LONDON, need, page
from core import clock

router = APIRouter(include_in_schema=False)


@router.get("/analysts")
def dashboard(
    request: Request, conn: Conn, bucket: str = "1d", days: int = 30, cohort: str = ""
) -> HTMLResponse:
    p = need(request, conn, "analyst")
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
    return page(
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
    p = need(request, conn, "analyst")
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
    return page(request, "household.html", title=ref, ref=ref, points=points, user=p)
