"""Who may do what: every API operation checked anonymous -> 401, wrong role -> 403, right role
-> 2xx; no plaintext secrets in the database; injection and traversal attempts get a 4xx and
change nothing; device logins issued and revoked on the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from analytics.report import store_report
from api.app import create_app
from core import auth
from core.registry import Device, add_devices
from core.settings import Settings
from tests.helpers import bearer, person, workshop_body

pytestmark = pytest.mark.services

Conn = psycopg.Connection[tuple[object, ...]]
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/session"),
    ("DELETE", "/api/v1/auth/session"),
    # GOV.UK Notify's receipts: the callback's own token, no user's (tests/api/test_notify.py)
    ("POST", "/api/v1/notify/delivery"),
}
WRONG = {"analyst": "officer", "officer": "analyst", "admin": "officer"}
WORLD_KEYS = ("workshop", "registration", "bid", "report", "victim", "victim_2", "token", "alert")


def table(w: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(method, operation path, role, request path, request kwargs) for every operation."""
    u = uuid.uuid4().hex[:8]
    csv_sheet = b"Name,Email,Council,Attended\nAna Lee,ana@example.org,Leeds,yes\n"
    return [
        ("GET", "/api/v1/auth/me", "any", "/api/v1/auth/me", {}),
        ("GET", "/api/v1/households", "analyst", "/api/v1/households", {}),
        ("GET", "/api/v1/households/{ref}/usage", "analyst", "/api/v1/households/HH-SEC/usage", {}),
        ("GET", "/api/v1/households/{ref}/water", "analyst", "/api/v1/households/HH-SEC/water", {}),
        ("GET", "/api/v1/alerts", "analyst", "/api/v1/alerts", {}),
        ("GET", "/api/v1/alerts/{alert_id}/history", "analyst", f"/api/v1/alerts/{w['alert']}/history", {}),
        ("POST", "/api/v1/alerts/{alert_id}/acknowledge", "analyst", f"/api/v1/alerts/{w['alert']}/acknowledge", {}),
        ("POST", "/api/v1/alerts/{alert_id}/assign", "analyst", f"/api/v1/alerts/{w['alert']}/assign", {"json": {"to": "field-2"}}),
        ("POST", "/api/v1/alerts/{alert_id}/resolve", "analyst", f"/api/v1/alerts/{w['alert']}/resolve", {"json": {"note": "visited"}}),
        ("GET", "/api/v1/households/{ref}", "analyst", "/api/v1/households/HH-SEC", {}),
        ("GET", "/api/v1/usage", "analyst", "/api/v1/usage", {}),
        ("GET", "/api/v1/cohorts", "analyst", "/api/v1/cohorts", {}),
        ("GET", "/api/v1/kpis", "analyst", "/api/v1/kpis", {}),
        ("GET", "/api/v1/kpis.{fmt}", "analyst", "/api/v1/kpis.csv", {}),
        ("GET", "/api/v1/exports/usage.{fmt}", "analyst", "/api/v1/exports/usage.csv", {}),
        ("GET", "/api/v1/anomalies", "analyst", "/api/v1/anomalies", {}),
        ("GET", "/api/v1/jobs", "analyst", "/api/v1/jobs", {}),
        ("GET", "/api/v1/reports/weekly", "analyst", "/api/v1/reports/weekly", {}),
        ("GET", "/api/v1/reports/weekly/{report_id}.{fmt}", "analyst", f"/api/v1/reports/weekly/{w['report']}.html", {}),
        ("GET", "/api/v1/councils", "officer", "/api/v1/councils", {}),
        ("POST", "/api/v1/councils", "officer", "/api/v1/councils", {"json": {"gss_code": "E06000099", "name": "New Council"}}),
        ("GET", "/api/v1/councils/{code}", "officer", "/api/v1/councils/E06000002", {}),
        ("PATCH", "/api/v1/councils/{code}", "officer", "/api/v1/councils/E06000002", {"json": {"region": "North East"}}),
        ("GET", "/api/v1/reference-data", "officer", "/api/v1/reference-data", {}),
        ("GET", "/api/v1/fund-rounds", "officer", "/api/v1/fund-rounds", {}),
        ("POST", "/api/v1/fund-rounds", "officer", "/api/v1/fund-rounds", {"json": {"code": f"R{u}", "name": "Round"}}),
        ("GET", "/api/v1/guidance-resources", "officer", "/api/v1/guidance-resources", {}),
        ("POST", "/api/v1/guidance-resources", "officer", "/api/v1/guidance-resources", {"json": {"title": "G", "url": "https://example.org/g"}}),
        ("GET", "/api/v1/workshops", "officer", "/api/v1/workshops", {}),
        ("POST", "/api/v1/workshops", "officer", "/api/v1/workshops", {"json": workshop_body()}),
        ("GET", "/api/v1/workshops/{workshop_id}", "officer", f"/api/v1/workshops/{w['workshop']}", {}),
        ("PATCH", "/api/v1/workshops/{workshop_id}", "officer", f"/api/v1/workshops/{w['workshop']}", {"json": {"venue": "Hall"}}),
        ("GET", "/api/v1/workshops/{workshop_id}/registrations", "officer", f"/api/v1/workshops/{w['workshop']}/registrations", {}),
        ("POST", "/api/v1/workshops/{workshop_id}/registrations", "officer", f"/api/v1/workshops/{w['workshop']}/registrations", {"json": person(2)}),
        ("GET", "/api/v1/registrations/{registration_id}", "officer", f"/api/v1/registrations/{w['registration']}", {}),
        ("PATCH", "/api/v1/registrations/{registration_id}", "officer", f"/api/v1/registrations/{w['registration']}", {"json": {"status": "attended"}}),
        ("POST", "/api/v1/workshops/{workshop_id}/attendance-import", "officer", f"/api/v1/workshops/{w['workshop']}/attendance-import", {"files": {"file": ("s.csv", csv_sheet)}}),
        ("POST", "/api/v1/people/erasure", "officer", "/api/v1/people/erasure", {"json": {"email": "nobody@example.org"}}),
        ("POST", "/api/v1/speakers/erasure", "officer", "/api/v1/speakers/erasure", {"json": {"name": "Nobody At All"}}),
        ("POST", "/api/v1/households/{ref}/erasure", "admin", "/api/v1/households/HH-GONE/erasure", {}),
        ("GET", "/api/v1/bids", "officer", "/api/v1/bids", {}),
        ("POST", "/api/v1/fund-rounds/{code}/award-import", "officer", "/api/v1/fund-rounds/2012/award-import", {"files": {"file": ("a.csv", b"Council,Scheme,Amount\nLeeds City Council,Weekly,100\n")}}),
        ("POST", "/api/v1/bids", "officer", "/api/v1/bids", {"json": {"council_code": "E06000003", "round_code": "2012", "status": "intending"}}),
        ("GET", "/api/v1/bids/{bid_id}", "officer", f"/api/v1/bids/{w['bid']}", {}),
        ("PATCH", "/api/v1/bids/{bid_id}", "officer", f"/api/v1/bids/{w['bid']}", {"json": {"notes": "n"}}),
        ("GET", "/api/v1/audit", "officer", "/api/v1/audit", {}),
        ("GET", "/api/v1/reports/take-up", "officer", "/api/v1/reports/take-up", {}),
        ("GET", "/api/v1/reports/take-up.csv", "officer", "/api/v1/reports/take-up.csv", {}),
        ("GET", "/api/v1/reports/take-up.xlsx", "officer", "/api/v1/reports/take-up.xlsx", {}),
        ("GET", "/api/v1/users", "admin", "/api/v1/users", {}),
        ("POST", "/api/v1/users", "admin", "/api/v1/users", {"json": {"username": f"new-{u}", "role": "analyst", "password": "a long enough password"}}),
        ("POST", "/api/v1/users/{username}/revoke", "admin", f"/api/v1/users/{w['victim']}/revoke", {}),
        ("POST", "/api/v1/tokens", "admin", "/api/v1/tokens", {"json": {"username": w["victim_2"], "scope": "read", "days": 1}}),
        ("DELETE", "/api/v1/tokens/{token_id}", "admin", f"/api/v1/tokens/{w['token']}", {}),
        ("GET", "/api/v1/devices", "admin", "/api/v1/devices", {}),
        ("POST", "/api/v1/devices", "admin", "/api/v1/devices", {"json": {"device_id": f"SEC-{u.upper()}", "household": f"HH-{u}"}}),
        ("POST", "/api/v1/devices/{device_id}/password", "admin", "/api/v1/devices/SEC-1/password", {}),
        ("POST", "/api/v1/devices/{device_id}/decommission", "admin", "/api/v1/devices/SEC-1/decommission", {}),
    ]  # fmt: skip


