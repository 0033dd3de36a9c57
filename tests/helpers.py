"""Shared factories and helpers for the tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from core import clock
from core.mqtturl import parse_mqtt_url
from core.wire import format_ts
from wastepilot.localservices.state import free_port

__all__ = ["free_port"]  # re-exported: tests take their helpers from this module

# Instants at which the date-sensitive tests run (through core.clock, never the real calendar),
# chosen to be awkward for code that assumes "now" is an ordinary day.
AWKWARD_INSTANTS: dict[str, datetime] = {
    # SIM-000001 (seed 1) is away on holiday: the fleet's first household publishes nothing
    "holiday-of-SIM-000001": datetime(2027, 5, 30, 12, 0, tzinfo=UTC),
    # a minute before the UK clocks go forward (01:00 GMT -> 02:00 BST)
    "spring-forward": datetime(2027, 3, 28, 0, 59, tzinfo=UTC),
    # 01:30 GMT on 25 Oct 2026: the second 01:30 of the night (01:00-02:00 happens twice)
    "repeated-hour": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    # 29 February, late in the evening
    "leap-day-evening": datetime(2028, 2, 29, 22, 45, tzinfo=UTC),
    # New Year's Eve, 23:45 UK time (GMT)
    "new-years-eve": datetime(2026, 12, 31, 23, 45, tzinfo=UTC),
}


def reading(
    device_id: str = "FWD-000001", seq: int = 1, at: datetime | None = None, **over: Any
) -> dict[str, Any]:
    """A valid run reading of the v1 contract at ``at``; keyword arguments replace fields."""
    ts = at or clock.now() - timedelta(minutes=5)
    r: dict[str, Any] = {
        "v": 1,
        "device_id": device_id,
        "seq": seq,
        "ts": format_ts(ts),
        "kind": "run",
        "run_s": 11.5,
        "energy_wh": 1.9,
        "water_l": 6.2,
        "peak_a": 3.1,
    }
    r.update(over)
    return {k: v for k, v in r.items() if v is not _DROP}


_DROP = object()
DROP: Any = _DROP  # reading(..., fault=DROP) leaves a field out


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


class Publisher:
    """A plain QoS 1 test publisher that waits for every PUBACK."""

    def __init__(self, url: str, client_id: str) -> None:
        addr = parse_mqtt_url(url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if addr.username:
            self.client.username_pw_set(addr.username, addr.password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        assert self._connected.wait(10), "test publisher could not connect"
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS, mqtt.error_string(info.rc)
        self.infos.append(info)

    def wait(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for info in self.infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge a test message"
        self.infos.clear()

    def close(self) -> None:
        self.wait()
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(
    cond: Callable[[], bool],
    timeout: float = 30,
    what: str = "condition",
    state: Callable[[], object] | None = None,
) -> None:
    """Poll ``cond`` until true; on time-out, fail saying what was awaited and, if given, the
    state at that moment (so a failure in CI explains itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    extra = f"; state: {state()}" if state is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")


# --- bid support ---


def workshop_body(**over: Any) -> dict[str, Any]:
    start = clock.now() + timedelta(days=14)
    body: dict[str, Any] = {
        "title": "Bid workshop",
        "venue": "Civic Hall",
        "town": "Leeds",
        "region": "Yorkshire and The Humber",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=5)).isoformat(),
        "capacity": 20,
        "speakers": [{"name": "A Speaker", "organisation": "WRAP"}],
    }
    body.update(over)
    return body


def person(i: int, council: str = "E06000002") -> dict[str, str]:
    return {
        "council_code": council,
        "person_name": f"Person {i}",
        "person_role": "Waste officer",
        "email": f"person{i}@council.example.org",
    }


def metric_value(metric: Any) -> float:
    """The current value of an unlabelled Prometheus counter or gauge, as /metrics shows it."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name in (f"{family.name}_total", family.name):
                return float(sample.value)
    raise AssertionError(f"no value sample in {metric!r}")


class StallingProxy:
    """A TCP proxy in front of the broker that can make its current connections go silent:
    bytes from the broker are read and dropped, while the connection stays open (a stalled
    connection that looks alive). Connections made after ``stall()`` work normally."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            stalled = threading.Event()
            with self._lock:
                self._pairs.append((client, upstream, stalled))
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, stalled), daemon=True
            ).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, stalled: threading.Event | None) -> None:
        try:
            while data := src.recv(65536):
                if stalled is None or not stalled.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stall(self) -> None:
        with self._lock:
            for _, _, stalled in self._pairs:
                stalled.set()

    def close(self) -> None:
        self._server.close()
        with self._lock:
            for a, b, _ in self._pairs:
                a.close()
                b.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the pages in a browser ------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots, kept by CI
AXE = ROOT / "api/web/node_modules/axe-core/axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "granite lantern orbit tuesday"  # the test users' (tests/fixtures/database.py)


def sign_in(page: Any, base: str, user: str) -> None:
    page.goto(f"{base}/sign-in")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_load_state()


def csp_refusals(page: Any) -> list[str]:
    """Start collecting what the page's content security policy refuses (none may be)."""
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return refused


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now."""
    # evaluated through the browser's debugging protocol: the pages' policy allows no inline
    # script, so a <script> tag with axe's source would be refused
    page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run()).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return found


def run_env(db_url: str, mqtt_url: str, prefix: str, api_port: int, **extra: str) -> dict[str, str]:
    """The environment of a `wastepilot run` under test: the test database and this test's
    topics (the developer's data is left alone), free ports, a short broker session. The
    services sign in as ``db_url``'s role; `run`'s migrations as the owner of that database."""
    import os
    from urllib.parse import urlsplit

    from core.settings import Settings
    from wastepilot.prepare import database_url

    owner = database_url(Settings().db_owner_url(), urlsplit(db_url).path.lstrip("/"))
    return {
        **os.environ,
        "WASTEPILOT_DATABASE_URL": db_url,
        "WASTEPILOT_DATABASE_OWNER_URL": owner,
        "WASTEPILOT_MQTT_URL": mqtt_url,
        "WASTEPILOT_TOPIC_PREFIX": prefix,
        "WASTEPILOT_API_PORT": str(api_port),
        "WASTEPILOT_INGEST_METRICS_PORT": str(free_port()),
        "WASTEPILOT_SCHEDULER_METRICS_PORT": str(free_port()),
        "WASTEPILOT_INGEST_CLIENT_ID": f"run-test-{prefix.split('/')[1]}",
        "WASTEPILOT_INGEST_SESSION_EXPIRY_S": "60",
        **extra,
    }


@contextlib.contextmanager
def running_pilot(args: list[str], env: dict[str, str]) -> Iterator[tuple[Any, list[str]]]:
    """`wastepilot run ARGS` in the foreground of its own process group, its output collected
    line by line; Ctrl-C (SIGINT to the group) and a wait when the block ends."""
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "wastepilot", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        yield proc, lines
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        proc.wait(timeout=60)
        reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()
