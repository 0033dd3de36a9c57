"""`wastepilot run`: the whole pilot in the foreground, as the README's run command starts it,
at each awkward instant of the calendar (through WASTEPILOT_CLOCK_AT, never today's date)."""

from __future__ import annotations

import time
from datetime import datetime

import httpx2 as httpx
import psycopg
import pytest

from simulator.model import is_away, make_household
from simulator.params import Params
from tests.helpers import AWKWARD_INSTANTS, free_port, run_env, running_pilot

pytestmark = pytest.mark.services


def test_the_first_household_is_away_at_the_holiday_instant() -> None:
    """The regression the holiday instant guards: the fleet's first household publishes
    nothing then (seed 1), so a check of one fixed household would find no usage."""
    at = AWKWARD_INSTANTS["holiday-of-SIM-000001"]
    assert is_away(make_household(1, 1, Params()), at.date(), Params())


@pytest.mark.parametrize("at", AWKWARD_INSTANTS.values(), ids=AWKWARD_INSTANTS.keys())
def test_run_shows_simulated_usage_within_a_minute_and_stops_on_ctrl_c(
    at: datetime,
    db: psycopg.Connection[tuple[object, ...]],
    db_url: str,
    mqtt_test_url: str,
    prefix: str,
    tokens: dict[str, str],
) -> None:
    api_port = free_port()
    env = run_env(db_url, mqtt_test_url, prefix, api_port, WASTEPILOT_CLOCK_AT=at.isoformat())
    with running_pilot(["--households", "3"], env) as (proc, lines):
        deadline = time.monotonic() + 60
        example: list[str] = []
        while time.monotonic() < deadline and not example:
            time.sleep(0.5)
            example = [ln.strip() for ln in list(lines) if ln.startswith("curl ")]
        assert example, "run printed no example request within 60 s:\n" + "".join(lines)
        # no mail provider set: the outbox's e-mails go to the local catcher
        assert any("e-mails are caught, not sent" in ln for ln in lines), "".join(lines)
        # the printed request, as a newcomer would paste it
        url = example[0].split("'")[1]
        ref = url.split("/households/")[1].split("/")[0]
        r = httpx.get(url, headers={"Authorization": f"Bearer {tokens['analyst']}"}, timeout=5)
        assert r.status_code == 200, r.text
        points = r.json()["points"]
        assert points, f"the printed example for {ref} shows no usage: {r.text[:300]}"
        # ...and what it shows is what the simulator published for that household, on the
        # moved clock's days (not today's)
        stored = db.execute(
            "SELECT count(*), max(r.ts) FROM readings r JOIN devices d ON d.id = r.device_id "
            "WHERE d.household_ref = %s AND r.kind = 'run'",
            (ref,),
        ).fetchone()
        assert stored is not None
        count, newest = stored
        assert isinstance(newest, datetime)
        assert abs((newest - at).total_seconds()) < 2 * 86400, (newest, at)
        assert sum(int(p["uses"]) for p in points) <= int(str(count))
        assert int(str(count)) > 0
        if at == AWKWARD_INSTANTS["holiday-of-SIM-000001"]:
            assert ref != "SIM-000001"
        # the pilot's own series (default period: the week to the moved clock's now) and the
        # household list agree with it
        auth = {"Authorization": f"Bearer {tokens['analyst']}"}
        base = f"http://127.0.0.1:{api_port}/api/v1"
        pilot = httpx.get(f"{base}/usage", params={"bucket": "1h"}, headers=auth)
        assert pilot.status_code == 200, pilot.text
        assert (
            sum(int(p["uses"]) for p in pilot.json()["points"])
            >= sum(int(p["uses"]) for p in points)
            > 0
        )
        listed = httpx.get(f"{base}/households", headers=auth).json()
        assert listed[0]["last_reading_at"] is not None
        assert {h["ref"] for h in listed} == {"SIM-000001", "SIM-000002", "SIM-000003"}
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "stopped" in out
    assert f"the clock moved to {at:%Y-%m-%d}" in out
