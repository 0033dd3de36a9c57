"""Every page as its people use it, on a pilot started the README's way (`wastepilot run` with a
backfill, real database, broker, ingest, scheduler and simulator), in Chromium at 1280 and 360
px: the dashboard's key figures are the API's within a minute of the start; no page shows
"None", "nan" or a bare "-", scrolls sideways on a phone, fails a request, has its scripts
refused, or has a serious or critical axe-core finding; each is saved as a screenshot
(test-artifacts/pages/). A household the simulator gave leaks and lost readings has both named
on its page, with their times (the times the simulator's model gives, not the database's)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import psycopg
import pytest

from core import clock, display
from simulator.device import reading_dict
from simulator.model import household_day, local_days, lost_readings, make_fleet
from simulator.params import Params
from tests.helpers import (
    ARTIFACTS,
    PASSWORD,
    bearer,
    csp_refusals,
    free_port,
    person,
    run_env,
    running_pilot,
    serious_violations,
    workshop_body,
)

pytestmark = pytest.mark.services

SHOTS = ARTIFACTS / "pages"
WIDTHS = (1280, 360)
# what must never reach a person: Python's None, pandas' nan, a dash standing for nothing
UNREADABLE = re.compile(r"\bNone\b|\bnan\b|\bNaN\b|\bnull\b|(?:^|\s)-(?:\s|$)")
FAULTY = 900  # a household added with many leaks and lost readings
SEED = 7


@dataclass
class Pilot:
    base: str
    started: float  # time.monotonic() when `wastepilot run` was started
    lines: list[str]
    env: dict[str, str]


@pytest.fixture
def pilot(
    db: psycopg.Connection[tuple[object, ...]],
    db_url: str,
    mqtt_test_url: str,
    prefix: str,
    tokens: dict[str, str],
) -> Iterator[Pilot]:
    api_port = free_port()
    env = run_env(db_url, mqtt_test_url, prefix, api_port, WASTEPILOT_SIM_SEED=str(SEED))
    started = time.monotonic()
    with running_pilot(["--households", "12", "--backfill-days", "10"], env) as (_, lines):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            "wastepilot is running" in ln for ln in lines
        ):
            time.sleep(0.25)
        assert any("wastepilot is running" in ln for ln in lines), "".join(lines)
        yield Pilot(f"http://127.0.0.1:{api_port}", started, lines, env)


def expected_kpi_text(k: dict[str, Any]) -> dict[str, str]:
    """The API's figures written for people, field by field, as the test states them."""
    return {
        "households_active": f"{display.number(k['households_active'], 0)} of "
        f"{display.count(k['households_enrolled'], 'household')} enrolled used their disposer",
        "uses_per_household_day_median": display.number(k["uses_per_household_day_median"])
        + f" (middle half of homes: {display.number(k['uses_per_household_day_p25'])} to "
        f"{display.number(k['uses_per_household_day_p75'])})",
        "food_kg_diverted": display.quantity(k["food_kg_diverted"], "kg"),
        "water_l_per_household_day": display.quantity(k["water_l_per_household_day"], "L"),
        "energy_wh_per_household_day": display.quantity(k["energy_wh_per_household_day"], "Wh"),
        "faults_per_100_uses": display.number(k["faults_per_100_uses"], 2),
        "completeness": display.percent(k["completeness"]),
    }


def dashboard_matches_api(page: Any, pilot: Pilot, token: str) -> dict[str, Any] | None:
    """The API's KPIs when the dashboard shows exactly them (checked between two equal answers
    of the API, as the live simulator keeps adding readings); None otherwise."""
    today = clock.today()
    period = {"start": str(today - timedelta(days=30)), "end": str(today + timedelta(days=1))}
    url = f"{pilot.base}/api/v1/kpis"
    before = httpx.get(url, params=period, headers=bearer(token), timeout=10).json()
    page.goto(f"{pilot.base}/analysts")
    shown = {
        el.get_attribute("data-kpi"): el.inner_text().strip()
        for el in page.locator("[data-kpi]").all()
    }
    after = httpx.get(url, params=period, headers=bearer(token), timeout=10).json()
    same = {k: v for k, v in before.items() if k != "as_of"} == {
        k: v for k, v in after.items() if k != "as_of"
    }
    if same and shown == expected_kpi_text(after):
        return dict(after)
    last_seen[:] = [shown, expected_kpi_text(after)]
    return None


last_seen: list[Any] = []  # the last mismatch, for the failure message


