"""A thousand devices on their own connections with their own credentials (real broker and
database); the broker's ACL keeps each device to its own topics."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from core.brokeradmin import BrokerAdmin
from core.devices import issue_logins
from core.errors import PublishError
from core.registry import Device, add_devices
from core.settings import Settings
from core.topics import readings_topic
from ingest.worker import IngestWorker
from simulator.device_sink import DeviceSinks
from tests.helpers import dumps, metric_value, reading, wait_for

pytestmark = pytest.mark.services
PREFIX = "wastepilot/v1"  # device logins may write only here (the broker's device role)


@pytest.fixture
def devices(settings: Settings) -> Iterator[dict[str, str]]:
    admin = settings.broker_admin_url()
    if admin is None:
        pytest.skip("device logins are issued through the broker's admin identity")
    run = uuid.uuid4().hex[:6].upper()
    logins = issue_logins(admin, [f"T{run}-{i:04d}" for i in range(1000)])
    yield {x.device_id: x.password for x in logins}
    with BrokerAdmin(admin) as broker:
        broker.run({"command": "deleteClient", "username": x.device_id} for x in logins)


def test_thousand_devices_publish_with_their_own_logins_and_only_to_their_own_topics(
    db: psycopg.Connection[tuple[object, ...]],
    devices: dict[str, str],
    start_worker: Callable[..., IngestWorker],
    settings: Settings,
) -> None:
    from dataclasses import replace

    from ingest.validate import Limits

    add_devices(db, [Device(d, f"HH-{d}") for d in devices])
    w = start_worker(
        mqtt_url=settings.mqtt_url_for("ingest"),
        limits=replace(Limits.from_settings(settings), prefix=PREFIX),
    )
    host, port = "127.0.0.1", settings.mqtt_port
    sinks = DeviceSinks(host, port, PREFIX, devices).connect(timeout=120)
    ids = list(devices)
    for d in ids:
        sinks.send(readings_topic(PREFIX, d), dumps(reading(device_id=d, seq=1)))
    # a device writing under another device's topic is refused by the broker
    intruder, victim = ids[0], ids[1]
    info = sinks.send_as(
        intruder, readings_topic(PREFIX, victim), dumps(reading(device_id=victim, seq=2))
    )
    unconfirmed = sinks.close(timeout=60)
    assert getattr(info, "mid", 0) and sinks.refused == 1 and unconfirmed == 1
    wait_for(lambda: metric_value(w.metrics.written) >= len(ids), 60, "a reading from every device")
    rows = db.execute(
        "SELECT device_id, seq FROM readings WHERE device_id = ANY(%s)", (ids,)
    ).fetchall()
    assert sorted(rows) == sorted((d, 1) for d in ids)  # the intruder's seq 2 is nowhere
    # a device with a wrong secret cannot connect at all
    bad = DeviceSinks(host, port, PREFIX, {ids[2]: "wrong-secret"})
    with pytest.raises(PublishError, match="could not connect"):
        bad.connect(timeout=3)
