"""Bids, the audit log, erasure and retention, against the real database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from bids.registrations import erase_expired
from tests.helpers import person, workshop_body

pytestmark = pytest.mark.services

Conn = psycopg.Connection[tuple[object, ...]]
ROUND = {"code": "2012", "name": "Weekly collection support scheme", "budget_gbp": "250000000"}


def _bid(**over: Any) -> dict[str, Any]:
    return {"council_code": "E08000025", "round_code": "2012", "status": "submitted",
            "amount_requested": "29785495.00", "submitted_on": "2012-08-17"} | over  # fmt: skip


def test_bids_one_per_council_scheme_and_round(api: TestClient) -> None:
    assert api.post("/api/v1/fund-rounds", json=ROUND).status_code == 201
    assert api.post("/api/v1/fund-rounds", json=ROUND).status_code == 409
    r = api.post("/api/v1/bids", json=_bid())
    assert r.status_code == 201, r.text
    bid = r.json()
    assert bid["council_name"] == "Birmingham City Council"
    r = api.post("/api/v1/bids", json=_bid(status="intending"))
    assert r.status_code == 409
    assert "already has a bid for this scheme in this fund round" in r.json()["detail"]

    # an award needs a successful bid
    r = api.patch(f"/api/v1/bids/{bid['id']}", json={"amount_awarded": "29785495"})
    assert r.status_code == 422
    assert "successful" in r.json()["detail"]
    r = api.patch(
        f"/api/v1/bids/{bid['id']}",
        json={"status": "successful", "amount_awarded": "29785495", "decided_on": "2012-11-22"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["amount_awarded"] == "29785495.00"
    r = api.patch(f"/api/v1/bids/{bid['id']}", json={"decided_on": "2012-01-01"})
    assert r.status_code == 422
    assert "decided_on" in r.json()["detail"]
    assert [b["id"] for b in api.get("/api/v1/bids", params={"status": "successful"}).json()] == [
        bid["id"]
    ]

    for body, message in [
        (_bid(round_code="2099", council_code="E06000002"), "no fund round"),
        (_bid(council_code="E06999999"), "no council"),
        (_bid(council_code="E06000002", status="won"), "status"),
        (_bid(council_code="E06000002", amount_requested="-5"), "amount_requested"),
    ]:
        r = api.post("/api/v1/bids", json=body)
        assert r.status_code == 422, body
        assert message in r.text


def test_every_change_is_audited_and_the_log_only_grows(api: TestClient, bids_db: Conn) -> None:
    w = api.post("/api/v1/workshops", json=workshop_body()).json()
    api.patch(f"/api/v1/workshops/{w['id']}", json={"venue": "Town Hall"})
    entries = api.get("/api/v1/audit", params={"table": "workshops", "key": str(w["id"])}).json()
    assert [e["action"] for e in entries] == ["update", "insert"]
    assert entries[0]["before"]["venue"] == "Civic Hall"
    assert entries[0]["after"]["venue"] == "Town Hall"
    assert entries[0]["actor"] == "test-officer"  # the signed-in user
    last = entries[0]["id"]
    for stmt in (
        "UPDATE audit_log SET actor = 'someone else' WHERE id = %s",
        "DELETE FROM audit_log WHERE id = %s",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            bids_db.execute(stmt, (last,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        bids_db.execute("TRUNCATE audit_log")
    # an update that changes nothing writes no audit row
    api.patch(f"/api/v1/workshops/{w['id']}", json={"venue": "Town Hall"})
    assert (
        len(api.get("/api/v1/audit", params={"table": "workshops", "key": str(w["id"])}).json())
        == 2
    )


def test_erasing_a_person_keeps_the_counts(api: TestClient, bids_db: Conn) -> None:
    w = api.post("/api/v1/workshops", json=workshop_body()).json()
    reg = api.post(f"/api/v1/workshops/{w['id']}/registrations", json=person(7)).json()
    api.post(f"/api/v1/workshops/{w['id']}/registrations", json=person(8))
    before = api.get(f"/api/v1/workshops/{w['id']}").json()["places_taken"]

    r = api.post("/api/v1/people/erasure", json={"email": "PERSON7@council.example.org"})
    # the confirmation queued to them is blanked too (the address written in capitals)
    assert r.json() == {"registrations_erased": 1, "messages_erased": 1}
    got = api.get(f"/api/v1/registrations/{reg['id']}").json()
    assert (got["person_name"], got["email"], got["person_role"], got["erased"]) == (
        None,
        None,
        None,
        True,
    )
    assert got["council_code"] == "E06000002"
    assert api.get(f"/api/v1/workshops/{w['id']}").json()["places_taken"] == before
    # nowhere in the database, audit log included, does the email or name survive
    hits = bids_db.execute(
        "SELECT count(*) FROM audit_log WHERE before::text LIKE '%%person7@%%' "
        "OR after::text LIKE '%%person7@%%' OR after::text LIKE '%%Person 7%%'"
    ).fetchone()
    assert hits == (0,)
    erase_rows = api.get(
        "/api/v1/audit", params={"table": "registrations", "key": str(reg["id"])}
    ).json()
    assert erase_rows[0]["action"] == "erase"
    # the other person is untouched
    assert bids_db.execute(
        "SELECT count(*) FROM registrations WHERE email = 'person8@council.example.org'"
    ).fetchone() == (1,)


def test_retention_erases_attendees_of_old_workshops(
    api: TestClient, bids_db: Conn, awkward_now: datetime
) -> None:
    old_start = awkward_now - timedelta(days=800)
    old = api.post(
        "/api/v1/workshops",
        json=workshop_body(
            starts_at=old_start.isoformat(), ends_at=(old_start + timedelta(hours=4)).isoformat()
        ),
    ).json()
    # ended 729 days ago: kept (the retention is 730 days)
    kept_start = awkward_now - timedelta(days=729, hours=5)
    kept = api.post(
        "/api/v1/workshops",
        json=workshop_body(
            starts_at=kept_start.isoformat(), ends_at=(kept_start + timedelta(hours=4)).isoformat()
        ),
    ).json()
    new = api.post("/api/v1/workshops", json=workshop_body()).json()
    api.post(f"/api/v1/workshops/{old['id']}/registrations", json=person(1))
    api.post(f"/api/v1/workshops/{new['id']}/registrations", json=person(2))
    api.post(f"/api/v1/workshops/{kept['id']}/registrations", json=person(3))
    with psycopg.connect(bids_db.info.dsn, password=bids_db.info.password) as conn:
        assert erase_expired(conn, 730) == 1
        assert erase_expired(conn, 730) == 0
    rows = dict(bids_db.execute("SELECT workshop_id, email FROM registrations").fetchall())
    assert rows == {
        old["id"]: None,
        new["id"]: "person2@council.example.org",
        kept["id"]: "person3@council.example.org",
    }


def test_guidance_resources_link_to_workshops(api: TestClient) -> None:
    res = api.post(
        "/api/v1/guidance-resources",
        json={"title": "Prospectus", "url": "https://www.gov.uk/x", "published_on": "2012-02-03"},
    )
    assert res.status_code == 201, res.text
    rid = res.json()["id"]
    assert (
        api.post("/api/v1/guidance-resources", json={"title": "x", "url": "ftp://x"}).status_code
        == 422
    )
    w = api.post("/api/v1/workshops", json=workshop_body(resource_ids=[rid])).json()
    assert [r["title"] for r in w["resources"]] == ["Prospectus"]
    r = api.post("/api/v1/workshops", json=workshop_body(resource_ids=[rid + 1000]))
    assert r.status_code == 422
    assert "no guidance resource" in r.json()["detail"]
    assert (
        api.patch(f"/api/v1/workshops/{w['id']}", json={"resource_ids": []}).json()["resources"]
        == []
    )
