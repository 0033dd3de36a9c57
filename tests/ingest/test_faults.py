"""Nothing lost, nothing doubled: ingest crash, database outage, broker restart (real services)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest

from core.mqtturl import parse_mqtt_url
from core.registry import Device, add_devices
from core.settings import Settings
from core.topics import readings_topic
from simulator.publisher import MqttSink
from tests.helpers import StallingProxy, dumps, metric_value, reading, wait_for
from wastepilot.localservices import broker, install, postgres
from wastepilot.localservices import state as localstate

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
DEVICES = [f"FWD-{i:06d}" for i in range(1, 21)]


def stored(db_url: str) -> tuple[int, int]:
    """(rows, distinct (device, seq)) in readings; a fresh connection, as the server may restart."""
    try:
        with psycopg.connect(db_url, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT (device_id, seq)) FROM readings"
            ).fetchone()
    except psycopg.OperationalError:
        return -1, -1
    assert row is not None
    return int(row[0]), int(row[1])  # type: ignore[call-overload]


def stream(
    url: str, prefix: str, total: int, per_second: float | None = None
) -> tuple[threading.Thread, dict[str, Any]]:
    """Publish ``total`` single-reading QoS 1 messages round-robin over DEVICES, in a thread."""
    state: dict[str, Any] = {"sent": 0, "unconfirmed": None, "confirmed": None}
    infos: list[tuple[Any, tuple[str, int]]] = []

    def run() -> None:
        sink = MqttSink(url, f"stream-{uuid.uuid4().hex[:8]}").connect()
        t0 = time.monotonic()
        for i in range(total):
            dev = DEVICES[i % len(DEVICES)]
            seq = i // len(DEVICES) + 1
            info = sink.send(readings_topic(prefix, dev), dumps(reading(device_id=dev, seq=seq)))
            infos.append((info, (dev, seq)))
            state["sent"] = i + 1
            if per_second:
                ahead = (i + 1) / per_second - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        state["unconfirmed"] = sink.close(timeout=120)
        state["confirmed"] = {key for d, key in infos if d.confirmed}
        state["no_subscribers"] = sink.no_subscribers

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, state


def test_kill_9_mid_stream_then_restart_stores_every_reading_once(
    db: Conn, db_url: str, mqtt_test_url: str, prefix: str, spawn_ingest: Callable[..., Any]
) -> None:
    add_devices(db, [Device(d, f"HH-{d}") for d in DEVICES])
    client_id = f"crash-{uuid.uuid4().hex[:6]}"
    proc, _ = spawn_ingest(client_id)
    total = 20_000
    t, state = stream(mqtt_test_url, prefix, total)
    wait_for(lambda: stored(db_url)[0] >= 3_000, 60, "3,000 readings before the crash")
    family = _descendants(proc.pid)
    assert family, "ingest runs no writer process"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    # its writer process (and the fork server it came from) must not outlive it
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in family), 10, "writer exit")
    at_crash = stored(db_url)[0]
    assert at_crash < total, "the stream ended before the crash; nothing was tested"
    t.join(120)
    assert state["unconfirmed"] == 0
    spawn_ingest(client_id)  # same client id: the broker kept its session and the backlog
    wait_for(
        lambda: stored(db_url)[0] >= total,
        90,
        f"{total} readings after the restart",
        state=lambda: (stored(db_url), state),
    )
    time.sleep(1)  # anything doubled would show now
    assert stored(db_url) == (total, total)


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (threads and children may end while they are read)."""
    out: list[int] = []
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for c in _children(pid):
        out += [c, *_descendants(c)]
    return out


@pytest.mark.parametrize("victim", ["writer", "validator"])
def test_pipeline_process_killed_mid_stream_is_restarted_and_nothing_is_lost(
    db: Conn,
    db_url: str,
    mqtt_test_url: str,
    prefix: str,
    start_worker: Callable[..., Any],
    victim: str,
) -> None:
    """Kill -9 of the worker's writer process, or of its validator process: both are started
    again and the broker redelivers what they held."""
    add_devices(db, [Device(d, f"HH-{d}") for d in DEVICES])
    w = start_worker()
    first = getattr(w.pipeline, victim)
    total = 10_000
    t, state = stream(mqtt_test_url, prefix, total, per_second=2_000)
    wait_for(lambda: stored(db_url)[0] >= 1_000, 60, "1,000 readings before the kill")
    os.kill(first.pid, signal.SIGKILL)
    at_kill = stored(db_url)[0]
    assert at_kill < total, "the stream ended before the kill; nothing was tested"
    wait_for(lambda: getattr(w.pipeline, victim) is not first and w.ready()[0], 30, "a new process")
    t.join(120)
    assert state["unconfirmed"] == 0
    wait_for(
        lambda: stored(db_url)[0] >= total,
        90,
        f"{total} readings after the writer was replaced",
        state=lambda: stored(db_url),
    )
    time.sleep(1)  # anything doubled would show now
    assert stored(db_url) == (total, total)
    assert not first.is_alive()


