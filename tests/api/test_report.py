"""The take-up report: pure figures on fixed data, then the seeded demo programme checked
against counts computed independently from the raw rows."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from bids.demo import seed_demo
from bids.report import sentence, summarise

Conn = psycopg.Connection[tuple[object, ...]]


def test_board_sentence() -> None:
    assert sentence(123, 5, 98, 71, Decimal("212400000"), 0.874) == (
        "Over 120 councils (123) attended our five workshops; 98 of them bid to the fund and 71 "
        "were funded, with £212.4 m awarded. 87% of the people registered for held workshops "
        "attended."
    )
    assert sentence(1, 1, 1, 1, Decimal(950_000), None) == (
        "One council attended our one workshop; 1 of them bid to the fund and 1 was funded, "
        "with £950,000 awarded."
    )
    assert sentence(30, 2, 0, 0, Decimal(0), None) == (
        "30 councils attended our two workshops; none of them has bid yet."
    )
    assert sentence(0, 0, 0, 0, Decimal(0), None) == "No councils attended our no workshops."


def _council(
    code: str, ctype: str, region: str, people: int, bid: str | None, awarded: int = 0
) -> dict[str, Any]:
    return {"gss_code": code, "name": code, "council_type": ctype, "region": region,
            "workshops_attended": 1 if people else 0, "people_attended": people,
            "bid_status": bid, "amount_requested": Decimal(100) if bid else None,
            "amount_awarded": Decimal(awarded) if awarded else None}  # fmt: skip


def test_summarise_fixed_data() -> None:
    workshops = [
        {"status": "held", "places_taken": 10, "attended": 8},
        {"status": "held", "places_taken": 10, "attended": 9},
        {"status": "planned", "places_taken": 10, "attended": 0},
    ]
    councils = [
        _council("E06000001", "unitary", "North East", 2, "successful", 90),
        _council("E07000008", "non-metropolitan district", "East of England", 1, "unsuccessful"),
        _council("E09000011", "london borough", "London", 3, "withdrawn"),
        _council("E08000025", "metropolitan district", "West Midlands", 0, "successful", 50),
    ]
    t = summarise("2012", workshops, councils)
    assert t.councils_reached == 3
    assert t.people_attended == 6
    assert t.attendance_rate == 0.85  # (8 + 9) / (10 + 10): the planned workshop is left out
    assert t.by_council_type == {"london borough": 1, "non-metropolitan district": 1, "unitary": 1}
    assert t.by_region == {"East of England": 1, "London": 1, "North East": 1}
    assert (t.reached_and_bid, t.reached_and_funded) == (2, 1)  # a withdrawn bid is not a bid
    assert (t.reached_amount_requested, t.reached_amount_awarded) == (Decimal(200), Decimal(90))
    assert (t.bids_in_round, t.funded_in_round) == (3, 2)  # Birmingham bid without attending
    assert [w["attendance_rate"] for w in workshops] == [0.8, 0.9, 0.0]


@pytest.mark.services
def test_take_up_report_on_the_demo_programme(api: TestClient, bids_db: Conn, db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        summary = seed_demo(conn)
        assert summary.seeded
        assert not seed_demo(conn).seeded  # seeding twice does nothing
    report = api.get("/api/v1/reports/take-up").json()

    # independent counts, straight from the rows
    regs = bids_db.execute(
        "SELECT r.workshop_id, r.council_code, r.status, c.council_type, c.region "
        "FROM registrations r JOIN councils c ON c.gss_code = r.council_code"
    ).fetchall()
    bids = {code: (status, req, awd) for code, status, req, awd in bids_db.execute(
        "SELECT council_code, status, amount_requested, amount_awarded FROM bids WHERE round_code = '2012'"
    )}  # fmt: skip
    attended = [r for r in regs if r[2] == "attended"]
    reached = {r[1] for r in attended}
    types: dict[str, set[str]] = defaultdict(set)
    regions: dict[str, set[str]] = defaultdict(set)
    for _, code, _, ctype, region in attended:
        types[str(ctype)].add(str(code))
        regions[str(region)].add(str(code))
    taken = [r for r in regs if r[2] in ("registered", "attended", "no_show")]
    bid = {
        c
        for c in reached
        if c in bids and bids[c][0] in ("submitted", "successful", "unsuccessful")
    }
    funded = {c for c in bid if bids[c][0] == "successful"}

    assert len(report["workshops"]) == 5
    assert report["councils_reached"] == len(reached) > 120
    assert report["people_attended"] == len(attended)
    assert report["attendance_rate"] == round(len(attended) / len(taken), 4)
    assert report["by_council_type"] == {k: len(v) for k, v in sorted(types.items())}
    assert report["by_region"] == {k: len(v) for k, v in sorted(regions.items())}
    assert report["reached_and_bid"] == len(bid)
    assert report["reached_and_funded"] == len(funded)
    assert Decimal(report["reached_amount_awarded"]) == sum(Decimal(bids[c][2]) for c in funded)
    assert report["bids_in_round"] == 118
    assert report["funded_in_round"] == 85
    for w in report["workshops"]:
        mine = [r for r in regs if r[0] == w["id"]]
        assert w["attended"] == sum(1 for r in mine if r[2] == "attended")
        assert w["councils_reached"] == len({r[1] for r in mine if r[2] == "attended"})
    assert report["sentence"].startswith(
        f"Over 120 councils ({len(reached)}) attended our five workshops; {len(bid)} of them bid"
    )

    # the exports carry the same councils
    r = api.get("/api/v1/reports/take-up.csv")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {x["gss_code"] for x in rows if int(x["people_attended"]) > 0} == reached
    assert len(rows) == len(reached | set(bids))
    r = api.get("/api/v1/reports/take-up.xlsx")
    book = load_workbook(io.BytesIO(r.content), read_only=True)
    assert book.sheetnames == ["Summary", "Workshops", "Councils"]
    summary_rows = list(book["Summary"].iter_rows(values_only=True))
    assert summary_rows[0][1] == report["sentence"]
    assert ("councils reached", len(reached)) in summary_rows
    assert len(list(book["Councils"].iter_rows(values_only=True))) == len(rows) + 1
    assert (
        api.get("/api/v1/reports/take-up", params={"round": "1999"}).json()["reached_and_bid"] == 0
    )


def test_exports_are_safe_to_open_in_a_spreadsheet() -> None:
    from bids.report import to_csv, to_xlsx

    councils = [_council("E06000001", "unitary", "North East", 1, None)]
    councils[0]["name"] = '=HYPERLINK("http://evil.example","x")\x07'
    t = summarise(None, [], councils)
    row = list(csv.reader(io.StringIO(to_csv(t))))[1]
    assert row[1] == '\'=HYPERLINK("http://evil.example","x")'
    sheet = load_workbook(io.BytesIO(to_xlsx(t)))["Councils"]
    assert sheet.cell(row=2, column=2).value == row[1]
