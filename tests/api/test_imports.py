"""Importing attendance sheets: the preview of every row's problems, then idempotent commits."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from bids.councils import reference_councils
from bids.sheets import attendance_of, read_csv
from core.errors import SheetError
from tests.helpers import workshop_body

Conn = psycopg.Connection[tuple[object, ...]]

MISSPELT = {
    "Middlesbrough Borough Council": "Middlesborough",
    "Sheffield City Council": "Sheffeild",
    "Gloucester City Council": "Glouster",
    "Wirral Borough Council": "Wiral",
}


def sample_sheet(rows: int = 150, seed: int = 7) -> tuple[bytes, dict[str, Any]]:
    """An attendance sheet as an officer keeps it: a title, a blank row, then the header; four
    misspelt council names, one bad email and one duplicate row. Returns the workbook's bytes and
    what the test expects of it."""
    rng = random.Random(seed)
    names = [
        c.name
        for c in reference_councils()
        if c.gss_code[:3] != "E10" and c.in_force_until is None  # today's councils
    ]
    rng.shuffle(names)
    body: list[list[str]] = []
    for i in range(rows - 6):
        council = names[i % len(names)]
        attended = "Y" if i % 9 else "N"
        body.append([f"Person {i}", "Waste officer", f"person{i}@example.org", council, attended])
    for i, wrong in enumerate(MISSPELT.values(), start=rows - 6):
        body.append([f"Person {i}", "Recycling lead", f"person{i}@example.org", wrong, "Y"])
    body.append(["Bad Email", "Officer", "bad.email@", names[0], "Y"])
    body.append(["Person 3", "Waste officer", "Person3@Example.org", body[3][3], "Y"])  # duplicate
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Bid workshop, Leeds: attendance"])
    sheet.append([])
    sheet.append(["Delegate name", "Job title", "E-mail address", "Organisation", "Attended (Y/N)"])
    for row in body:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    expect = {
        "good": rows - 6,
        "attended": sum(1 for r in body[: rows - 6] if r[4] == "Y"),
        "misspelt_rows": {4 + rows - 6 + k: right for k, right in enumerate(MISSPELT)},
        "bad_email_row": 4 + rows - 2,
        "duplicate_row": 4 + rows - 1,
        "duplicate_of": 4 + 3,
    }
    return buf.getvalue(), expect


def _import(api: TestClient, wid: int, data: bytes, name: str = "sheet.xlsx", **params: Any) -> Any:
    return api.post(
        f"/api/v1/workshops/{wid}/attendance-import",
        params=params,
        files={"file": (name, data, "application/octet-stream")},
    )


def _held_workshop(api: TestClient, capacity: int = 200) -> int:
    start = datetime.now(UTC) - timedelta(days=3)
    body = workshop_body(
        capacity=capacity,
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=5)).isoformat(),
        status="held",
    )
    r = api.post("/api/v1/workshops", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.mark.services
def test_xlsx_sheet_preview_commit_and_reimport(api: TestClient, bids_db: Conn) -> None:
    data, expect = sample_sheet()
    wid = _held_workshop(api)

    preview = _import(api, wid, data)
    assert preview.status_code == 200, preview.text
    p = preview.json()
    assert p["committed"] is False
    assert p["counts"] == {"new": expect["good"], "update": 0, "unchanged": 0, "error": 6}
    rows = {r["row"]: r for r in p["rows"]}
    assert len(rows) == 150
    for n, right in expect["misspelt_rows"].items():
        (problem,) = rows[n]["problems"]
        assert problem["field"] == "council"
        assert problem["suggestion"] == right
        assert f"did you mean {right}" in problem["message"]
    (problem,) = rows[expect["bad_email_row"]]["problems"]
    assert problem["field"] == "email"
    assert "bad.email@" in problem["message"]
    (problem,) = rows[expect["duplicate_row"]]["problems"]
    assert problem["message"] == f"duplicate: row {expect['duplicate_of']} has the same email"
    assert bids_db.execute("SELECT count(*) FROM registrations").fetchone() == (0,)

    committed = _import(api, wid, data, commit="true").json()
    assert committed["committed"] is True
    assert committed["counts"]["new"] == expect["good"]
    stored = bids_db.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'attended'), "
        "count(*) FILTER (WHERE status = 'no_show'), max(updated_at) "
        "FROM registrations WHERE workshop_id = %s",
        (wid,),
    ).fetchone()
    assert stored is not None
    assert stored[:3] == (expect["good"], expect["attended"], expect["good"] - expect["attended"])
    audit_before = bids_db.execute("SELECT count(*) FROM audit_log").fetchone()

    again = _import(api, wid, data, commit="true").json()
    assert again["counts"] == {"new": 0, "update": 0, "unchanged": expect["good"], "error": 6}
    assert (
        bids_db.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'attended'), "
            "count(*) FILTER (WHERE status = 'no_show'), max(updated_at) "
            "FROM registrations WHERE workshop_id = %s",
            (wid,),
        ).fetchone()
        == stored
    )
    assert bids_db.execute("SELECT count(*) FROM audit_log").fetchone() == audit_before

    # taking the suggested councils brings in the four misspelt rows, once
    fixed = _import(api, wid, data, commit="true", accept_suggestions="true").json()
    assert fixed["counts"] == {"new": 4, "update": 0, "unchanged": expect["good"], "error": 2}
    codes = {r["row"]: r["council_code"] for r in fixed["rows"]}
    assert codes[min(expect["misspelt_rows"])] == "E06000002"


@pytest.mark.services
def test_a_later_sheet_updates_attendance(api: TestClient) -> None:
    wid = _held_workshop(api)
    first = b"Name,Email,Council,Attended\nAna Lee,ana@example.org,Leeds,\nBo Ray,bo@example.org,E08000035,\n"
    assert _import(api, wid, first, "a.csv", commit="true").json()["counts"]["new"] == 2
    later = b"Name,Email,Council,Attended\nAna Lee,ana@example.org,Leeds,yes\nBo Ray,bo@example.org,Leeds,no\n"
    r = _import(api, wid, later, "b.csv", commit="true").json()
    assert r["counts"] == {"new": 0, "update": 2, "unchanged": 0, "error": 0}
    statuses = {
        x["email"]: x["status"] for x in api.get(f"/api/v1/workshops/{wid}/registrations").json()
    }
    assert statuses == {"ana@example.org": "attended", "bo@example.org": "no_show"}


@pytest.mark.services
def test_a_sheet_beyond_capacity_or_before_the_day_is_refused_whole(api: TestClient) -> None:
    wid = _held_workshop(api, capacity=1)
    sheet = b"Name,Email,Council,Attended\nA,a@example.org,Leeds,yes\nB,b@example.org,Leeds,yes\n"
    r = _import(api, wid, sheet, "s.csv")
    assert r.status_code == 200
    assert "1 free places" in r.json()["sheet_problems"][0]
    r = _import(api, wid, sheet, "s.csv", commit="true")
    assert r.status_code == 409
    assert "raise its capacity" in r.json()["detail"]

    future = api.post("/api/v1/workshops", json=workshop_body()).json()["id"]
    r = _import(api, future, sheet, "s.csv", commit="true")
    assert r.status_code == 409
    assert "not started" in r.json()["detail"]


@pytest.mark.services
@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"Name,Phone\nA,1\n", "s.csv", "no header row found"),
        (b"Name,Email\nA,a@example.org\n", "s.csv", "no council column"),
        (b"PK\x03\x04garbage", "s.xlsx", "not a readable XLSX"),
        (b"\xd0\xcf\x11\xe0", "s.xls", "save the sheet as .xlsx"),
    ],
)
def test_unreadable_sheets_get_a_422_that_says_why(
    api: TestClient, data: bytes, name: str, message: str
) -> None:
    wid = _held_workshop(api)
    r = _import(api, wid, data, name)
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_csv_with_title_rows_semicolons_and_a_bom() -> None:
    text = "\ufeffWorkshop attendance;;;\n;;;\nFull name;Email address;Local authority;Attendance\nA B;a@b.org;Leeds;Present\n"
    (row,) = read_csv(text.encode())
    assert row.number == 4
    assert row.cells == {
        "name": "A B",
        "email": "a@b.org",
        "council": "Leeds",
        "attendance": "Present",
    }
    with pytest.raises(SheetError):
        read_csv(b"just,some,words\n")


@pytest.mark.parametrize(
    ("cell", "status"),
    [("Y", "attended"), ("yes", "attended"), ("✓", "attended"), ("No-show", "no_show"),
     ("DNA", "no_show"), ("", "registered"), ("Cancelled", "cancelled"), ("maybe", None)],
)  # fmt: skip
def test_attendance_words(cell: str, status: str | None) -> None:
    assert attendance_of(cell) == status
