"""Erasure leaves nothing behind in ingest's path (issue 26): a household erased while its
readings wait on the broker, or while its device goes on publishing, leaves no reading, no
dead letter (nor its payload), no retained message and no log line — real broker, real
database, in-process ingest workers."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from api.keepers import OTHERS
from core import clock, devices
from core.brokeradmin import BrokerAdmin
from core.errors import RegistryError
from core.mqtturl import parse_mqtt_url
from core.registry import Device, add_devices
from core.settings import Settings
from core.topics import readings_topic, status_topic
from ingest.worker import IngestWorker
from tests.helpers import Publisher, dumps, reading, wait_for

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]


def erased_count(w: IngestWorker) -> float:
    for family in w.metrics.dead_letters.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("reason") == "erased_device":
                return float(sample.value)
    return 0.0


def traces(db: Conn, device: str, ref: str) -> dict[str, int]:
    """Rows anywhere in ingest's tables that name the device or the household."""
    out = {}
    for name, query in {
        "readings": "SELECT count(*) FROM readings WHERE device_id = %(d)s",
        "dead_letters": "SELECT count(*) FROM dead_letters WHERE device_id = %(d)s "
        "OR strpos(topic, %(d)s) > 0 OR strpos(encode(payload, 'escape'), %(d)s) > 0",
        "device_status": "SELECT count(*) FROM device_status WHERE device_id = %(d)s",
        "devices": "SELECT count(*) FROM devices WHERE id = %(d)s OR household_ref = %(r)s",
        "households": "SELECT count(*) FROM households WHERE ref = %(r)s",
    }.items():
        row = db.execute(query, {"d": device, "r": ref}).fetchone()
        out[name] = int(str(row[0])) if row else -1
    return out


