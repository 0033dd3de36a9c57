"""Workshops, registrations, capacity and the waiting list, against the real database."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.helpers import person, workshop_body

pytestmark = pytest.mark.services

Conn = psycopg.Connection[tuple[object, ...]]


def _workshop(api: TestClient, **over: Any) -> dict[str, Any]:
    r = api.post("/api/v1/workshops", json=workshop_body(**over))
    assert r.status_code == 201, r.text
    return dict(r.json())


def _post_json(url: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    req = urllib.request.Request(  # noqa: S310  (our own test server)
        url, json.dumps(body).encode(), headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310  (our own test server)
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_fifty_concurrent_registrations_for_twenty_places(
    served: str, bids_db: Conn, api: TestClient, tokens: dict[str, str]
) -> None:
    w = _workshop(api, capacity=20)
    barrier = threading.Barrier(50)
    results: dict[int, tuple[int, dict[str, Any]]] = {}

    def book(i: int) -> None:
        barrier.wait()
        results[i] = _post_json(
            f"{served}/api/v1/workshops/{w['id']}/registrations", person(i), tokens["officer"]
        )

    threads = [threading.Thread(target=book, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(code for code, _ in results.values()) == [201] * 50
    statuses = [body["status"] for _, body in results.values()]
    assert statuses.count("registered") == 20
    assert statuses.count("waiting") == 30

    # arrival order is the order the database served the requests: the first 20 got places,
    # the rest wait in the order they came
    rows = bids_db.execute(
        "SELECT id, status FROM registrations WHERE workshop_id = %s ORDER BY arrival", (w["id"],)
    ).fetchall()
    assert [s for _, s in rows] == ["registered"] * 20 + ["waiting"] * 30
    listed = api.get(f"/api/v1/workshops/{w['id']}/registrations").json()
    assert [r["id"] for r in listed] == [i for i, _ in rows]
    assert [r["waiting_position"] for r in listed[20:]] == list(range(1, 31))
    by_id = {body["id"]: body for _, body in results.values()}
    for r in listed:  # each caller was told what the database recorded
        assert by_id[r["id"]]["status"] == r["status"]
        assert by_id[r["id"]]["waiting_position"] in (None, r["waiting_position"])
    got = api.get(f"/api/v1/workshops/{w['id']}").json()
    assert (got["places_taken"], got["places_free"], got["waiting"]) == (20, 0, 30)

    # a cancellation offers the place to the first person waiting (held for them: taken)
    first_waiting = listed[20]
    r = api.patch(f"/api/v1/registrations/{listed[3]['id']}", json={"status": "cancelled"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    promoted = api.get(f"/api/v1/registrations/{first_waiting['id']}").json()
    assert promoted["status"] == "offered"
    assert promoted["waiting_position"] is None
    assert promoted["offer_expires_at"] is not None
    after = api.get(f"/api/v1/workshops/{w['id']}/registrations?status=waiting").json()
    assert [r["id"] for r in after] == [r["id"] for r in listed[21:]]
    assert [r["waiting_position"] for r in after] == list(range(1, 30))


def test_registrations_fill_places_then_the_waiting_list_in_order(api: TestClient) -> None:
    w = _workshop(api, capacity=3)
    regs = [
        api.post(f"/api/v1/workshops/{w['id']}/registrations", json=person(i)) for i in range(5)
    ]
    assert [r.status_code for r in regs] == [201] * 5
    assert [r.json()["status"] for r in regs] == ["registered"] * 3 + ["waiting"] * 2
    assert [r.json()["waiting_position"] for r in regs] == [None, None, None, 1, 2]

    # raising the capacity offers the new place to the waiting list in order
    r = api.patch(f"/api/v1/workshops/{w['id']}", json={"capacity": 4})
    assert r.status_code == 200, r.text
    assert (r.json()["places_taken"], r.json()["offered"]) == (4, 1)
    assert api.get(f"/api/v1/registrations/{regs[3].json()['id']}").json()["status"] == "offered"
    assert api.get(f"/api/v1/registrations/{regs[4].json()['id']}").json()["waiting_position"] == 1

    # capacity cannot drop below the places taken
    r = api.patch(f"/api/v1/workshops/{w['id']}", json={"capacity": 2})
    assert r.status_code == 409
    assert "places taken" in r.json()["detail"]

    # a waiting person who cancels leaves the list; nobody is promoted past the capacity
    r = api.patch(f"/api/v1/registrations/{regs[4].json()['id']}", json={"status": "cancelled"})
    assert r.json()["status"] == "cancelled"
    assert api.get(f"/api/v1/workshops/{w['id']}").json()["waiting"] == 0


def test_one_registration_per_email_per_workshop(api: TestClient, bids_db: Conn) -> None:
    w = _workshop(api)
    assert api.post(f"/api/v1/workshops/{w['id']}/registrations", json=person(1)).status_code == 201
    again = person(1) | {"email": "PERSON1@Council.Example.org"}
    r = api.post(f"/api/v1/workshops/{w['id']}/registrations", json=again)
    assert r.status_code == 409
    assert "already registered" in r.json()["detail"]
    # the rule is the database's own: a direct insert is refused too
    with pytest.raises(psycopg.errors.UniqueViolation):
        bids_db.execute(
            "INSERT INTO registrations (workshop_id, council_code, person_name, email, status, "
            "recorded_by) VALUES (%s, 'E06000002', 'X', 'person1@council.example.org', "
            "'registered', 'sql')",
            (w["id"],),
        )
    # after cancelling, the same person may register again
    first = api.get(f"/api/v1/workshops/{w['id']}/registrations").json()[0]
    api.patch(f"/api/v1/registrations/{first['id']}", json={"status": "cancelled"})
    assert api.post(f"/api/v1/workshops/{w['id']}/registrations", json=person(1)).status_code == 201


def test_the_database_never_exceeds_capacity(api: TestClient, bids_db: Conn) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    w = _workshop(
        api, capacity=2, starts_at=past.isoformat(), ends_at=(past + timedelta(hours=3)).isoformat()
    )
    insert = (
        "INSERT INTO registrations (workshop_id, council_code, person_name, email, status, "
        "recorded_by) VALUES (%s, 'E06000002', 'X', %s, %s, 'sql') RETURNING status"
    )
    assert bids_db.execute(insert, (w["id"], "a@x.org", "attended")).fetchone() == ("attended",)
    assert bids_db.execute(insert, (w["id"], "b@x.org", "registered")).fetchone() == ("registered",)
    assert bids_db.execute(insert, (w["id"], "c@x.org", "registered")).fetchone() == ("waiting",)
    with pytest.raises(psycopg.errors.CheckViolation, match="full"):
        bids_db.execute(insert, (w["id"], "d@x.org", "attended"))
    with pytest.raises(psycopg.errors.CheckViolation, match="full"):
        bids_db.execute("UPDATE registrations SET status = 'registered' WHERE email = 'c@x.org'")


def test_status_rules(api: TestClient) -> None:
    future = _workshop(api)
    reg = api.post(f"/api/v1/workshops/{future['id']}/registrations", json=person(1)).json()
    r = api.patch(f"/api/v1/registrations/{reg['id']}", json={"status": "attended"})
    assert r.status_code == 409
    assert "not started" in r.json()["detail"]

    past = datetime.now(UTC) - timedelta(days=2)
    held = _workshop(
        api, starts_at=past.isoformat(), ends_at=(past + timedelta(hours=4)).isoformat()
    )
    reg = api.post(f"/api/v1/workshops/{held['id']}/registrations", json=person(2)).json()
    assert (
        api.patch(f"/api/v1/registrations/{reg['id']}", json={"status": "attended"}).status_code
        == 200
    )
    r = api.patch(f"/api/v1/registrations/{reg['id']}", json={"status": "waiting"})
    assert r.status_code == 409
    assert "can become only" in r.json()["detail"]
    assert (
        api.patch(f"/api/v1/registrations/{reg['id']}", json={"status": "no_show"}).json()["status"]
        == "no_show"
    )
    assert (
        api.patch(f"/api/v1/registrations/{reg['id']}", json={"status": "cancelled"}).status_code
        == 409
    )

    # a cancelled workshop takes no registrations
    assert (
        api.patch(f"/api/v1/workshops/{future['id']}", json={"status": "cancelled"}).status_code
        == 200
    )
    r = api.post(f"/api/v1/workshops/{future['id']}/registrations", json=person(3))
    assert r.status_code == 409
    assert "cancelled" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (person(1, council="E06999999"), "no council with this GSS code"),
        (person(1, council="W06000001"), "not an English council code"),
        (person(1, council="XYZ"), "not a GSS code"),
        (person(1) | {"email": "not-an-email"}, "email"),
        (person(1) | {"person_name": "  "}, "person_name"),
        (person(1) | {"extra": 1}, "extra"),
    ],
)
def test_bad_registrations_say_what_to_fix(
    api: TestClient, body: dict[str, Any], message: str
) -> None:
    w = _workshop(api)
    r = api.post(f"/api/v1/workshops/{w['id']}/registrations", json=body)
    assert r.status_code == 422, r.text
    assert message in r.text


def test_workshop_times_and_validation(api: TestClient) -> None:
    w = _workshop(
        api,
        starts_at="2027-03-28T09:30:00+00:00",
        ends_at="2027-03-28T15:00:00+00:00",
        timezone="Europe/London",
    )
    # 28 March 2027 is the first day of British Summer Time: 09:30 UTC is 10:30 in London
    assert w["starts_local"] == "2027-03-28 10:30 BST"
    assert w["speakers"] == [{"name": "A Speaker", "organisation": "WRAP"}]
    bad = [
        workshop_body(ends_at=workshop_body()["starts_at"]),
        workshop_body(timezone="Mars/Olympus"),
        workshop_body(starts_at="2027-03-28T09:30:00"),
        workshop_body(capacity=0),
        workshop_body(region="Wessex"),
    ]
    for body in bad:
        r = api.post("/api/v1/workshops", json=body)
        assert r.status_code == 422, (body, r.text)
    assert api.get("/api/v1/workshops/999999").status_code == 404
    assert api.get("/api/v1/workshops/99999999999999999999").status_code == 422
