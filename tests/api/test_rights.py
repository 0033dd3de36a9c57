"""Rights on every path (issue 26), over real HTTP on the real database: a read-only token used
as the pages' session cookie writes nothing through any page; the audit log shows each role
only the records it may list elsewhere."""

from __future__ import annotations

import re
from typing import Any

import httpx2
import psycopg
import pytest
from fastapi.routing import APIRoute

from api.auth import SESSION_COOKIE, csrf_token
from api.web.pages import PARTS
from bench.attacks import good_workbook
from core import auth
from tests.helpers import bearer, workshop_body

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]

# writes through pages that are not a session's: signing in (no session yet), signing out
# (ends the session it is sent with, whatever its scope) and answering a waiting-list offer
# (the e-mailed link's secret is the right: tests/api/test_waiting_offers.py attacks it)
NOT_RECORD_WRITES = {
    "/sign-in",
    "/sign-out",
    "/offers/{token}/{answer}",
    "/digest/unsubscribe/{secret}",  # the digest's own links (tests/api/test_digest.py)
    "/digest/confirm/{secret}",
}


def page_writes() -> set[str]:
    """Every page route that takes a POST (the app's own list, so a new one is walked too)."""
    return {
        r.path
        for part in PARTS
        for r in part.routes
        if isinstance(r, APIRoute)
        and "POST" in r.methods
        and not r.path.startswith("/api/")
        and r.path not in NOT_RECORD_WRITES
    }


def test_a_read_only_session_writes_nothing_through_any_page(
    db: Conn, served: str, tokens: dict[str, str]
) -> None:
    officer = bearer(tokens["officer"])
    w = httpx2.post(f"{served}/api/v1/workshops", json=workshop_body(), headers=officer).json()
    reg = httpx2.post(
        f"{served}/api/v1/workshops/{w['id']}/registrations",
        json={"council_code": "E08000035", "person_name": "Ann Lee", "email": "ann@example.org"},
        headers=officer,
    )
    assert reg.status_code == 201, reg.text
    rid = reg.json()["id"]
    read_only = auth.create_token(db, "test-officer", scope="read", name="read-only session")[1]
    writable = auth.create_token(db, "test-officer", scope="write", name="session")[1]
    analyst_read_only = auth.create_token(db, "test-analyst", scope="read", name="read-only")[1]
    alert = db.execute(
        "INSERT INTO alerts (kind, device_id, household_ref, state, detail, first_found,"
        " last_found, opened_at) VALUES ('leak', 'D-1', 'H-1', 'open', '1 leak', now(), now(),"
        " now()) RETURNING id"
    ).fetchone()
    assert alert is not None
    db.commit()

    attendance = {
        "person_name": "Bea Cole",
        "email": "bea@example.org",
        "council": "Leeds",
        "status": "registered",  # the workshop is a fortnight away
    }
    requests: dict[str, dict[str, Any]] = {
        "/officers/workshops/{wid}/attendance": {"data": attendance},
        "/officers/registrations/{rid}/status": {"data": {"status": "cancelled"}},
        "/officers/workshops/{wid}/import": {
            "data": {"commit": "yes"},
            "files": {"file": ("a.xlsx", good_workbook())},
        },
        "/analysts/alerts/{alert_id}/{action}": {
            "data": {"note": "visited"},
            "path": {"action": "resolve"},
            "session": analyst_read_only,
        },
        "/analysts/digest": {"data": {"email": "a@water.example"}, "session": analyst_read_only},
        "/analysts/digest/stop": {"session": analyst_read_only},
    }
    assert set(requests) == page_writes(), "a page write this test does not walk"

    def post(template: str, session: str) -> httpx2.Response:
        kw = requests[template]
        path = template.format(wid=w["id"], rid=rid, alert_id=alert[0], **kw.get("path", {}))
        data = {**kw.get("data", {}), "csrf_token": csrf_token(session)}
        return httpx2.post(
            f"{served}{path}",
            data=data,
            files=kw.get("files"),
            headers={"Accept": "text/html", "Cookie": f"{SESSION_COOKIE}={session}"},
        )

    def registrations() -> list[tuple[Any, ...]]:
        return db.execute(
            "SELECT id, person_name, status FROM registrations ORDER BY id"
        ).fetchall()

    def alerts() -> list[tuple[Any, ...]]:
        return db.execute("SELECT id, state, resolved_by FROM alerts ORDER BY id").fetchall()

    before, alerts_before = registrations(), alerts()
    for template, kw in requests.items():
        r = post(template, kw.get("session", read_only))
        assert r.status_code == 403, (template, r.status_code, r.text[:300])
        assert "may only read" in r.text, template
    assert registrations() == before
    assert alerts() == alerts_before == [(alert[0], "open", None)]
    assert db.execute("SELECT count(*) FROM digest_subscriptions").fetchone() == (0,)
    # the same form with a session that may write is taken (so the 403 above was the scope)
    r = post("/officers/workshops/{wid}/attendance", writable)
    assert r.status_code == 303, re.findall(r"Error:</span>([^<]*)", r.text)
    assert len(registrations()) == len(before) + 1


def test_the_audit_log_shows_each_role_only_what_it_may_list(
    db: Conn, served: str, tokens: dict[str, str]
) -> None:
    # a change of each kind: a workshop (bid support), a person and a token (administration)
    httpx2.post(
        f"{served}/api/v1/workshops", json=workshop_body(), headers=bearer(tokens["officer"])
    )
    auth.create_token(db, "test-analyst", name="for the audit test")
    db.commit()

    def tables(token: str, **params: str) -> httpx2.Response:
        return httpx2.get(
            f"{served}/api/v1/audit", params={"limit": "1000", **params}, headers=bearer(token)
        )

    officer = tables(tokens["officer"])
    assert officer.status_code == 200
    seen = {row["table_name"] for row in officer.json()}
    assert "workshops" in seen
    assert not seen & {"users", "api_tokens", "devices"}, seen
    # asked by name, the answer is a refusal that says why, not an empty list
    refused = tables(tokens["officer"], table="users")
    assert refused.status_code == 403 and "users" in refused.json()["detail"]
    # an officer may not list users elsewhere either: the audit log matches that right
    assert (
        httpx2.get(f"{served}/api/v1/users", headers=bearer(tokens["officer"])).status_code == 403
    )
    admin = {row["table_name"] for row in tables(tokens["admin"]).json()}
    assert {"workshops", "api_tokens"} <= admin
    assert tables(tokens["analyst"]).status_code == 403
