"""The web pages in a real browser (Debian's Chromium, headless, driven by Playwright) against
the app served over HTTP on the real database: an officer records attendance and sees it in the
table and the take-up report; an analyst's dashboard draws its chart from seeded data; axe-core
finds no serious or critical accessibility problem on the officers' pages. Screenshots go to
test-artifacts/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.helpers import (
    ARTIFACTS,
    csp_refusals,
    serious_violations,
    sign_in,
    workshop_body,
)

pytestmark = pytest.mark.services


def test_an_officer_records_attendance_and_sees_it_in_the_table_and_report(
    served: str, api: TestClient, browser: Any
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    past = datetime.now(UTC) - timedelta(hours=3)
    w = api.post(
        "/api/v1/workshops",
        json=workshop_body(title="Leeds bid workshop", starts_at=past.isoformat(),
                           ends_at=(past + timedelta(hours=2)).isoformat(), status="held"),
    ).json()  # fmt: skip
    page = browser.new_page()
    refused = csp_refusals(page)
    sign_in(page, served, "test-officer")
    assert page.url.endswith("/officers/workshops")
    problems = {"workshops list": serious_violations(page)}
    page.click("text=Leeds bid workshop")
    assert page.url.endswith(f"/officers/workshops/{w['id']}")
    # a wrong email and a misspelt council: GOV.UK error summary and inline errors
    page.fill("#person_name", "Ada Lovelace")
    page.fill("#person_role", "Recycling officer")
    page.fill("#email", "ada.example.org")
    page.fill("#council", "Leeds Citty")
    page.click("button:has-text('Record attendance')")
    summary = page.locator(".govuk-error-summary")
    assert summary.is_visible()
    assert "Enter an email address in the correct format" in summary.inner_text()
    assert (
        "did you mean Leeds City Council (E08000035)?"
        in page.locator("#council-error").inner_text()
    )
    assert page.title().startswith("Error:")
    problems["form with errors"] = serious_violations(page)
    page.screenshot(path=str(ARTIFACTS / "officer-form-errors.png"), full_page=True)
    page.fill("#email", "ada@leeds.example.org")
    page.fill("#council", "Leeds")
    page.click("button:has-text('Record attendance')")
    page.wait_for_load_state()
    row = page.locator("#attendance tbody tr", has_text="Ada Lovelace")
    assert row.count() == 1
    assert row.locator(".govuk-tag").inner_text() == "Attended"  # a word, not the code
    assert "Leeds" in row.inner_text()
    problems["workshop page"] = serious_violations(page)
    page.screenshot(path=str(ARTIFACTS / "officer-workshop.png"), full_page=True)
    page.goto(f"{served}/officers/workshops/{w['id']}/import")
    problems["import page"] = serious_violations(page)
    page.goto(f"{served}/officers/take-up")
    assert (
        page.locator("#sentence").inner_text().startswith("One council attended our one workshop")
    )
    assert "Leeds bid workshop" in page.locator("#workshops").inner_text()
    problems["take-up report"] = serious_violations(page)
    page.screenshot(path=str(ARTIFACTS / "officer-take-up.png"), full_page=True)
    assert problems == {k: [] for k in problems}
    assert refused == []  # the pages' own scripts and styles all come from this site
    # the attendance went through the same rules and audit as the API
    regs = api.get(f"/api/v1/workshops/{w['id']}/registrations").json()
    assert [(r["person_name"], r["status"], r["council_code"]) for r in regs] == [
        ("Ada Lovelace", "attended", "E08000035")
    ]
    audit = api.get(
        "/api/v1/audit", params={"table": "registrations", "key": str(regs[0]["id"])}
    ).json()
    assert {e["actor"] for e in audit} == {"test-officer"}


def test_a_forged_form_without_the_csrf_token_is_refused(
    served: str, api: TestClient, browser: Any
) -> None:
    w = api.post("/api/v1/workshops", json=workshop_body()).json()
    page = browser.new_page()
    sign_in(page, served, "test-officer")
    # the browser has the session cookie; a form from elsewhere lacks the token
    r = page.request.post(f"{served}/officers/workshops/{w['id']}/attendance",
                          form={"person_name": "X", "email": "x@example.org", "council": "Leeds"})  # fmt: skip
    assert r.status == 403
    assert api.get(f"/api/v1/workshops/{w['id']}/registrations").json() == []


def test_the_analysts_dashboard_draws_its_chart_from_the_data(
    served: str, browser: Any, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    from analytics.rollups import refresh
    from core.registry import Device, Household, add_devices, add_households

    ARTIFACTS.mkdir(exist_ok=True)
    add_households(
        db,
        [
            Household(
                "HH-DASH", cohort="A", joined_on=(datetime.now(UTC) - timedelta(days=60)).date()
            )
        ],
    )
    add_devices(db, [Device("DASH-1", "HH-DASH")])
    now = datetime.now(UTC)
    for seq in range(1, 31):  # thirty uses over the last ten days
        db.execute(
            "INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a) "
            "VALUES (%s, 'DASH-1', %s, 'run', 12, 3, 1.2, 4)",
            (now - timedelta(hours=8 * seq), seq),
        )
    refresh(db, timedelta(days=7), commit_lag=timedelta(0))
    page = browser.new_page()
    refused = csp_refusals(page)
    sign_in(page, served, "test-analyst")
    assert page.url.endswith("/analysts")
    page.wait_for_function("() => window.usageChart !== undefined")
    drawn = page.evaluate(
        "() => window.usageChart.data.datasets[0].data.reduce((a, b) => a + b, 0)"
    )
    assert drawn == 30
    painted = page.evaluate(
        "() => { const c = document.getElementById('usage-chart');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; } return n; }"
    )
    assert painted > 500  # the line and axes are on the canvas
    table = page.locator("#usage-table tbody tr")
    assert (
        sum(
            int(table.nth(i).locator("td").nth(1).text_content() or "0")
            for i in range(table.count())
        )
        == 30
    )
    assert "1 of 1 household enrolled used their disposer" in page.locator("#kpis").inner_text()
    page.screenshot(path=str(ARTIFACTS / "analyst-dashboard.png"), full_page=True)
    assert serious_violations(page) == []
    assert refused == []
    # signing out is a button (a POST with the session's token)
    page.click("button:has-text('Sign out')")
    page.wait_for_load_state()
    assert page.url.endswith("/sign-in")
    page.goto(f"{served}/analysts")
    assert "/sign-in" in page.url


def test_a_browser_gets_error_pages_and_api_clients_keep_json(api: TestClient) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    r = api.get("/analysts", params={"days": "x"}, headers=html)
    assert (r.status_code, r.headers["content-type"][:9]) == (400, "text/html")
    assert "There is a problem" in r.text
    assert "check it" in r.text
    r = api.get("/no/such/page", headers=html)
    assert r.status_code == 404
    assert "Page not found" in r.text
    r = api.get("/sign-out", headers=html)
    assert r.status_code == 405
    assert "go back and use the button" in r.text
    # the API answers JSON whatever the browser asks for; a page's sign-in redirect stays one
    r = api.get("/api/v1/workshops/abc", headers=html)
    assert (r.status_code, r.headers["content-type"]) == (422, "application/json")
    r = api.get("/officers/workshops", headers=html, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/sign-in")
