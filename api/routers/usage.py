"""Usage for water-company analysts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, Field

from analytics import listings
from analytics.household import HouseholdDetail, household_record
from analytics.usage import Bucket, household_usage
from analytics.water import meter_days
from api.deps import AppSettings, Conn, HouseholdRef, checked_period, checked_zone
from core.registry import household_exists

router = APIRouter(prefix="/api/v1", tags=["usage"])

MAX_BUCKETS = 20_000


class UsageBucket(BaseModel):
    bucket: datetime = Field(description="Start of the bucket (in the requested time zone)")
    uses: int = Field(description="Disposer runs in the bucket")
    run_s: float = Field(description="Seconds the disposer ran")
    energy_wh: float = Field(description="Electricity used, watt-hours")
    water_l: float = Field(description="Cold water used while grinding, litres")
    faults: int = Field(description="Fault events (jam, overload, leak, power)")


class UsageSeries(BaseModel):
    household: str
    bucket: Bucket
    tz: str
    start: datetime
    end: datetime
    points: list[UsageBucket]


class HouseholdOut(BaseModel):
    ref: str = Field(description="Pseudonymous household reference")
    cohort: str
    joined_on: date
    left_on: date | None
    last_reading_at: datetime | None = Field(
        description="Device time of the household's newest stored reading (none yet: null)"
    )


@router.get("/households", response_model=list[HouseholdOut], summary="Pilot households")
def list_households(
    conn: Conn,
    cohort: Annotated[str | None, Query(max_length=100, description="Only this cohort")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many")] = 1000,
) -> list[HouseholdOut]:
    """The pilot's households, those heard from most recently first, with the time of each one's
    newest reading: pick one here to ask for its usage."""
    return [HouseholdOut.model_validate(r) for r in listings.households(conn, cohort, limit)]


@router.get("/households/{ref}", response_model=HouseholdDetail, summary="One household")
def get_household(ref: HouseholdRef, conn: Conn, settings: AppSettings) -> HouseholdDetail:
    """Why a home may need a visit, over its last 30 UK days: its devices (online, offline after
    `WASTEPILOT_OFFLINE_AFTER_H` of silence, decommissioned; last seen, firmware, signal), its
    faults with their times and counts by kind, the gaps in its readings (seqs that never
    arrived) and per day its uses, litres, faults, readings received and missing, with the
    median household of its cohort that day; and its anomalies."""
    detail = household_record(conn, ref, settings)
    if detail is None:
        raise HTTPException(404, f"no household {ref!r}")
    return detail


@router.get("/households/{ref}/usage", response_model=UsageSeries, summary="A household's usage")
def get_household_usage(
    ref: HouseholdRef,
    conn: Conn,
    bucket: Annotated[Bucket, Query(description="Bucket width: 15m, 1h, 1d or 1w")] = Bucket.D1,
    start: Annotated[
        AwareDatetime | None,
        Query(description="From (inclusive), ISO 8601 with offset; default end - 7 days"),
    ] = None,
    end: Annotated[
        AwareDatetime | None, Query(description="To (exclusive), ISO 8601 with offset; default now")
    ] = None,
    tz: Annotated[str, Query(description="IANA time zone the buckets follow")] = "Europe/London",
) -> UsageSeries:
    """Disposer use of one pilot household per time bucket: runs, run seconds, watt-hours and
    litres. Buckets with no use are left out. Households are identified by their pseudonymous
    reference only."""
    checked_zone(tz)
    start, end = checked_period(start, end)
    if (end - start) / bucket.interval > MAX_BUCKETS:
        raise HTTPException(
            status_code=422,
            detail=f"that period has more than {MAX_BUCKETS} {bucket.value} buckets: "
            "choose a wider bucket or a shorter period",
        )
    points = household_usage(conn, ref, bucket, start, end, tz)
    return UsageSeries(
        household=ref,
        bucket=bucket,
        tz=tz,
        start=start,
        end=end,
        points=[
            UsageBucket(
                bucket=p.bucket,
                uses=p.uses,
                run_s=p.run_s,
                energy_wh=p.energy_wh,
                water_l=p.water_l,
                faults=p.faults,
            )
            for p in points
        ],
    )


class MeterDayOut(BaseModel):
    day: date = Field(description="UK day")
    litres: float = Field(description="What the household's water meter counted that day")
    reads: int = Field(description="Meter telegrams stored that day")


class WaterSeries(BaseModel):
    household: str
    start: datetime
    end: datetime
    days: list[MeterDayOut]


@router.get("/households/{ref}/water", response_model=WaterSeries, summary="Metered water")
def get_household_water(
    ref: HouseholdRef,
    conn: Conn,
    start: Annotated[
        AwareDatetime | None,
        Query(description="From (inclusive), ISO 8601 with offset; default end - 7 days"),
    ] = None,
    end: Annotated[
        AwareDatetime | None, Query(description="To (exclusive), ISO 8601 with offset; default now")
    ] = None,
) -> WaterSeries:
    """Litres per UK day from the household's own water meters (wM-Bus, read by wmbusmeters;
    docs/devices/wmbus.md), beside the disposer's uses of the usage series. A register that
    went down (a meter swapped) counts from zero. Days without reads are left out; a household
    without a meter has none."""
    start, end = checked_period(start, end)
    if not household_exists(conn, ref):
        raise HTTPException(404, f"no household {ref!r}")
    days = meter_days(conn, ref, start, end)
    return WaterSeries(
        household=ref,
        start=start,
        end=end,
        days=[MeterDayOut(day=d.day, litres=d.litres, reads=d.reads) for d in days],
    )