@pytest.fixture
def world(bids_db: Conn, db: Conn, api: TestClient) -> dict[str, Any]:
    """One of everything the operations act on."""
    add_devices(db, [Device("SEC-1", "HH-SEC"), Device("SEC-GONE", "HH-GONE")])
    past = datetime.now(UTC) - timedelta(days=1)
    wid = api.post(
        "/api/v1/workshops",
        json=workshop_body(
            starts_at=past.isoformat(), ends_at=(past + timedelta(hours=2)).isoformat()
        ),
    ).json()["id"]
    rid = api.post(f"/api/v1/workshops/{wid}/registrations", json=person(1)).json()["id"]
    api.post("/api/v1/fund-rounds", json={"code": "2012", "name": "Weekly collection support"})
    bid = api.post("/api/v1/bids", json={"council_code": "E06000002", "round_code": "2012", "status": "submitted"}).json()["id"]  # fmt: skip
    report = store_report(db, date(2026, 11, 16), date(2026, 11, 23), Settings())
    u = uuid.uuid4().hex[:8]
    auth.add_user(db, f"victim-{u}", "analyst", "a long enough password")
    auth.add_user(db, f"victim2-{u}", "analyst", "a long enough password")
    token_id, _ = auth.create_token(db, f"victim2-{u}")
    alert = db.execute(
        "INSERT INTO alerts (kind, device_id, household_ref, state, detail, first_found,"
        " last_found, opened_at) VALUES ('leak', 'SEC-1', 'HH-SEC', 'open', '1 leak', now(),"
        " now(), now()) RETURNING id"
    ).fetchone()
    db.commit()
    assert alert is not None
    return {"workshop": wid, "registration": rid, "bid": bid, "report": report,
            "victim": f"victim-{u}", "victim_2": f"victim2-{u}", "token": token_id,
            "alert": alert[0]}  # fmt: skip


