"""`wastepilot run`: the whole pilot in the foreground, as the README's run command starts it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx2 as httpx
import psycopg
import pytest

pytestmark = pytest.mark.services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_run_shows_simulated_usage_within_a_minute_and_stops_on_ctrl_c(
    db: psycopg.Connection[tuple[object, ...]],
    db_url: str,
    mqtt_test_url: str,
    prefix: str,
    tokens: dict[str, str],
) -> None:
    api_port = free_port()
    env = {
        **os.environ,
        # the test database and this test's topics, so the developer's data is left alone
        "WASTEPILOT_DATABASE_URL": db_url,
        "WASTEPILOT_MQTT_URL": mqtt_test_url,
        "WASTEPILOT_TOPIC_PREFIX": prefix,
        "WASTEPILOT_API_PORT": str(api_port),
        "WASTEPILOT_INGEST_METRICS_PORT": str(free_port()),
        "WASTEPILOT_SCHEDULER_METRICS_PORT": str(free_port()),
        "WASTEPILOT_INGEST_CLIENT_ID": f"run-test-{prefix.split('/')[1]}",
        "WASTEPILOT_INGEST_SESSION_EXPIRY_S": "60",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "wastepilot", "run", "--households", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        points: list[object] = []
        last = "none: the API never answered"
        while time.monotonic() < deadline and not points:
            time.sleep(1)
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{api_port}/api/v1/households/SIM-000001/usage",
                    params={"bucket": "1h"},
                    headers={"Authorization": f"Bearer {tokens['analyst']}"},
                    timeout=2,
                )
            except httpx.TransportError:
                continue
            last = f"{r.status_code} {r.text[:200]}"
            if r.status_code == 200:
                points = r.json()["points"]
        assert points, f"no usage visible through the API within 60 s (last answer: {last})"
        row = db.execute("SELECT count(*) FROM readings").fetchone()
        assert row is not None and int(row[0]) > 0  # type: ignore[call-overload]
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopped" in out