def look(page: Any, name: str, width: int, failed: list[str]) -> list[str]:
    """The problems a person would meet on the page now open, with a screenshot of it."""
    page.wait_for_load_state("networkidle")
    problems = [f"{name} @{width}: {f}" for f in failed]
    failed.clear()
    text = page.inner_text("body")
    for m in UNREADABLE.finditer(text):
        around = text[max(0, m.start() - 40) : m.end() + 40].replace("\n", " | ")
        problems.append(f"{name} @{width}: {m.group().strip()!r} in …{around}…")
    scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    if scroll > inner:
        problems.append(f"{name} @{width}: scrolls sideways ({scroll} px in {inner} px)")
    for v in serious_violations(page):
        problems.append(f"{name} @{width}: axe {v['impact']} {v['id']} at {v['nodes'][:3]}")
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    return problems


def open_as(browser: Any, base: str, user: str | None, width: int) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    page = ctx.new_page()
    failed: list[str] = []
    page.on(
        "response",
        lambda r: (
            failed.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.request.is_navigation_request()
            else None
        ),
    )
    if user:
        page.goto(f"{base}/sign-in")
        page.fill("#username", user)
        page.fill("#password", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.wait_for_load_state()
    return ctx, page, failed


def faulty_household_events(start: datetime, end: datetime) -> tuple[list[str], list[str]]:
    """What the simulator's model gives the faulty household in [start, end): the times of its
    leaks, and for each run of lost readings the times of the readings either side, as the
    page writes them."""
    params = Params(leak_rate_per_day=0.9, readings_lost_rate_per_day=0.9)
    h = make_fleet(1, SEED, params, FAULTY)[0]
    events, lost = [], set()
    for day in local_days(start - timedelta(days=1), end + timedelta(days=1)):
        whole = household_day(h, day, SEED, params)
        lost |= {whole[i].at for i in lost_readings(h, day, SEED, params, len(whole))}
        events += whole

    def ts(e: Any) -> datetime:
        return datetime.fromisoformat(reading_dict(h, 0, e)["ts"])

    leaks = [
        display.when(ts(e))
        for e in events
        if e.fault == "leak" and e.at not in lost and start <= e.at < end
    ]
    gaps = []
    for i, e in enumerate(events):
        if e.at in lost and (i == 0 or events[i - 1].at not in lost):
            j = i
            while j < len(events) and events[j].at in lost:
                j += 1
            if i > 0 and j < len(events) and start <= events[i - 1].at and events[j].at < end:
                gaps.append(f"{display.when(ts(events[i - 1]))} and {display.when(ts(events[j]))}")
    return leaks, gaps


def test_every_page_as_people_see_it_on_a_freshly_started_pilot(
    pilot: Pilot, browser: Any, tokens: dict[str, str], db: psycopg.Connection[tuple[object, ...]]
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    # the dashboard's key figures equal the API's, non-zero, within a minute of the start
    ctx, page, failed = open_as(browser, pilot.base, "test-analyst", 1280)
    refused = csp_refusals(page)
    matched = None
    while matched is None and time.monotonic() - pilot.started < 60:
        matched = dashboard_matches_api(page, pilot, tokens["analyst"])
    assert matched is not None, f"no match within a minute: {last_seen}\n{''.join(pilot.lines)}"
    assert matched["households_active"] > 0
    assert matched["food_kg_diverted"] > 0
    assert matched["completeness"] > 0.9
    assert matched["uses_per_household_day_median"] > 0
    ctx.close()

    # a household with leaks and lost readings, from the simulator (its model says when)
    t0 = clock.now()
    sim = subprocess.run(
        [sys.executable, "-m", "wastepilot", "simulate", "--households", "1", "--first",
         str(FAULTY), "--backfill-days", "10", "--no-live", "--seed", str(SEED),
         "--param", "leak_rate_per_day=0.9", "--param", "readings_lost_rate_per_day=0.9"],
        env=pilot.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert sim.returncode == 0, sim.stdout + sim.stderr
    leaks, gaps = faulty_household_events(t0 - timedelta(days=10) + timedelta(hours=1), t0)
    assert leaks, "the model gave the faulty household no leak: the test would prove nothing"
    assert gaps, "the model gave the faulty household no gap: the test would prove nothing"
    faulty = f"SIM-{FAULTY:06d}"

    example = next(ln for ln in pilot.lines if ln.startswith("curl ")).split("/households/")[1]
    ref = example.split("/")[0]
    workshop = httpx.post(
        f"{pilot.base}/api/v1/workshops",
        headers=bearer(tokens["officer"]),
        json=workshop_body(title="Tour workshop, Leeds", status="held", capacity=5,
                           starts_at=(t0 - timedelta(days=2)).isoformat(),
                           ends_at=(t0 - timedelta(days=2, hours=-2)).isoformat()),
        timeout=10,
    ).json()  # fmt: skip
    w = workshop["id"]
    for i, status in enumerate(["attended", "no_show", "registered"]):
        r = httpx.post(
            f"{pilot.base}/api/v1/workshops/{w}/registrations",
            headers=bearer(tokens["officer"]),
            json=person(900 + i, "E08000035"),
            timeout=10,
        )
        assert r.status_code == 201, r.text
        if status != "registered":
            r = httpx.patch(
                f"{pilot.base}/api/v1/registrations/{r.json()['id']}",
                headers=bearer(tokens["officer"]),
                json={"status": status},
                timeout=10,
            )
            assert r.status_code == 200, r.text
    sheet = b"name,email,council\nAda Lovelace,ada@example.org,Leeds\nNo Council,nc@example.org,\n"

    for width in WIDTHS:
        # signed out
        ctx, page, failed = open_as(browser, pilot.base, None, width)
        page.goto(f"{pilot.base}/sign-in")
        problems += look(page, "sign-in", width, failed)
        ctx.close()

        # an analyst
        ctx, page, failed = open_as(browser, pilot.base, "test-analyst", width)
        refused += csp_refusals(page)
        for name, path in [
            ("dashboard", "/analysts"),
            ("dashboard-hourly-cohort", "/analysts?bucket=1h&days=7&cohort=A"),
            ("household", f"/analysts/households/{ref}"),
        ]:
            page.goto(pilot.base + path)
            problems += look(page, name, width, failed)
        # the faulty household: its leaks and gaps named with their times (once stored)
        deadline = time.monotonic() + 30
        while True:
            page.goto(f"{pilot.base}/analysts/households/{faulty}")
            why = page.locator("#why").inner_text()
            faults = page.locator("#faults").inner_text() if page.locator("#faults").count() else ""
            listed = page.locator("#gaps").inner_text() if page.locator("#gaps").count() else ""
            shown = all(t in faults for t in leaks) and all(g in listed for g in gaps)
            if shown or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert "leak" in why.lower(), why
        assert "missing" in why, why
        assert [t for t in leaks if t not in faults] == [], faults
        assert [g for g in gaps if g not in listed] == [], listed
        problems += look(page, "household-with-leaks-and-gaps", width, failed)
        page.goto(f"{pilot.base}/analysts/households/NO-SUCH-HOME")
        assert page.locator("h1").inner_text() == "Page not found"
        assert "Dashboard" in page.locator("#navigation").inner_text()  # still signed in
        problems += look(page, "not-found", width, failed)
        page.goto(f"{pilot.base}/officers/workshops")
        assert page.locator("h1").inner_text() == "You cannot see this page"
        problems += look(page, "forbidden", width, failed)
        ctx.close()

        # an officer
        ctx, page, failed = open_as(browser, pilot.base, "test-officer", width)
        refused += csp_refusals(page)
        for name, path in [
            ("workshops", "/officers/workshops"),
            ("workshop", f"/officers/workshops/{w}"),
            ("import", f"/officers/workshops/{w}/import"),
        ]:
            page.goto(pilot.base + path)
            problems += look(page, name, width, failed)
        statuses = page.goto(f"{pilot.base}/officers/workshops/{w}")
        assert statuses is not None
        tags = page.locator("#attendance .govuk-tag").all_inner_texts()
        assert sorted(tags) == ["Attended", "Booked", "Did not attend"], tags
        page.goto(f"{pilot.base}/officers/workshops/{w}/import")
        page.set_input_files(
            "#file", files=[{"name": "sheet.csv", "mimeType": "text/csv", "buffer": sheet}]
        )
        page.click("button:has-text('Check the sheet')")
        page.wait_for_load_state()
        assert "Preview: 1 new" in page.locator("#result").inner_text()
        problems += look(page, "import-preview", width, failed)
        page.goto(f"{pilot.base}/officers/take-up")
        problems += look(page, "take-up", width, failed)
        page.goto(f"{pilot.base}/officers/workshops/99999999999999999999")
        assert page.locator("h1").inner_text() == "Page not found"
        assert "Workshops" in page.locator("#navigation").inner_text()  # still signed in
        problems += look(page, "no-such-workshop", width, failed)
        ctx.close()

    assert problems == []
    assert refused == []
    # the screenshots are there, every page at both widths
    names = {p.name for p in SHOTS.glob("*.png")}
    for width in WIDTHS:
        assert f"dashboard-{width}.png" in names
        assert f"household-with-leaks-and-gaps-{width}.png" in names
    assert db.execute("SELECT count(*) FROM readings").fetchone() != (0,)