@pytest.fixture
def app_client(db_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as c:
        yield c


def test_the_table_covers_every_operation(db_url: str) -> None:
    ops = {(m.upper(), p) for p, item in create_app().openapi()["paths"].items() for m in item}
    listed = {(m, p) for m, p, *_ in table(dict.fromkeys(WORLD_KEYS, 1))}
    assert ops - PUBLIC == listed


@pytest.mark.parametrize("index", range(len(table(dict.fromkeys(WORLD_KEYS, 1)))))
def test_each_operation_checks_who_calls(
    index: int, world: dict[str, Any], app_client: TestClient, tokens: dict[str, str]
) -> None:
    method, op, role, path, kwargs = table(world)[index]
    r = app_client.request(method, path, **kwargs)
    assert r.status_code == 401, (op, r.text)
    assert r.headers["www-authenticate"] == "Bearer"
    r = app_client.request(method, path, headers=bearer("wp_not-a-real-token"), **kwargs)
    assert r.status_code == 401, (op, r.text)
    if role != "any":  # (who-am-I answers every signed-in role)
        r = app_client.request(method, path, headers=bearer(tokens[WRONG[role]]), **kwargs)
        assert r.status_code == 403, (op, r.text)
        assert "role" in r.json()["detail"]
    if method != "GET":
        r = app_client.request(method, path, headers=bearer(tokens["admin-read"]), **kwargs)
        assert r.status_code == 403, (op, r.text)
        assert "read-only" in r.json()["detail"]
    right = "analyst" if role == "any" else role
    r = app_client.request(method, path, headers=bearer(tokens[right]), **kwargs)
    assert 200 <= r.status_code < 300, (op, r.status_code, r.text)


def test_no_secret_is_stored_in_plaintext(db: Conn, db_url: str, app_client: TestClient) -> None:
    password = f"plain-password-{uuid.uuid4().hex}"
    name = f"scan-{uuid.uuid4().hex[:8]}"
    auth.add_user(db, name, "officer", password)
    _, token = auth.create_token(db, name)
    signed_in = app_client.post("/api/v1/auth/token", data={"username": name, "password": password})
    assert signed_in.status_code == 200
    session_token = signed_in.json()["token"]
    assert (
        app_client.get("/api/v1/auth/me", headers=bearer(session_token)).json()["role"] == "officer"
    )
    assert (
        app_client.post(
            "/api/v1/auth/token", data={"username": name, "password": "wrong"}
        ).status_code
        == 401
    )
    columns = db.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'bytea')"
    ).fetchall()
    assert len(columns) > 20
    for schema, tbl, col in columns:
        for secret in (password, token, session_token):
            hit = db.execute(
                psycopg.sql.SQL("SELECT count(*) FROM {}.{} WHERE {}::text LIKE %s").format(
                    psycopg.sql.Identifier(schema),
                    psycopg.sql.Identifier(tbl),
                    psycopg.sql.Identifier(col),
                ),
                (f"%{secret[5:30]}%",),
            ).fetchone()
            assert hit == (0,), (tbl, col)