def retained(url: str, topics: list[str], marker_topic: str) -> list[tuple[str, bytes]]:
    """The retained messages the broker hands a new subscriber on ``topics``: it sends them
    right after the subscription, so a marker published after subscribing comes after them."""
    addr = parse_mqtt_url(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ret-{uuid.uuid4().hex[:8]}")
    c.username_pw_set(addr.username, addr.password)
    got: list[tuple[str, bytes]] = []
    subscribed, marked = threading.Event(), threading.Event()

    def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        if m.topic == marker_topic:
            marked.set()
        elif m.payload:
            got.append((m.topic, m.payload))

    c.on_message = on_message
    c.on_subscribe = lambda *_a: subscribed.set()
    c.connect(addr.host, addr.port)
    c.loop_start()
    try:
        c.subscribe([(t, 1) for t in [*topics, marker_topic]])
        assert subscribed.wait(10), "no SUBACK"
        c.publish(marker_topic, b"marker", qos=1)
        assert marked.wait(10), "the marker did not come back"
    finally:
        c.disconnect()
        c.loop_stop()
    return got


def test_erasure_while_readings_wait_on_the_broker_leaves_nothing(
    db: Conn,
    start_worker: Callable[..., IngestWorker],
    publisher: Publisher,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    u = uuid.uuid4().hex[:6].upper()
    device, ref = f"ERQ-{u}", f"HH-ERQ-{u}"
    add_devices(db, [Device(device, ref)])
    client_id = f"erase-{u.lower()}"
    start_worker(client_id).stop(timeout=10)  # its session stays and queues what comes
    at = clock.now() - timedelta(hours=1)
    for seq in range(1, 51):
        msg = dumps(reading(device, seq, at + timedelta(minutes=seq)))
        publisher.publish(readings_topic(prefix, device), msg)
    publisher.publish(readings_topic(prefix, device), b"{not json " + device.encode())
    status = {"v": 1, "device_id": device, "state": "online"}
    publisher.publish(status_topic(prefix, device), dumps(status), retain=True)
    publisher.wait()

    done = devices.erase_household(db, ref, None, prefix=prefix, others=OTHERS)
    assert done.devices == 1

    w = start_worker(client_id)  # the session's queue is delivered now
    wait_for(lambda: erased_count(w) >= 52, 60, "the queued messages to be dropped")
    assert traces(db, device, ref) == dict.fromkeys(
        ("readings", "dead_letters", "device_status", "devices", "households"), 0
    )
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert device not in logs and ref not in logs
    # the id is spent: registering it again would send its readings to the tombstone
    with pytest.raises(RegistryError, match="erased household"):
        devices.register(db, [Device(device, "HH-NEW")], None)


def test_erasure_while_the_device_publishes_leaves_nothing(
    db: Conn,
    start_worker: Callable[..., IngestWorker],
    publisher: Publisher,
    prefix: str,
) -> None:
    u = uuid.uuid4().hex[:6].upper()
    device, other, ref = f"ERP-{u}", f"ERO-{u}", f"HH-ERP-{u}"
    add_devices(db, [Device(device, ref), Device(other, f"HH-ERO-{u}")])
    w = start_worker()
    at = clock.now() - timedelta(hours=2)
    stop = threading.Event()
    sent = [0]

    def publish() -> None:
        seq = 0
        while not stop.is_set() and seq < 5_000:
            seq += 1
            msg = dumps(reading(device, seq, at + timedelta(seconds=seq)))
            publisher.publish(readings_topic(prefix, device), msg)
            sent[0] = seq
            if seq % 50 == 0:
                publisher.wait()

    t = threading.Thread(target=publish)
    t.start()
    try:
        wait_for(
            lambda: (db.execute("SELECT count(*) FROM readings").fetchone() or (0,))[0] >= 100,
            60,
            "readings stored before the erasure",
        )
        devices.erase_household(db, ref, None, prefix=prefix, others=OTHERS)
        at_erasure = sent[0]
        wait_for(lambda: sent[0] >= at_erasure + 200, 60, "the device to go on publishing")
    finally:
        stop.set()
        t.join(60)
    publisher.wait()
    # a reading of another household after the last one: once it is stored, the device's
    # last messages have been through ingest too (one session, one worker, in order)
    publisher.publish(readings_topic(prefix, other), dumps(reading(other, 1, at)))
    publisher.wait()
    wait_for(
        lambda: (
            db.execute("SELECT 1 FROM readings WHERE device_id = %s", (other,)).fetchone()
            is not None
        ),
        60,
        "the other household's reading",
    )
    assert traces(db, device, ref) == dict.fromkeys(
        ("readings", "dead_letters", "device_status", "devices", "households"), 0
    )
    assert erased_count(w) > 0


def test_erasure_removes_the_login_and_clears_what_the_broker_retains(
    db: Conn, settings: Settings
) -> None:
    """On the product's own topics (the tests' prefixes are the test identity's alone): the
    device's retained status and reading are gone, and so is its login."""
    admin = settings.broker_admin_url()
    assert admin is not None
    u = uuid.uuid4().hex[:6].upper()
    device, ref = f"ERR-{u}", f"HH-ERR-{u}"
    [login] = devices.register(db, [Device(device, ref)], admin)
    topics = [
        readings_topic(settings.topic_prefix, device),
        status_topic(settings.topic_prefix, device),
    ]
    as_admin = Publisher(admin, f"erase-test-{u.lower()}")
    try:
        for topic in topics:
            as_admin.publish(topic, b'{"device_id": "' + device.encode() + b'"}', retain=True)
        as_admin.wait()
    finally:
        as_admin.close()
    marker = f"{settings.topic_prefix}/erasure-test-marker/{u}"
    assert len(retained(admin, topics, marker)) == 2  # there before
    devices.erase_household(db, ref, admin, prefix=settings.topic_prefix, others=OTHERS)
    assert retained(admin, topics, marker) == []
    with BrokerAdmin(admin) as broker:
        assert login.device_id not in broker.usernames()
