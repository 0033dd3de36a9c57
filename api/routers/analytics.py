"""The analysts' API: usage for a household, a cohort or the pilot; KPIs; anomalies; job history;
streamed exports; weekly reports. Households appear by pseudonymous reference only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from psycopg_pool import ConnectionPool
from starlette.concurrency import iterate_in_threadpool

from analytics import export, listings
from analytics.kpis import pilot_kpis
from analytics.usage import Bucket, usage_series
from api.deps import (
    AdmittedStream,
    AppSettings,
    Conn,
    admitted,
    checked_period,
    checked_zone,
    get_pool,
)
from api.routers.usage import MAX_BUCKETS, UsageBucket
from core import clock

router = APIRouter(prefix="/api/v1", tags=["analytics"])

Name = Annotated[str, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
Tz = Annotated[str, Query(max_length=64, description="IANA time zone the buckets follow")]
Instant = Annotated[datetime | None, Query(description="ISO 8601 with offset")]
MAX_KPI_DAYS = 3660


@router.get("/usage", summary="Usage of a household, a cohort or the pilot")
def usage(
    conn: Conn,
    scope: Annotated[Literal["pilot", "cohort", "household"], Query()] = "pilot",
    key: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="Cohort or household"),
    ] = None,
    bucket: Bucket = Bucket.D1,
    start: Instant = None,
    end: Instant = None,
    tz: Tz = "Europe/London",
) -> dict[str, Any]:
    """Disposer use per bucket (15m, 1h, 1d, 1w) for the whole pilot (`scope=pilot`), one cohort
    (`scope=cohort&key=A`) or one household (`scope=household&key=SIM-000001`). Day and week
    buckets follow local midnight in `tz` across daylight-saving changes. Served from the hourly
    rollups, with the newest minutes and 15-minute buckets from raw readings."""
    checked_zone(tz)
    start, end = checked_period(start, end)
    if scope != "pilot" and not key:
        raise HTTPException(422, f"scope={scope} needs key (the {scope}'s name)")
    if (end - start) / bucket.interval > MAX_BUCKETS:
        raise HTTPException(422, f"more than {MAX_BUCKETS} buckets: widen the bucket")
    points = usage_series(conn, scope, key, bucket, start, end, tz)
    return {
        "scope": scope,
        "key": key,
        "bucket": bucket,
        "tz": tz,
        "start": start,
        "end": end,
        "points": [UsageBucket.model_validate(p, from_attributes=True) for p in points],
    }


@router.get("/cohorts", summary="Cohorts and their households")
def cohorts(conn: Conn) -> list[dict[str, Any]]:
    """The pilot's cohorts with the number of households enrolled in each."""
    return listings.cohorts(conn)


def _kpi_period(start: date | None, end: date | None) -> tuple[date, date]:
    for d in (start, end):
        if d is not None and not date(2000, 1, 1) <= d <= date(2100, 1, 1):
            raise HTTPException(422, "start and end must be between 2000-01-01 and 2100-01-01")
    end = end or clock.today()
    start = start or end - timedelta(days=7)
    if not (date(2000, 1, 1) <= start < end <= date(2100, 1, 1)):
        raise HTTPException(422, "start must be before end, both between 2000 and 2100")
    if (end - start).days > MAX_KPI_DAYS:
        raise HTTPException(422, f"at most {MAX_KPI_DAYS} days")
    return start, end


@router.get("/kpis", summary="Pilot KPIs for a period")
def kpis(
    conn: Conn,
    start: Annotated[date | None, Query(description="First local day (default end - 7)")] = None,
    end: Annotated[date | None, Query(description="Day after the last (default today)")] = None,
    cohort: Annotated[str | None, Name] = None,
    tz: Tz = "Europe/London",
    *,
    settings: AppSettings,
) -> dict[str, Any]:
    """For local days [start, end): households enrolled and active; uses per household per day
    (median, quartiles, mean); estimated kg of food waste diverted; litres and Wh per household
    per day; the time-of-day profile of sewer load; faults per 100 uses; data completeness
    (readings received ÷ expected from each device's sequence numbers); `as_of`, the instant
    they were computed. From the rollups and the readings received since their last refresh,
    so a new pilot's figures are there at once."""
    checked_zone(tz)
    start, end = _kpi_period(start, end)
    return pilot_kpis(
        conn, start, end, cohort=cohort, tz=tz, food_kg_per_use=settings.food_kg_per_use
    ).as_dict()