ATTACKS = ["' OR '1'='1", "1; DROP TABLE readings; --", "../../../../etc/passwd",
           "..%2F..%2Fetc%2Fpasswd", "\\x00", "$(reboot)", "<script>alert(1)</script>"]  # fmt: skip


def _snapshot(db: Conn) -> list[tuple[Any, ...]]:
    tables = [r[0] for r in db.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'api_tokens' ORDER BY 1"
    )]  # fmt: skip
    return [
        (
            t,
            db.execute(
                psycopg.sql.SQL("SELECT count(*) FROM {}").format(psycopg.sql.Identifier(t))
            ).fetchone(),
        )
        for t in tables
    ]


def test_injection_and_traversal_attempts_get_a_4xx_and_change_nothing(
    world: dict[str, Any], app_client: TestClient, tokens: dict[str, str], db: Conn
) -> None:
    spec = create_app().openapi()["paths"]
    before = _snapshot(db)
    tried = 0
    for path, item in spec.items():
        for method, op in item.items():
            if method != "get":
                continue
            params = [p for p in op.get("parameters", []) if p["schema"].get("type") == "string"
                      or any(s.get("type") == "string" for s in p["schema"].get("anyOf", []))]  # fmt: skip
            for p in params:
                for attack in ATTACKS:
                    url = path
                    query: dict[str, str] = {}
                    for other in op.get("parameters", []):
                        if other["in"] == "path":
                            value = (
                                attack
                                if other is p
                                else {"ref": "HH-SEC", "code": "E06000002", "fmt": "csv"}.get(
                                    other["name"], "1"
                                )
                            )
                            url = url.replace("{" + other["name"] + "}", quote(value, safe=""))
                    if p["in"] == "query":
                        query[p["name"]] = attack
                    r = app_client.get(url, params=query, headers=bearer(tokens["admin"]))
                    tried += 1
                    assert r.status_code < 500, (path, p["name"], attack, r.text)
                    if r.status_code >= 400:
                        assert r.json().get("detail"), (path, p["name"])
    # and the string fields of the bodies officers send
    for attack in ATTACKS:
        for body in (person(9) | {"person_name": attack}, person(9) | {"council_code": attack}):
            r = app_client.post(f"/api/v1/workshops/{world['workshop']}/registrations", json=body,
                                headers=bearer(tokens["officer"]))  # fmt: skip
            tried += 1
            assert r.status_code < 500
            if r.status_code == 201:  # a name is free text: stored as given, as text
                assert r.json()["person_name"] == attack
                app_client.patch(f"/api/v1/registrations/{r.json()['id']}", json={"status": "cancelled"},
                                 headers=bearer(tokens["officer"]))  # fmt: skip
    assert tried > 100
    after = _snapshot(db)
    changed = {t for (t, a), (_, b) in zip(before, after, strict=True) if a != b}
    # only the free-text names above went in (and were cancelled), with their audit rows
    assert changed <= {"registrations", "audit_log"}
    # "DROP TABLE" went nowhere: every table is still there
    assert {t for t, _ in after} == {t for t, _ in before} >= {"readings", "registrations", "users"}


