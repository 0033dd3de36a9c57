"""Fixtures for the bid-support API: an app on the test database, tables emptied per test."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keepers import BIDS
from api.server import config as server_config
from core.settings import Settings
from tests.helpers import bearer

# bid support's records (its keeper's tables), the reference data it keeps on purpose aside
BID_TABLES = tuple(t for t in BIDS.tables if t not in BIDS.kept)


@pytest.fixture
def bids_db(owner_db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection as the owner (the test's own set-up and checks) with the
    bid-support records emptied (the council reference data stays; councils officers added
    are removed; the append-only audit log is kept)."""
    with psycopg.connect(owner_db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(BID_TABLES) + " CASCADE")
        conn.execute("TRUNCATE sign_in_attempts")  # no test's failed sign-ins lock another
        conn.execute("DELETE FROM councils WHERE source = 'officer'")
        yield conn


@pytest.fixture
def api(
    bids_db: psycopg.Connection[tuple[object, ...]], db_url: str, tokens: dict[str, str]
) -> Iterator[TestClient]:
    """The app, called by the test officer."""
    app = create_app(Settings(database_url=db_url, db_pool_max=4))
    with TestClient(app, headers=bearer(tokens["officer"])) as c:
        yield c


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The app with ``settings`` served by uvicorn over real HTTP on a free port, as
    `wastepilot api` serves it; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(create_app(settings), settings)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def served(bids_db: psycopg.Connection[tuple[object, ...]], db_url: str) -> Iterator[str]:
    """The app served by uvicorn over real HTTP on a free port; yields its base URL."""
    with serving(Settings(database_url=db_url)) as url:
        yield url


@pytest.fixture
def api_process(
    bids_db: psycopg.Connection[tuple[object, ...]],
    db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, int]]:
    """`wastepilot api` as deployed, in a process of its own; yields (base URL, its pid)."""
    import os
    import subprocess
    import sys

    import httpx2

    from tests.helpers import free_port, wait_for

    port = free_port()
    log = tmp_path_factory.mktemp("api-logs") / "api.log"
    env = {**os.environ, "WASTEPILOT_DATABASE_URL": db_url, "WASTEPILOT_API_PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wastepilot", "api"], env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx2.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx2.TransportError:
            return False

    try:
        wait_for(up, 30, "`wastepilot api` to answer", state=lambda: log.read_text()[-2000:])
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