def _rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (ingest's pipeline processes)."""
    text = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmRSS:\s+(\d+) kB", text)
    assert m
    total = int(m.group(1))
    for c in _children(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += _rss_kb(c)
    return total


def test_database_outage_holds_bounded_buffer_then_drains(
    db: Conn,
    db_url: str,
    mqtt_test_url: str,
    prefix: str,
    spawn_ingest: Callable[..., Any],
    settings: Settings,
) -> None:
    if settings.database_url:
        pytest.skip("the database is external: this test stops the local cluster")
    add_devices(db, [Device(d, f"HH-{d}") for d in DEVICES])
    receive_max = 2000
    proc, port = spawn_ingest(
        f"outage-{uuid.uuid4().hex[:6]}", WASTEPILOT_INGEST_RECEIVE_MAXIMUM=str(receive_max)
    )
    total = 30_000
    t, state = stream(mqtt_test_url, prefix, total, per_second=1000)
    wait_for(lambda: stored(db_url)[0] >= 2_000, 60, "readings before the outage")
    paths = localstate.paths_for(settings)
    major = install.installed_pg_majors()[0]
    rss_before = _rss_kb(proc.pid)
    postgres.pg_ctl(paths, major, "stop")
    try:
        t_stop = time.monotonic()
        not_ready = False
        buffers: list[float] = []
        rss: list[int] = []
        while time.monotonic() - t_stop < 15:
            r = httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            not_ready = not_ready or r.status_code == 503
            m = re.search(
                r"^wastepilot_ingest_buffer_messages (\S+)$",
                httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text,
                re.M,
            )
            assert m
            buffers.append(float(m.group(1)))
            rss.append(_rss_kb(proc.pid))
            time.sleep(0.5)
    finally:
        postgres.pg_ctl(paths, major, "start")
    assert not_ready, "/readyz never said not-ready while the database was down"
    assert state["sent"] > 2_000 + receive_max, (
        "the stream did not outrun the buffer during the outage"
    )
    # bounded: at most Receive Maximum messages held, whatever the length of the outage
    assert max(buffers) <= receive_max, max(buffers)
    assert max(rss) - rss_before < 100_000, f"RSS grew by {max(rss) - rss_before} kB"
    t.join(120)
    assert state["unconfirmed"] == 0
    wait_for(
        lambda: stored(db_url)[0] >= total,
        90,
        "every reading after the outage",
        state=lambda: (stored(db_url), state),
    )
    wait_for(
        lambda: httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200,
        30,
        "ready again",
    )
    time.sleep(1)
    assert stored(db_url) == (total, total)


def stop_broker(paths: localstate.Paths, how: signal.Signals) -> None:
    """Stop the local broker: SIGTERM (a clean restart) or SIGKILL (a crash)."""
    pid = broker.mqtt_pid(paths)
    assert pid is not None, "the local broker is not running"
    os.kill(pid, how)
    wait_for(lambda: broker.mqtt_pid(paths) is None, 30, "the broker to stop")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_broker_restart_mid_stream_loses_nothing(
    db: Conn,
    db_url: str,
    mqtt_test_url: str,
    prefix: str,
    spawn_ingest: Callable[..., Any],
    settings: Settings,
    how: signal.Signals,
) -> None:
    """Two workers on the default shared group, the broker stopped mid-stream and started
    again: every reading it acknowledged is stored once, and no publish is answered 0x10 (the
    SQLite persistence keeps the shared subscription and what was queued for it)."""
    if settings.mqtt_url:
        pytest.skip("the broker is external: this test restarts the local one")
    add_devices(db, [Device(d, f"HH-{d}") for d in DEVICES])
    run = uuid.uuid4().hex[:6]
    group = f"g{run}"  # the default configuration, on a group of this test's own
    spawn_ingest(f"brk-{run}-1", WASTEPILOT_INGEST_GROUP=group)
    spawn_ingest(f"brk-{run}-2", WASTEPILOT_INGEST_GROUP=group)
    total = 20_000
    t, state = stream(mqtt_test_url, prefix, total, per_second=4000)
    wait_for(lambda: stored(db_url)[0] >= 3_000, 60, "readings before the restart")
    paths = localstate.paths_for(settings)
    stop_broker(paths, how)
    time.sleep(1)
    broker.mqtt_up(settings, paths, localstate.local_secrets(paths))
    t.join(180)
    assert state["no_subscribers"] == 0, "the shared subscription was lost over the restart"
    confirmed: set[tuple[str, int]] = state["confirmed"]
    # the acceptance: every reading the broker accepted (PUBACKed) is stored exactly once;
    # one paho left unconfirmed after the restart was reported as not sent, never hidden
    assert len(confirmed) + state["unconfirmed"] == total
    assert len(confirmed) >= total * 0.99, state["unconfirmed"]

    def keys() -> set[tuple[str, int]]:
        with psycopg.connect(db_url) as conn:
            return {
                (str(d), int(s)) for d, s in conn.execute("SELECT device_id, seq FROM readings")
            }  # type: ignore[call-overload]

    wait_for(
        lambda: confirmed <= keys(),
        120,
        "every accepted reading stored",
        state=lambda: (stored(db_url), len(confirmed), state["unconfirmed"]),
    )
    time.sleep(1)
    rows, distinct = stored(db_url)
    assert rows == distinct, "a reading was stored twice"
    assert len(keys()) == rows <= total


def test_broker_kill_9_with_a_100k_backlog_for_ingest_loses_nothing(
    db: Conn,
    db_url: str,
    mqtt_test_url: str,
    prefix: str,
    spawn_ingest: Callable[..., Any],
    settings: Settings,
) -> None:
    """Ingest is away (a deploy, a database outage) and 100,000 readings queue for its two
    sessions on the shared group; the broker is killed (-9) and started again: every reading
    it acknowledged reaches the database once, none answered 0x10."""
    if settings.mqtt_url:
        pytest.skip("the broker is external: this test kills the local one")
    add_devices(db, [Device(d, f"HH-{d}") for d in DEVICES])
    run = uuid.uuid4().hex[:6]
    group = f"g{run}"
    workers = [spawn_ingest(f"bk-{run}-{i}", WASTEPILOT_INGEST_GROUP=group)[0] for i in (1, 2)]
    for p in workers:  # their sessions (and the shared subscription) stay on the broker
        p.terminate()
        p.wait(30)
    total = 100_000
    t, state = stream(mqtt_test_url, prefix, total)
    t.join(300)
    assert state["unconfirmed"] == 0 and state["no_subscribers"] == 0, state
    assert stored(db_url)[0] == 0  # all of it is queued on the broker
    paths = localstate.paths_for(settings)
    stop_broker(paths, signal.SIGKILL)
    broker.mqtt_up(settings, paths, localstate.local_secrets(paths))
    for i in (1, 2):
        spawn_ingest(f"bk-{run}-{i}", WASTEPILOT_INGEST_GROUP=group)
    wait_for(
        lambda: stored(db_url)[1] >= total, 180, "the backlog stored", state=lambda: stored(db_url)
    )
    time.sleep(1)
    assert stored(db_url) == (total, total)


def test_after_a_pipeline_restart_under_traffic_the_watchdog_still_recovers_a_stall(
    db: Conn, db_url: str, mqtt_test_url: str, prefix: str, start_worker: Callable[..., Any]
) -> None:
    """Kill -9 of the writer while readings stream in: once everything is stored the worker
    holds nothing (what it shipped to the dead pipeline is forgotten, not held forever), so
    its watchdog still sees a connection that goes silent and reconnects it."""
    add_devices(db, [Device(d, f"HH-{d}") for d in DEVICES])
    addr = parse_mqtt_url(mqtt_test_url)
    proxy = StallingProxy(addr.host, addr.port)
    try:
        via_proxy = mqtt_test_url.replace(f":{addr.port}", f":{proxy.port}", 1)
        w = start_worker(mqtt_url=via_proxy, stall_after_s=3.0)
        assert w.pipeline is not None
        first = w.pipeline.writer
        total = 6_000
        t, state = stream(mqtt_test_url, prefix, total, per_second=2_000)
        wait_for(lambda: stored(db_url)[0] >= 500, 60, "500 readings before the kill")
        os.kill(first.pid, signal.SIGKILL)
        assert stored(db_url)[0] < total, "the stream ended before the kill; nothing was tested"
        t.join(120)
        assert state["unconfirmed"] == 0
        wait_for(lambda: stored(db_url)[0] >= total, 90, f"{total} readings after the restart")
        assert w.pipeline.writer is not first
        wait_for(lambda: w.held() == 0, 10, "nothing held once all is stored", state=w.held)

        stalls = metric_value(w.metrics.stalls)
        proxy.stall()  # the worker's connection goes silent; the broker still sees it alive
        late = ("FWD-000001", 10_000)
        sink = MqttSink(mqtt_test_url, f"late-{uuid.uuid4().hex[:6]}").connect()
        sink.send(readings_topic(prefix, late[0]), dumps(reading(device_id=late[0], seq=late[1])))
        assert sink.close(timeout=30) == 0
        wait_for(
            lambda: metric_value(w.metrics.stalls) > stalls, 20, "the watchdog to see the stall"
        )
        wait_for(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM readings WHERE device_id = %s AND seq = %s", late
                ).fetchone()
                == (1,)
            ),
            20,
            "the reading sent during the stall, over the new connection",
        )
    finally:
        proxy.close()
