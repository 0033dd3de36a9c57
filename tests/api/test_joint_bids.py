"""Bids as the fund really had them (issue 18): a joint bid of three councils, a council with two
schemes in one round, an award later withdrawn — stored, with their history, and counted in the
take-up report as computed here independently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.helpers import person, workshop_body

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]

LEEDS, BRADFORD, WAKEFIELD = "E08000035", "E08000032", "E08000036"  # the joint bid
BIRMINGHAM = "E08000025"  # two schemes
LIVERPOOL = "E08000012"  # awarded, then withdrawn
SHEFFIELD = "E08000019"  # attended, did not bid


def test_joint_bids_schemes_and_a_withdrawn_award(api: TestClient, bids_db: Conn) -> None:
    api.post("/api/v1/fund-rounds", json={"code": "2012", "name": "Weekly collection support"})
    joint = api.post(
        "/api/v1/bids",
        json={
            "council_code": LEEDS,
            "partner_codes": [BRADFORD, WAKEFIELD],
            "round_code": "2012",
            "scheme": "West Yorkshire weekly collections",
            "status": "submitted",
            "amount_requested": "9000000",
            "submitted_on": "2012-08-17",
        },
    ).json()
    assert joint["partner_codes"] == sorted([BRADFORD, WAKEFIELD])
    r = api.patch(
        f"/api/v1/bids/{joint['id']}",
        json={"status": "successful", "amount_awarded": "8500000", "decided_on": "2012-11-22"},
    )
    assert r.status_code == 200, r.text
    schemes = [
        api.post(
            "/api/v1/bids",
            json={
                "council_code": BIRMINGHAM,
                "round_code": "2012",
                "scheme": scheme,
                "status": "successful",
                "amount_requested": amount,
                "amount_awarded": amount,
                "submitted_on": "2012-08-17",
                "decided_on": "2012-11-22",
            },
        )
        for scheme, amount in (("Weekly collections", "25000000"), ("Recycling rewards", "4700000"))
    ]
    assert all(s.status_code == 201 for s in schemes), [s.text for s in schemes]
    again = api.post(
        "/api/v1/bids",
        json={
            "council_code": BIRMINGHAM,
            "round_code": "2012",
            "scheme": "Recycling rewards",
            "status": "submitted",
        },
    )
    assert again.status_code == 409 and "scheme" in again.json()["detail"]
    lpool = api.post(
        "/api/v1/bids",
        json={
            "council_code": LIVERPOOL,
            "round_code": "2012",
            "status": "successful",
            "amount_requested": "2000000",
            "amount_awarded": "1800000",
            "submitted_on": "2012-08-17",
            "decided_on": "2012-11-22",
        },
    ).json()
    gone = api.patch(f"/api/v1/bids/{lpool['id']}", json={"status": "withdrawn"}).json()
    # the award is kept in the history when the bid is withdrawn
    assert [(e["status"], Decimal(str(e["amount_awarded"]))) for e in gone["history"]] == [
        ("successful", Decimal(1800000)),
        ("withdrawn", Decimal(1800000)),
    ]
    lead_too = api.post(
        "/api/v1/bids",
        json={
            "council_code": LEEDS,
            "partner_codes": [LEEDS],
            "round_code": "2012",
            "scheme": "other",
            "status": "intending",
        },
    )
    assert lead_too.status_code == 422

    # a workshop attended by the lead, one partner, Birmingham, Liverpool and Sheffield
    past = datetime.now(UTC) - timedelta(days=2)
    w = api.post(
        "/api/v1/workshops",
        json=workshop_body(
            starts_at=past.isoformat(),
            ends_at=(past + timedelta(hours=3)).isoformat(),
            status="held",
        ),
    ).json()
    attended = [LEEDS, BRADFORD, BIRMINGHAM, LIVERPOOL, SHEFFIELD]
    for i, code in enumerate(attended):
        reg = api.post(f"/api/v1/workshops/{w['id']}/registrations", json=person(i, code)).json()
        api.patch(f"/api/v1/registrations/{reg['id']}", json={"status": "attended"})

    report = api.get("/api/v1/reports/take-up", params={"round": "2012"}).json()
    # what the report must say, worked out here from the facts above
    bidders = {LEEDS, BRADFORD, WAKEFIELD, BIRMINGHAM, LIVERPOOL}  # partners bid; so did Liverpool
    funded = {LEEDS, BRADFORD, WAKEFIELD, BIRMINGHAM}  # Liverpool gave its award back
    awarded_reached = Decimal("8500000") + Decimal("25000000") + Decimal("4700000")
    assert report["councils_reached"] == len(attended)
    assert report["reached_and_bid"] == len(bidders & set(attended))
    assert report["reached_and_funded"] == len(funded & set(attended))
    assert report["bids_in_round"] == len(bidders)
    assert report["funded_in_round"] == len(funded)
    assert Decimal(str(report["reached_amount_awarded"])) == awarded_reached
    rows: dict[str, Any] = {c["gss_code"]: c for c in report["councils"]}
    assert rows[BIRMINGHAM]["schemes_led"] == 2
    assert rows[WAKEFIELD]["joint_bids_joined"] == 1 and rows[WAKEFIELD]["people_attended"] == 0
    assert rows[LIVERPOOL]["bid_status"] == "withdrawn" and rows[LIVERPOOL]["bid_submitted"]
    listed = api.get("/api/v1/bids", params={"council": WAKEFIELD}).json()
    assert [b["id"] for b in listed] == [joint["id"]]  # a partner finds the joint bid