@router.get("/kpis.{fmt}", summary="Pilot KPIs, CSV or Parquet", response_class=Response)
def kpis_file(
    fmt: Literal["csv", "parquet"],
    conn: Conn,
    settings: AppSettings,
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
    cohort: Annotated[str | None, Name] = None,
) -> Response:
    """The KPIs as (figure, value) rows — the time-of-day profile as one row per hour — for
    spreadsheets (CSV) or data tools (Parquet)."""
    import csv
    import io

    start, end = _kpi_period(start, end)
    k = pilot_kpis(conn, start, end, cohort=cohort, food_kg_per_use=settings.food_kg_per_use)
    rows: list[tuple[str, float | None]] = []
    for key, value in k.as_dict().items():
        if isinstance(value, int | float) or value is None:
            rows.append((key, None if value is None else float(value)))
    rows += [(f"hour_{h.hour:02d}_share_of_uses", h.share_of_uses) for h in k.time_of_day]
    name = f"kpis-{start}-to-{end}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["figure", "value"])
        for figure, value in rows:
            w.writerow([figure, "" if value is None else value])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    table = pa.table({"figure": [f for f, _ in rows], "value": [v for _, v in rows]})
    pq.write_table(table, buf)
    return Response(buf.getvalue(), media_type="application/vnd.apache.parquet", headers=headers)


@router.get("/exports/usage.{fmt}", summary="Export per-household usage (streamed)")
async def export_usage(
    request: Request,
    fmt: Literal["csv", "parquet"],
    pool: Annotated[ConnectionPool, Depends(get_pool)],
    bucket: Annotated[Literal["1h", "1d"], Query(description="1h, or 1d (UK local days)")] = "1d",
    start: Instant = None,
    end: Instant = None,
    cohort: Annotated[str | None, Name] = None,
    household: Annotated[str | None, Name] = None,
) -> StreamingResponse:
    """One row per household and bucket (household, bucket, uses, run_s, energy_wh, water_l,
    faults) from the rollups, streamed as CSV or Parquet: a year of a thousand households does
    not need to fit in memory on either side."""
    start, end = checked_period(start, end)
    params = export.export_params(start, end, cohort, household)

    def chunks() -> Iterator[Any]:
        with pool.connection() as conn:
            if fmt == "csv":
                yield from export.usage_csv(conn, bucket, params)
            else:
                yield from export.usage_parquet(conn, bucket, params)

    place = AsyncExitStack()
    await place.enter_async_context(admitted(request))  # a 503 comes before the first byte
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.apache.parquet"
    return AdmittedStream(
        place,
        iterate_in_threadpool(chunks()),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="usage-{bucket}.{fmt}"'},
    )


@router.get("/anomalies", summary="Devices that need a visit")
def anomalies(
    conn: Conn, include_resolved: Annotated[bool, Query()] = False
) -> list[dict[str, Any]]:
    """Open anomalies found by the device-health job: offline too long, jam rate, leaks,
    abnormal water per use — newest first, with the household's reference."""
    return listings.anomalies(conn, include_resolved=include_resolved, limit=1000)


@router.get("/jobs", summary="Scheduled job history")
def jobs(
    conn: Conn,
    job: Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Runs of the scheduled jobs, newest first: start, end, outcome (ok, failed, skipped
    because another scheduler was running it), rows touched."""
    return listings.job_runs(conn, job, limit)


@router.get("/reports/weekly", summary="Weekly pilot reports")
def weekly_reports(conn: Conn) -> list[dict[str, Any]]:
    """Weekly reports kept by the scheduler, newest first; download each as HTML or CSV."""
    rows = listings.weekly_reports(conn)
    for r in rows:
        r["html"] = f"/api/v1/reports/weekly/{r['id']}.html"
        r["csv"] = f"/api/v1/reports/weekly/{r['id']}.csv"
    return rows


@router.get("/reports/weekly/{report_id}.{fmt}", summary="Download a weekly report")
def weekly_report(
    report_id: Annotated[int, Path(ge=1, le=2**63 - 1)], fmt: Literal["html", "csv"], conn: Conn
) -> Response:
    """The report page (charts included) or its figures as CSV."""
    row = listings.weekly_report(conn, report_id)
    if row is None:
        raise HTTPException(404, f"no weekly report with id {report_id}")
    if fmt == "html":
        return HTMLResponse(str(row[0]))
    return Response(
        str(row[1]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="pilot-week-{row[2]}.csv"'},
    )
