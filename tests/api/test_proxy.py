"""People reach the API and pages through compose's own reverse proxy (deploy/caddy/Caddyfile,
run by Debian's Caddy, the version compose pins) over HTTPS only (issue 27): plain HTTP is
redirected, HSTS is sent, the API's own headers survive, session cookies are Secure, TLS 1.1
is refused, and the sign-in throttle counts the client's real address (not the proxy's, and
not one the client made up)."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509

from api.app import create_app
from api.server import config as server_config
from core import auth
from core.settings import Settings
from tests.helpers import PASSWORD, free_port, wait_for
from tests.wastepilot.test_tls import tls_1_1_client
from wastepilot.localservices import certs, install

pytestmark = pytest.mark.services
ROOT = Path(__file__).resolve().parents[2]
Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def proxy(bids_db: Conn, db_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The API (believing forwarded headers from 127.0.0.1 only) behind Caddy with the compose
    Caddyfile; the proxy's certificate from a private CA made here."""
    import uvicorn

    caddy = install.ensure_caddy(install.Apt())
    site = certs.issue_server(tmp_path / "certs", ["localhost"], stem="site")
    api_sock = socket.socket()
    api_sock.bind(("127.0.0.1", 0))
    api_port = api_sock.getsockname()[1]
    settings = Settings(database_url=db_url, api_trusted_proxies="127.0.0.1")
    server = uvicorn.Server(server_config(create_app(settings), settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [api_sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 15, "the API to start")
    ports = {"http": free_port(), "https": free_port(), "admin": free_port()}
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # Caddy's own data (no ACME here: the certificate is a file)
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PROXY_HTTP_PORT": str(ports["http"]),
        "PROXY_HTTPS_PORT": str(ports["https"]),
        "PROXY_ADMIN": f"localhost:{ports['admin']}",
        "PROXY_SITE": "localhost",
        "PROXY_CERT": str(site.cert),
        "PROXY_KEY": str(site.key),
        "PROXY_API": f"127.0.0.1:{api_port}",
        "PROXY_GRAFANA": f"127.0.0.1:{free_port()}",
    }
    conf = str(ROOT / "deploy/caddy/Caddyfile")
    log = (tmp_path / "caddy.log").open("wb")
    proc = subprocess.Popen(
        [str(caddy), "run", "--config", conf, "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _open(ports["https"]), 30, "the proxy to listen")
        yield {"ports": ports, "ca": site.ca, "env": env, "caddy": caddy, "conf": conf}
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
        server.should_exit = True
        thread.join(10)
        api_sock.close()


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def request(
    p: dict[str, Any], method: str, path: str, *, source: str = "127.0.0.1", body: str = "",
    headers: dict[str, str] | None = None, ctx: ssl.SSLContext | None = None,
) -> http.client.HTTPResponse:  # fmt: skip
    """One HTTPS request to the proxy from ``source`` (a 127.x address of this machine)."""
    ctx = ctx or ssl.create_default_context(cafile=str(p["ca"]))
    conn = http.client.HTTPSConnection(
        "localhost", p["ports"]["https"], context=ctx, source_address=(source, 0), timeout=30
    )
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    conn.request(method, path, body=body or None, headers=hdrs)
    r = conn.getresponse()
    r.read()
    conn.close()
    return r


def test_plain_http_only_redirects_to_https(proxy: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection("localhost", proxy["ports"]["http"], timeout=30)
    conn.request("GET", "/sign-in")
    r = conn.getresponse()
    assert r.status in (301, 308), r.status
    # (to the standard port: in compose the proxy is on 443; here it listens elsewhere)
    assert r.getheader("Location") in (
        "https://localhost/sign-in",
        f"https://localhost:{proxy['ports']['https']}/sign-in",
    )
    assert not r.read()  # nothing but the redirect


def test_pages_over_https_keep_the_apis_headers_and_add_hsts(proxy: dict[str, Any]) -> None:
    r = request(proxy, "GET", "/sign-in")
    assert r.status == 200
    assert r.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
    assert "frame-ancestors 'none'" in (r.getheader("Content-Security-Policy") or "")
    assert r.getheader("X-Frame-Options") == "DENY"
    assert r.getheader("Server") is None


def test_the_session_cookie_is_secure_behind_the_proxy(proxy: dict[str, Any], db: Conn) -> None:
    name = f"px-{uuid.uuid4().hex[:8]}"
    auth.add_user(db, name, "officer", PASSWORD)
    body = f"username={name}&password={PASSWORD.replace(' ', '+')}"
    r = request(proxy, "POST", "/api/v1/auth/session", body=body)
    assert r.status == 200, r.status
    cookie = r.getheader("Set-Cookie") or ""
    assert "wp_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_tls_1_1_and_an_unknown_ca_are_refused(proxy: dict[str, Any], tmp_path: Path) -> None:
    old = tls_1_1_client(proxy["ca"])
    with pytest.raises(ssl.SSLError):
        request(proxy, "GET", "/sign-in", ctx=old)
    stranger = certs.issue_server(tmp_path / "other", ["localhost"])
    with pytest.raises(ssl.SSLCertVerificationError):
        request(proxy, "GET", "/sign-in", ctx=ssl.create_default_context(cafile=str(stranger.ca)))


def test_the_throttle_counts_the_clients_own_address(proxy: dict[str, Any], db: Conn) -> None:
    """A wrong password from 127.0.1.7 through the proxy is counted for 127.0.1.7; one that
    claims to come from 203.0.113.9 in its own X-Forwarded-For is counted for its real
    address all the same."""
    body = "username=nobody-here&password=wrong+wrong+wrong"
    assert (
        request(proxy, "POST", "/api/v1/auth/session", body=body, source="127.0.1.7").status == 401
    )
    forged = {"X-Forwarded-For": "203.0.113.9"}
    r = request(
        proxy, "POST", "/api/v1/auth/session", body=body, source="127.0.1.8", headers=forged
    )
    assert r.status == 401
    keys = [str(k) for (k,) in db.execute("SELECT addr_key FROM sign_in_attempts ORDER BY id")]
    assert keys == ["addr:127.0.1.7", "addr:127.0.1.8"]


def test_a_renewed_certificate_is_served_after_a_reload(proxy: dict[str, Any]) -> None:
    """`caddy reload` (compose: `docker compose exec proxy caddy reload ...`) takes a renewed
    certificate from the same CA; requests go on being answered throughout."""

    def serial() -> int:
        ctx = ssl.create_default_context(cafile=str(proxy["ca"]))
        with (
            socket.create_connection(("127.0.0.1", proxy["ports"]["https"]), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as s,
        ):
            der = s.getpeercert(binary_form=True)

        return x509.load_der_x509_certificate(der or b"").serial_number

    before = serial()
    folder = Path(proxy["env"]["PROXY_CERT"]).parent
    certs.issue_server(folder, ["localhost"], stem="site")
    answered: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            answered.append(request(proxy, "GET", "/sign-in").status)

    t = threading.Thread(target=keep_asking)
    t.start()
    try:
        time.sleep(0.5)
        subprocess.run(
            [str(proxy["caddy"]), "reload", "--config", proxy["conf"], "--adapter", "caddyfile",
             "--address", proxy["env"]["PROXY_ADMIN"], "--force"],
            env=proxy["env"], check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(30)
    assert serial() != before
    assert answered and set(answered) == {200}