def test_device_logins_are_issued_and_revoked_on_the_broker(
    db: Conn, app_client: TestClient, tokens: dict[str, str], settings: Settings
) -> None:
    from core.errors import PublishError
    from simulator.device_sink import DeviceSinks

    if settings.mqtt_url:
        pytest.skip("device logins are issued on the local broker")
    dev = f"SEC-{uuid.uuid4().hex[:8].upper()}"
    r = app_client.post("/api/v1/devices", json={"device_id": dev, "household": f"HH-{dev}"},
                        headers=bearer(tokens["admin"]))  # fmt: skip
    assert r.status_code == 201, r.text
    secret = r.json()["mqtt_password"]
    assert len(secret) >= 24
    sinks = DeviceSinks("127.0.0.1", settings.mqtt_port, "wastepilot/v1", {dev: secret}).connect(
        timeout=10
    )
    sinks.close(timeout=5)
    r = app_client.post(f"/api/v1/devices/{dev}/decommission", headers=bearer(tokens["admin"]))
    assert r.status_code == 200
    with pytest.raises(PublishError, match="could not connect"):
        DeviceSinks("127.0.0.1", settings.mqtt_port, "wastepilot/v1", {dev: secret}).connect(
            timeout=3
        )
    assert db.execute(
        "SELECT decommissioned_at IS NOT NULL FROM devices WHERE id = %s", (dev,)
    ).fetchone() == (True,)
    # the secret is nowhere in the database
    assert db.execute(
        "SELECT count(*) FROM devices WHERE id || model LIKE %s", (f"%{secret}%",)
    ).fetchone() == (0,)


