"""The usage endpoint against the real database, and the probes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.registry import Device, add_devices
from core.settings import Settings
from tests.helpers import bearer

pytestmark = pytest.mark.services


@pytest.fixture
def client(db_url: str, tokens: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(database_url=db_url)), headers=bearer(tokens["analyst"])
    ) as c:
        yield c


def _insert(
    db: psycopg.Connection[tuple[object, ...]],
    device: str,
    seq: int,
    ts: datetime,
    kind: str = "run",
    run_s: float = 10.0,
    wh: float = 2.0,
    litres: float = 1.0,
) -> None:
    db.execute(
        "INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, fault) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 3.0, %s)",
        (ts, device, seq, kind, run_s, wh, litres, "jam" if kind == "fault" else None),
    )


def test_daily_usage_follows_london_days(
    db: psycopg.Connection[tuple[object, ...]], client: TestClient
) -> None:
    add_devices(db, [Device("FWD-000001", "HH-1")])
    # 23:30 UTC on 1 July is 00:30 on 2 July in London (BST): it belongs to 2 July.
    _insert(db, "FWD-000001", 1, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    _insert(db, "FWD-000001", 2, datetime(2026, 7, 1, 23, 30, tzinfo=UTC))
    _insert(
        db, "FWD-000001", 3, datetime(2026, 7, 2, 8, 0, tzinfo=UTC), run_s=12.5, wh=3.0, litres=1.5
    )
    _insert(db, "FWD-000001", 4, datetime(2026, 7, 2, 9, 0, tzinfo=UTC), kind="fault")
    r = client.get(
        "/api/v1/households/HH-1/usage",
        params={
            "bucket": "1d",
            "start": "2026-07-01T00:00:00+01:00",
            "end": "2026-07-03T00:00:00+01:00",
        },
    )
    assert r.status_code == 200, r.text
    pts = r.json()["points"]
    # sums include fault events (a jam still ran the motor and used water); uses count runs only
    assert [(p["uses"], p["run_s"], p["energy_wh"], p["water_l"], p["faults"]) for p in pts] == [
        (1, 10.0, 2.0, 1.0, 0),
        (2, 32.5, 7.0, 3.5, 1),
    ]
    assert datetime.fromisoformat(pts[0]["bucket"]) == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
    assert datetime.fromisoformat(pts[1]["bucket"]) == datetime(2026, 7, 1, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/v1/households/NOPE/usage", {}, 404, "no household"),
        ("/api/v1/households/HH-1/usage", {"bucket": "5m"}, 422, "15m"),
        ("/api/v1/households/HH-1/usage", {"tz": "Mars/Olympus"}, 422, "time zone"),
        (
            "/api/v1/households/HH-1/usage",
            {"start": "2026-07-02T00:00:00Z", "end": "2026-07-01T00:00:00Z"},
            422,
            "before",
        ),
        ("/api/v1/households/HH-1/usage", {"start": "2026-07-02T00:00:00"}, 422, "timezone"),
        (
            "/api/v1/households/HH-1/usage",
            {"bucket": "15m", "start": "2020-01-01T00:00:00Z"},
            422,
            "buckets",
        ),
        ("/api/v1/households/bad%20ref/usage", {}, 422, "pattern"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(
    db: psycopg.Connection[tuple[object, ...]],
    client: TestClient,
    path: str,
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    add_devices(db, [Device("FWD-000001", "HH-1")])
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert message in r.text


def test_probes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_api_starts_without_its_database_and_says_not_ready() -> None:
    unreachable = "postgresql://nobody:x@127.0.0.1:9/nowhere?connect_timeout=1"
    with TestClient(create_app(Settings(database_url=unreachable))) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["reason"] == "database unavailable"
