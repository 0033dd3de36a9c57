"""Hardening (issue 17), against the real API over HTTP, the real database and broker: bounded
work for any input, sign-in throttling, the password policy, admin actions audited, security
headers."""

from __future__ import annotations

import contextlib
import io
import socket
import statistics
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openpyxl
import psycopg
import pytest

from api import signin
from core import auth
from core.registry import Device, add_devices
from tests.helpers import bearer, workshop_body

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture(autouse=True)
def _fresh_sign_in_counters() -> Iterator[None]:
    signin.forget_failures()
    yield
    signin.forget_failures()


# --- sheets ---------------------------------------------------------------------------------


def good_workbook(rows: int = 3) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "Email", "Council", "Attended"])
    for i in range(rows):
        sheet.append([f"Person {i}", f"p{i}@example.org", "Leeds", "yes"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    """The workbook with some of its parts replaced (or added)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename not in replace:
                dst.writestr(item, src.read(item.filename), zipfile.ZIP_DEFLATED)
        for name, body in replace.items():
            dst.writestr(name, body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def sheet_xml(rows: str, dimension: str = "A1:D2") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>'
    ).encode()


def inline_row(n: int, cells: list[str]) -> str:
    body = "".join(f'<c t="inlineStr"><is><t>{c}</t></is></c>' for c in cells)
    return f'<row r="{n}">{body}</row>'


SHEET = "xl/worksheets/sheet1.xml"
HEADER = inline_row(1, ["Name", "Email", "Council", "Attended"])


def bombs() -> dict[str, bytes]:
    base = good_workbook()
    strings = (
        '<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
        'spreadsheetml/2006/main">' + "<si><t>" + "x" * 1000 + "</t></si>" * 1 + "</sst>"
    )
    big_strings = strings.replace("</sst>", "<si><t>" + "y" * 60_000_000 + "</t></si></sst>")
    many_cells = "".join(
        inline_row(n, ["Ann", "a@example.org", "Leeds", "yes"]) for n in range(2, 300_002)
    )
    return {
        # 17 billion cells declared, one row numbered 1,048,576
        "declared size": rezip(
            base,
            {
                SHEET: sheet_xml(
                    HEADER + inline_row(1048576, ["A", "a@example.org", "Leeds", "yes"]),
                    dimension="A1:XFD1048576",
                )
            },
        ),
        # shared strings that unpack to 60 MB
        "shared strings": rezip(base, {"xl/sharedStrings.xml": big_strings.encode()}),
        # 300,000 rows of cells: small packed, large unpacked
        "compressed cells": rezip(base, {SHEET: sheet_xml(HEADER + many_cells)}),
        "malformed xml": rezip(base, {SHEET: b"<worksheet><sheetData><row r='1'><c"}),
        "not a zip": b"PK\x03\x04" + b"\x00" * 100,
    }


def rss_kb(pid: int) -> int:
    """A process's resident memory now, with its children's (the sheet readers)."""
    total = 0
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for c in child.read_text().split():
            with contextlib.suppress(OSError, AssertionError):
                total += rss_kb(int(c))
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return total + int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def workshop(served: str, tokens: dict[str, str]) -> int:
    r = httpx2.post(
        f"{served}/api/v1/workshops", json=workshop_body(), headers=bearer(tokens["officer"])
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_sheet_bombs_are_refused_fast_while_others_are_served(
    api_process: tuple[str, int], tokens: dict[str, str]
) -> None:
    served, pid = api_process
    auth_h = bearer(tokens["officer"])
    r = httpx2.post(f"{served}/api/v1/workshops", json=workshop_body(), headers=auth_h)
    workshop = int(r.json()["id"])
    url = f"{served}/api/v1/workshops/{workshop}/attendance-import"
    ok = httpx2.post(url, files={"file": ("a.xlsx", good_workbook())}, headers=auth_h, timeout=30)
    assert ok.status_code == 200 and ok.json()["counts"]["new"] == 3, ok.text

    latencies: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = httpx2.get(f"{served}/api/v1/workshops", headers=auth_h, timeout=10)
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 200

    results: dict[str, tuple[int, float, str]] = {}

    def post(name: str, data: bytes) -> None:
        t0 = time.perf_counter()
        r = httpx2.post(url, files={"file": (f"{name}.xlsx", data)}, headers=auth_h, timeout=30)
        results[name] = (r.status_code, time.perf_counter() - t0, r.json().get("detail", ""))

    payloads = bombs()
    rss_before = rss_kb(pid)
    t = threading.Thread(target=reader)
    t.start()
    posts = [threading.Thread(target=post, args=item) for item in payloads.items()]
    for p in posts:
        p.start()
    for p in posts:
        p.join(60)
    stop.set()
    t.join(10)
    for name, (code, seconds, detail) in results.items():
        assert 400 <= code < 500, (name, code, detail)
        assert seconds < 2.0, (name, seconds)
        assert detail, name  # a message that says why
    assert set(results) == set(payloads)
    assert results["malformed xml"][0] == 422
    assert (rss_kb(pid) - rss_before) < 100 * 1024, "the API process grew by 100 MB or more"
    assert len(latencies) >= 5
    p95 = statistics.quantiles(latencies, n=20)[18]
    assert p95 < 0.2, f"authenticated GETs p95 {p95 * 1000:.0f} ms while bombs were read"


def test_a_csv_in_utf16_or_with_a_nul_byte_is_read_row_by_row(
    served: str, tokens: dict[str, str], workshop: int
) -> None:
    url = f"{served}/api/v1/workshops/{workshop}/attendance-import"
    text = "Name,Email,Council,Attended\nZoë Ng,zoe@example.org,Leeds,yes\n"
    for data in (
        text.encode("utf-16"),
        text.encode("utf-8-sig"),
        text.encode("cp1252"),
        text.replace("Zoë", "Zo\x00ë").encode(),
    ):
        r = httpx2.post(url, files={"file": ("s.csv", data)}, headers=bearer(tokens["officer"]))
        assert r.status_code == 200, r.text
        assert [row["name"] for row in r.json()["rows"]] == ["Zoë Ng"]


def test_imported_fields_have_the_apis_length_limits(
    served: str, tokens: dict[str, str], workshop: int
) -> None:
    long_name = "N" * 100_000
    data = f"Name,Email,Council,Attended\n{long_name},a@example.org,Leeds,yes\n".encode()
    r = httpx2.post(
        f"{served}/api/v1/workshops/{workshop}/attendance-import",
        files={"file": ("s.csv", data)},
        headers=bearer(tokens["officer"]),
    )
    assert r.status_code == 200, r.text
    [row] = r.json()["rows"]
    assert row["outcome"] == "error"
    assert ("name", "longer than 200 characters") in [
        (p["field"], p["message"]) for p in row["problems"]
    ]
    assert len(r.content) < 5_000  # the 100,000 characters are not echoed back


# --- requests -------------------------------------------------------------------------------


def raw_request(base: str, head: str) -> tuple[bytes, float]:
    """Send only a request's head (its body never follows); the answer and how long it took."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    assert host and port
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(head.encode())
        answer = s.recv(65536)
    return answer, time.perf_counter() - t0


def test_an_anonymous_body_is_refused_before_it_is_read(served: str) -> None:
    for path in ("/api/v1/workshops", "/api/v1/workshops/1/attendance-import"):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {20 * 1024 * 1024}\r\n\r\n"
        )
        answer, seconds = raw_request(served, head)
        # refused on its declared size (413) or for want of a credential (401), never read
        assert answer.startswith((b"HTTP/1.1 401", b"HTTP/1.1 413")), answer[:200]
        assert seconds < 1.0
    head = (
        "POST /api/v1/workshops HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: application/json\r\n\r\n"
    )
    answer, _ = raw_request(served, head)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_a_body_above_the_routes_limit_is_refused_before_it_is_read(
    served: str, tokens: dict[str, str]
) -> None:
    token = tokens["officer"]
    for path, size in (
        ("/api/v1/workshops", 2 * 1024 * 1024),
        ("/api/v1/workshops/1/attendance-import", 6 * 1024 * 1024),
    ):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        )
        answer, _ = raw_request(served, head)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # a body that streams past the limit without declaring it
    big = b"x" * (2 * 1024 * 1024)
    r = httpx2.post(
        f"{served}/api/v1/workshops",
        content=iter([big[:1024], big[1024:]]),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text


def test_made_up_methods_do_not_add_metric_series(served: str) -> None:
    def series() -> int:
        text = httpx2.get(f"{served}/metrics/").text
        return sum(1 for line in text.splitlines() if line.startswith("wastepilot_api_"))

    before = series()
    with httpx2.Client() as c:
        for i in range(1000):
            c.request(f"X{uuid.uuid4().hex[:12].upper()}{i}", f"{served}/api/v1/workshops")
    after = series()
    assert after - before < 40, (before, after)


def test_every_answer_carries_the_security_headers(served: str, tokens: dict[str, str]) -> None:
    for path, headers in (
        ("/sign-in", {}),
        ("/api/v1/workshops", bearer(tokens["officer"])),
        ("/docs", {}),
        ("/no/such/page", {}),
    ):
        r = httpx2.get(f"{served}{path}", headers=headers)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert "script-src 'self'" in r.headers["content-security-policy"], path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "same-origin", path
        assert r.headers["cache-control"] == "no-store", path
    docs = httpx2.get(f"{served}/docs").text
    assert "cdn" not in docs.lower() and "<script>" not in docs
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/docs.js"):
        assert httpx2.get(f"{served}{asset}").status_code == 200, asset


# --- sign-in --------------------------------------------------------------------------------


def test_the_eleventh_wrong_password_in_a_minute_is_throttled(db: Conn, served: str) -> None:
    name = f"throttle-{uuid.uuid4().hex[:6]}"
    password = "a long enough password"
    auth.add_user(db, name, "analyst", password)
    url = f"{served}/api/v1/auth/token"
    codes = [httpx2.post(url, data={"username": name, "password": "wrong"}).status_code
             for _ in range(10)]  # fmt: skip
    assert codes == [401] * 10
    r = httpx2.post(url, data={"username": name, "password": password})
    assert r.status_code == 429, r.text  # even the right one, for the rest of the minute
    assert int(r.headers["retry-after"]) >= 1


def test_sign_in_floods_do_not_slow_signed_in_users(
    db: Conn, served: str, tokens: dict[str, str]
) -> None:
    stop = threading.Event()

    def flood() -> None:
        with httpx2.Client() as c:
            while not stop.is_set():
                name = f"nobody-{uuid.uuid4().hex[:8]}"
                c.post(f"{served}/api/v1/auth/token", data={"username": name, "password": "x" * 20})

    floods = [threading.Thread(target=flood) for _ in range(16)]
    for t in floods:
        t.start()
    latencies = []
    try:
        time.sleep(0.5)
        with httpx2.Client(headers=bearer(tokens["officer"])) as c:
            for _ in range(40):
                t0 = time.perf_counter()
                assert c.get(f"{served}/api/v1/workshops").status_code == 200
                latencies.append(time.perf_counter() - t0)
    finally:
        stop.set()
        for t in floods:
            t.join(10)
    p95 = statistics.quantiles(latencies, n=20)[18]
    assert p95 < 0.2, f"p95 {p95 * 1000:.0f} ms"


def test_a_cross_site_sign_in_is_refused(db: Conn, served: str) -> None:
    name = f"csrf-{uuid.uuid4().hex[:6]}"
    auth.add_user(db, name, "analyst", "a long enough password")
    for path in ("/api/v1/auth/session", "/api/v1/auth/token"):
        r = httpx2.post(
            f"{served}{path}",
            data={"username": name, "password": "a long enough password"},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403, (path, r.text)
    # the page's form without its own token (a form posted from elsewhere)
    r = httpx2.post(
        f"{served}/sign-in", data={"username": name, "password": "a long enough password"}
    )
    assert r.status_code == 400 and "wp_session" not in r.headers.get("set-cookie", "")
    # sign-out is a POST with the session's token; a GET changes nothing
    assert httpx2.get(f"{served}/sign-out").status_code == 405


@pytest.mark.parametrize(
    "password", ["            ", "aaaaaaaaaaaa", "password1234", "wastepilot12", "Password1234"]
)
def test_weak_passwords_are_refused_with_a_reason(
    served: str, tokens: dict[str, str], password: str
) -> None:
    r = httpx2.post(
        f"{served}/api/v1/users",
        json={"username": f"weak-{uuid.uuid4().hex[:6]}", "role": "admin", "password": password},
        headers=bearer(tokens["admin"]),
    )
    assert r.status_code == 422, r.text
    assert "password" in r.text


def test_the_last_admin_cannot_be_revoked(db: Conn, served: str, tokens: dict[str, str]) -> None:
    admins = [
        str(r[0])
        for r in db.execute(
            "SELECT username FROM users WHERE role = 'admin' AND revoked_at IS NULL"
        )
    ]
    head = bearer(tokens["admin"])
    others = [a for a in admins if a != "test-admin"]
    try:
        db.execute("UPDATE users SET revoked_at = now() WHERE username = ANY(%s)", (others,))
        r = httpx2.post(f"{served}/api/v1/users/test-admin/revoke", headers=head)
        assert r.status_code == 409 and "last admin" in r.json()["detail"], r.text
        assert db.execute(
            "SELECT revoked_at IS NULL FROM users WHERE username = 'test-admin'"
        ).fetchone() == (True,)
    finally:
        db.execute("UPDATE users SET revoked_at = NULL WHERE username = ANY(%s)", (others,))


def test_every_admin_action_leaves_an_audit_row(
    db: Conn, served: str, tokens: dict[str, str]
) -> None:
    head = bearer(tokens["admin"])
    u = uuid.uuid4().hex[:6]
    start = db.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()
    assert start is not None
    add_devices(db, [Device(f"AUD-{u.upper()}", f"HH-AUD-{u}")])

    def ok(r: httpx2.Response) -> dict[str, Any]:
        assert 200 <= r.status_code < 300, r.text
        out: dict[str, Any] = r.json()
        return out

    ok(httpx2.post(f"{served}/api/v1/users", headers=head,
                   json={"username": f"aud-{u}", "role": "analyst",
                         "password": "a long enough password"}))  # fmt: skip
    token = ok(httpx2.post(f"{served}/api/v1/tokens", headers=head,
                           json={"username": f"aud-{u}", "scope": "read", "days": 1}))  # fmt: skip
    ok(httpx2.delete(f"{served}/api/v1/tokens/{token['id']}", headers=head))
    ok(httpx2.post(f"{served}/api/v1/users/aud-{u}/revoke", headers=head))
    ok(httpx2.post(f"{served}/api/v1/devices/AUD-{u.upper()}/decommission", headers=head))
    rows = db.execute(
        "SELECT actor, table_name, action, before::text, after::text FROM audit_log "
        "WHERE id > %s ORDER BY id",
        start,
    ).fetchall()
    done = {(t, a) for actor, t, a, *_ in rows if actor == "test-admin"}
    assert {("users", "insert"), ("api_tokens", "insert"), ("api_tokens", "update"),
            ("users", "update"), ("devices", "update")} <= done, rows  # fmt: skip
    text = " ".join(f"{b} {a}" for *_, b, a in rows)
    assert "argon2" not in text and "token_hash" not in text and "HH-AUD" not in text


# --- a check the tests above rely on ----------------------------------------------------------


def test_the_bombs_are_what_they_claim() -> None:
    """The workbooks above are what their names say (so the refusals test something)."""
    b = bombs()
    sizes: Callable[[bytes], dict[str, int]] = lambda d: {  # noqa: E731
        i.filename: i.file_size for i in zipfile.ZipFile(io.BytesIO(d)).infolist()
    }
    assert sizes(b["shared strings"])["xl/sharedStrings.xml"] > 50_000_000
    assert len(b["shared strings"]) < 1_000_000
    assert sizes(b["compressed cells"])[SHEET] > 20 * 1024 * 1024
    assert b'ref="A1:XFD1048576"' in zipfile.ZipFile(io.BytesIO(b["declared size"])).read(SHEET)
