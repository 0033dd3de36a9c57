"""Fixtures for tests against the real services started by `wastepilot services up`.

A session gets a fresh database (`<name>_test`, migrated); each test gets its own topic prefix
under the broker's test root and truncated tables, so tests do not leak into each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from core import clock
from core.migrate import migrate
from core.settings import Settings
from tests.helpers import AWKWARD_INSTANTS
from wastepilot.localstate import TEST_TOPIC_ROOT


@pytest.fixture(params=list(AWKWARD_INSTANTS.values()), ids=list(AWKWARD_INSTANTS))
def awkward_now(request: pytest.FixtureRequest) -> Iterator[datetime]:
    """The test runs once at each awkward instant, with core.clock stopped there."""
    with clock.frozen_at(request.param) as at:
        yield at


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def admin_db_url(settings: Settings) -> str:
    return settings.db_url()


@pytest.fixture(scope="session")
def db_url(admin_db_url: str) -> Iterator[str]:
    """A fresh, migrated test database for the session."""
    name = (urlsplit(admin_db_url).path.lstrip("/") or "wastepilot") + "_test"
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_db(admin_db_url, name)
    migrate(url)
    from api.bids.records import load_reference_councils

    with psycopg.connect(url) as conn:
        load_reference_councils(conn)
    yield url


TABLES = (
    "readings",
    "dead_letters",
    "device_status",
    "devices",
    "households",
    "usage_hourly",
    "usage_daily",
    "device_daily",
    "usage_profile_daily",
    "rollup_watermarks",
    "anomalies",
    "job_runs",
    "weekly_reports",
)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to the test database, with the pilot tables emptied first."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("TRUNCATE {} CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in TABLES)
            )
        )
        yield conn


@pytest.fixture(scope="session")
def tokens(db_url: str) -> dict[str, str]:
    """A user per role in the test database and a bearer token for each; `admin-read` is an
    admin's read-only token."""
    from core import auth

    out: dict[str, str] = {}
    with psycopg.connect(db_url) as conn:
        for role in auth.ROLES:
            auth.add_user(conn, f"test-{role}", role, "correct horse battery staple")
            out[role] = auth.create_token(conn, f"test-{role}", name="tests")[1]
        out["admin-read"] = auth.create_token(conn, "test-admin", scope="read")[1]
    return out


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own, under the broker's test root."""
    return f"{TEST_TOPIC_ROOT}/{uuid.uuid4().hex[:10]}/v1"


@pytest.fixture(scope="session")
def mqtt_test_url(settings: Settings) -> str:
    return settings.mqtt_url_for("test")


@pytest.fixture
def start_worker(
    db: psycopg.Connection[tuple[object, ...]], db_url: str, mqtt_test_url: str, prefix: str
) -> Iterator[object]:
    """Start in-process ingest workers on this test's prefix; they are stopped afterwards."""
    from ingest.validate import Limits
    from ingest.worker import IngestWorker, WorkerConfig
    from tests.helpers import wait_for

    group = f"g{uuid.uuid4().hex[:8]}"
    started: list[IngestWorker] = []

    def start(client_id: str | None = None, **over: object) -> IngestWorker:
        cfg = WorkerConfig(
            db_url=db_url,
            mqtt_url=mqtt_test_url,
            client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
            group=group,
            limits=Limits.from_settings(Settings(), prefix=prefix),
            session_expiry_s=120,
            batch_max_ms=20,
            probe_interval_s=1.0,
        )
        if over:
            from dataclasses import replace

            cfg = replace(cfg, **over)  # type: ignore[arg-type]
        w = IngestWorker(cfg)
        w.start()
        started.append(w)
        wait_for(lambda: w.connected and w.database_ok, 15, "ingest worker to be ready")
        return w

    yield start
    for w in started:
        w.stop(timeout=10)


@pytest.fixture
def spawn_ingest(
    db: psycopg.Connection[tuple[object, ...]],
    db_url: str,
    mqtt_test_url: str,
    prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[object]:
    """Start `wastepilot ingest` processes as deployed (same command, env settings)."""
    import os
    import subprocess
    import sys

    import httpx2

    from tests.helpers import free_port, wait_for

    group = f"g{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []
    logdir = tmp_path_factory.mktemp("ingest-logs")

    def spawn(client_id: str, **env_over: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        env = {
            **os.environ,
            "WASTEPILOT_DATABASE_URL": db_url,
            "WASTEPILOT_MQTT_URL": mqtt_test_url,
            "WASTEPILOT_TOPIC_PREFIX": prefix,
            "WASTEPILOT_INGEST_CLIENT_ID": client_id,
            "WASTEPILOT_INGEST_GROUP": group,
            "WASTEPILOT_INGEST_METRICS_PORT": str(port),
            "WASTEPILOT_INGEST_SESSION_EXPIRY_S": "300",
            "WASTEPILOT_INGEST_RETRY_MAX_S": "2",
            **env_over,
        }
        with (logdir / f"{client_id}-{len(procs)}.log").open("wb") as log:
            p = subprocess.Popen(
                [sys.executable, "-m", "wastepilot", "ingest"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.append(p)

        def ready() -> bool:
            try:
                return httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx2.TransportError:
                return False

        wait_for(ready, 30, f"ingest process {client_id} to be ready")
        return p, port

    yield spawn
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
