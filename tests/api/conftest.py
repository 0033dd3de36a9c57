"""Fixtures for the bid-support API: an app on the test database, tables emptied per test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.helpers import bearer

BID_TABLES = (
    "registrations",
    "workshop_resources",
    "workshops",
    "guidance_resources",
    "bids",
    "fund_rounds",
)


@pytest.fixture
def bids_db(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection with the bid-support records emptied (the council reference
    data stays; councils officers added are removed; the append-only audit log is kept)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(BID_TABLES) + " CASCADE")
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


@pytest.fixture
def served(bids_db: psycopg.Connection[tuple[object, ...]], db_url: str) -> Iterator[str]:
    """The app served by uvicorn over real HTTP on a free port; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(Settings(database_url=db_url, db_pool_max=8)), log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()
