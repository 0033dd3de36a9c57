"""Importing a fund's published award list (issue 18): matched as councils were on the round's
results day, joint bids with partners, preview then commit, and the same list again unchanged."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from fastapi.testclient import TestClient

from bids.awards import parse_amount

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]

LIST = (
    "Weekly Collection Support Scheme: successful bids\n"
    "\n"
    "Council or partnership,Scheme,Amount awarded,Partners\n"
    'Birmingham City Council,Weekly collections,"£29,785,495",\n'
    "Leeds City Council,West Yorkshire weekly collections,£8.5m,Bradford MDC; Wakefield\n"
    "Bournemouth BC,Co-mingled recycling,14200000,Poole BC; Christchurch Borough Council\n"
    "Kettering Borough Council,Food waste,850k,\n"
    "Nowhere District Council,Something,100,\n"
    "Sheffield City Council,Weekly,a lot,\n"
)


def test_amounts_as_award_lists_write_them() -> None:
    assert parse_amount("£29,785,495") == Decimal("29785495.00")
    assert parse_amount("£8.5m") == Decimal("8500000.00")
    assert parse_amount("850k") == Decimal("850000.00")
    assert parse_amount("a lot") is None
    assert parse_amount("1e9") is None


def test_an_award_list_is_previewed_committed_and_idempotent(api: TestClient) -> None:
    api.post(
        "/api/v1/fund-rounds",
        json={"code": "2012", "name": "Weekly collection support", "results_on": "2012-11-22"},
    )
    url = "/api/v1/fund-rounds/2012/award-import"
    files = {"file": ("awards.csv", LIST.encode())}
    preview = api.post(url, files=files)
    assert preview.status_code == 200, preview.text
    p = preview.json()
    assert p["counts"] == {"new": 4, "update": 0, "unchanged": 0, "error": 2}
    rows = {r["council"]: r for r in p["rows"]}
    assert rows["Leeds City Council"]["partner_codes"] == ["E08000032", "E08000036"]
    assert rows["Bournemouth BC"]["council_code"] == "E06000028"  # the council of 2012
    assert rows["Kettering Borough Council"]["council_code"] == "E07000153"
    assert [q["field"] for q in rows["Sheffield City Council"]["problems"]] == ["amount"]
    assert api.get("/api/v1/bids").json() == []  # a preview stores nothing

    done = api.post(url, files=files, params={"commit": "true"}).json()
    assert done["committed"] and done["counts"]["new"] == 4
    bids = {b["council_code"]: b for b in api.get("/api/v1/bids", params={"round": "2012"}).json()}
    assert set(bids) == {"E08000025", "E08000035", "E06000028", "E07000153"}
    assert bids["E08000035"]["partner_codes"] == ["E08000032", "E08000036"]
    assert bids["E08000025"]["status"] == "successful"
    assert Decimal(bids["E08000025"]["amount_awarded"]) == Decimal("29785495")
    again = api.post(url, files=files, params={"commit": "true"}).json()
    assert again["counts"] == {"new": 0, "update": 0, "unchanged": 4, "error": 2}

    # a list naming no partners keeps the recorded ones; a withdrawn bid is not revived
    bare = LIST.replace("Bradford MDC; Wakefield", "")
    kept = api.post(url, files={"file": ("a.csv", bare.encode())}, params={"commit": "true"})
    assert kept.json()["counts"]["unchanged"] == 4, kept.text
    leeds = api.get(f"/api/v1/bids/{bids['E08000035']['id']}").json()
    assert leeds["partner_codes"] == ["E08000032", "E08000036"]
    kettering = bids["E07000153"]["id"]
    assert api.patch(f"/api/v1/bids/{kettering}", json={"status": "withdrawn"}).status_code == 200
    back = api.post(url, files=files, params={"commit": "true"}).json()
    row = next(r for r in back["rows"] if r["council"] == "Kettering Borough Council")
    assert row["outcome"] == "error" and "withdrawn" in row["problems"][0]["message"]
    assert api.get(f"/api/v1/bids/{kettering}").json()["status"] == "withdrawn"