def test_web_sessions_are_cookies_with_csrf_protection(
    db: Conn, bids_db: Conn, app_client: TestClient
) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    auth.add_user(db, name, "officer", "a long enough password")
    r = app_client.post(
        "/api/v1/auth/session", data={"username": name, "password": "a long enough password"}
    )
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    csrf = r.json()["csrf_token"]
    assert app_client.get("/api/v1/auth/me").json()["username"] == name  # the cookie signs in
    # a write with the cookie alone (what a forged cross-site form would send) is refused
    r = app_client.post("/api/v1/workshops", json=workshop_body())
    assert r.status_code == 403
    assert "X-CSRF-Token" in r.json()["detail"]
    assert (
        app_client.post(
            "/api/v1/workshops", json=workshop_body(), headers={"X-CSRF-Token": "0" * 40}
        ).status_code
        == 403
    )
    r = app_client.post("/api/v1/workshops", json=workshop_body(), headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    assert api_actor(db, r.json()["id"]) == name
    old = app_client.cookies.get("wp_session")
    assert old
    assert app_client.delete("/api/v1/auth/session").status_code == 200
    assert "wp_session" not in app_client.cookies
    # signing out revokes the session: the old cookie, replayed, no longer works
    app_client.cookies.set("wp_session", old)
    assert app_client.get("/api/v1/auth/me").status_code == 401


def api_actor(db: Conn, workshop_id: int) -> str:
    row = db.execute(
        "SELECT actor FROM audit_log WHERE table_name = 'workshops' AND row_key = %s ORDER BY id LIMIT 1",
        (str(workshop_id),),
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_hash_with_older_parameters_is_upgraded_at_the_next_sign_in(
    db: Conn, bids_db: Conn, app_client: TestClient
) -> None:
    """A password hashed before today's argon2id parameters (here: t=1, m=8 MiB) is re-hashed
    with today's when its owner signs in successfully; a wrong password changes nothing."""
    from argon2 import PasswordHasher

    name, password = f"old-{uuid.uuid4().hex[:8]}", "a long enough password"
    user_id = auth.add_user(db, name, "officer", password)
    old = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(password)
    db.execute("UPDATE users SET password_hash = %s WHERE id = %s", (old, user_id))

    def stored() -> str:
        row = db.execute("SELECT password_hash FROM users WHERE id = %s", (user_id,)).fetchone()
        return str(row[0]) if row else ""

    wrong = app_client.post("/api/v1/auth/session", data={"username": name, "password": "nope" * 4})
    assert wrong.status_code == 401 and stored() == old
    ok = app_client.post("/api/v1/auth/session", data={"username": name, "password": password})
    assert ok.status_code == 200
    new = stored()
    assert new != old and "$m=19456,t=2,p=1$" in new
    again = app_client.post("/api/v1/auth/session", data={"username": name, "password": password})
    assert again.status_code == 200 and stored() == new  # current parameters: left alone


def test_passwords_are_checked_on_a_thread_at_the_lowest_cpu_priority(
    db: Conn, bids_db: Conn, app_client: TestClient
) -> None:
    """A flood of sign-ins competes for the CPU below everything else: argon2 runs on its own
    thread at niceness 19 (read from /proc), not on the shared worker threads."""
    import threading

    name = f"nice-{uuid.uuid4().hex[:8]}"
    auth.add_user(db, name, "officer", "a long enough password")
    r = app_client.post("/api/v1/auth/session", data={"username": name, "password": "wrong" * 4})
    assert r.status_code == 401  # a check ran
    hashers = [t for t in threading.enumerate() if t.name.startswith("argon2")]
    assert len(hashers) == 1
    stat = Path(f"/proc/self/task/{hashers[0].native_id}/stat").read_text()
    nice = int(stat.rsplit(")", 1)[1].split()[16])  # field 19 of proc(5), after "comm)"
    assert nice == 19
    mine = Path(f"/proc/self/task/{threading.get_native_id()}/stat").read_text()
    assert int(mine.rsplit(")", 1)[1].split()[16]) == 0  # the rest of the process is not


def test_a_sign_in_while_the_password_checks_queue_is_full_costs_nothing(
    db: Conn, bids_db: Conn, app_client: TestClient
) -> None:
    """With HASH_QUEUE_MAX sign-ins already waiting for a check, another is answered 503 with
    Retry-After before its body is read: no attempt is written, no password checked."""
    import asyncio

    from api import signin

    state = app_client.app.state  # type: ignore[attr-defined]
    real = state.hashing
    state.hashing, state.hash_waiting = asyncio.Semaphore(0), signin.HASH_QUEUE_MAX

    def checks() -> float:  # the counter's total, as /metrics reports it
        return sum(
            m.value for f in state.password_checks.collect() for m in f.samples
            if m.name.endswith("_total")
        )  # fmt: skip

    before = checks()
    try:
        r = app_client.post(
            "/api/v1/auth/session", data={"username": "someone", "password": "x" * 12}
        )
    finally:
        state.hashing, state.hash_waiting = real, 0
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert "busy" in r.json()["detail"]
    assert db.execute("SELECT count(*) FROM sign_in_attempts").fetchone() == (0,)
    assert checks() == before
    # and with the queue free again, a sign-in is checked as before
    ok = app_client.post("/api/v1/auth/session", data={"username": "someone", "password": "x" * 12})
    assert ok.status_code == 401


def test_the_sign_in_page_says_when_signing_in_is_busy(
    db: Conn, bids_db: Conn, app_client: TestClient
) -> None:
    """The page's form, while the queue of password checks is full: the form again, 503 with
    Retry-After and a sentence a person can act on (not an error page), no attempt written."""
    import asyncio

    from api import signin

    page = app_client.get("/sign-in")
    assert page.status_code == 200
    token = app_client.cookies.get("wp_signin")
    assert token
    state = app_client.app.state  # type: ignore[attr-defined]
    real = state.hashing
    state.hashing, state.hash_waiting = asyncio.Semaphore(0), signin.HASH_QUEUE_MAX
    try:
        r = app_client.post(
            "/sign-in",
            data={"username": "someone", "password": "x" * 12, "form_token": token},
        )
    finally:
        state.hashing, state.hash_waiting = real, 0
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert "Signing in is busy just now: try again in a few seconds" in r.text
    assert 'name="password"' in r.text  # the form, to try again
    assert db.execute("SELECT count(*) FROM sign_in_attempts").fetchone() == (0,)
