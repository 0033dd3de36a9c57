"""Schemathesis fuzzes every API operation from the OpenAPI schema, over real HTTP against the
real database: whatever it sends, the answer is never a 5xx."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from api.server import config as server_config
from bids.demo import seed_demo
from core.settings import Settings
from tests.helpers import bearer

pytestmark = pytest.mark.services

# Revoking people and tokens would sign the other tests out, and device registration needs a
# broker that this app does not manage: those are tested by hand (tests/api/test_security.py).
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).exclude(
    path_regex=r"/revoke$|^/api/v1/tokens/|^/api/v1/devices"
)


@pytest.fixture(scope="module")
def base_url(db_url: str, owner_db_url: str) -> Iterator[str]:
    import uvicorn

    with psycopg.connect(owner_db_url) as conn:
        conn.execute(
            "TRUNCATE registrations, workshop_resources, workshops, guidance_resources, bids, "
            "fund_rounds CASCADE"
        )
        seed_demo(conn)  # so ids, codes and rounds in requests can hit real rows
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    settings = Settings(database_url=db_url)
    server = uvicorn.Server(server_config(create_app(settings), settings, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@schema.parametrize()
@settings(
    # FUZZ_MAX_EXAMPLES=500 for a longer hunt than the test command's
    max_examples=int(os.environ.get("FUZZ_MAX_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors(case: schemathesis.Case, base_url: str, tokens: dict[str, str]) -> None:
    case.call_and_validate(
        base_url=base_url, headers=bearer(tokens["admin"]), checks=[not_a_server_error]
    )
