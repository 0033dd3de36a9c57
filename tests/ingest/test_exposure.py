"""What stays exposed (issue 28): readings the broker acknowledged and holds for a subscriber
that has not taken them yet are counted from the broker's own $SYS figures, as ingest
publishes them (wastepilot_broker_unstored_messages), against the real broker."""

from __future__ import annotations

import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry, Gauge

from core.mqtturl import parse_mqtt_url
from core.settings import Settings
from ingest.exposure import StoreWatch, unstored
from tests.helpers import wait_for

pytestmark = pytest.mark.services


def test_unstored_is_what_the_store_holds_besides_retained_messages() -> None:
    assert unstored(120, 20) == 100
    assert unstored(5, 9) == 0  # counts read at different moments never go below none


def _session(url: str, client_id: str) -> mqtt.Client:
    addr = parse_mqtt_url(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(addr.username, addr.password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 300
    c.connect(addr.host, addr.port, clean_start=False, properties=props)
    return c


def test_readings_held_for_an_absent_subscriber_are_counted_until_it_takes_them(
    settings: Settings, mqtt_test_url: str, prefix: str
) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("unstored", "test", registry=registry)
    watch = StoreWatch(settings.mqtt_url_for("ingest"), f"exposure-{uuid.uuid4().hex[:6]}", gauge)
    value = lambda: registry.get_sample_value("unstored")  # noqa: E731
    watch.start()
    topic = f"{prefix}/devices/EXP-1/readings"
    sub_id = f"exposure-sub-{uuid.uuid4().hex[:6]}"
    try:
        # an ingest-like session: subscribed at QoS 1, then away
        sub = _session(mqtt_test_url, sub_id)
        sub.loop_start()
        sub.subscribe(topic, qos=1)
        time.sleep(0.5)
        sub.disconnect()
        sub.loop_stop()
        wait_for(lambda: value() is not None, 30, "the broker's $SYS counts")
        base = value()
        assert base is not None
        pub = _session(mqtt_test_url, f"exposure-pub-{uuid.uuid4().hex[:6]}")
        pub.loop_start()
        infos = [pub.publish(topic, b'{"n":%d}' % i, qos=1) for i in range(300)]
        for info in infos:
            info.wait_for_publish(10)  # acknowledged by the broker: the device would forget it
        pub.disconnect()
        pub.loop_stop()
        wait_for(lambda: (value() or 0) >= base + 300, 30, "the held readings counted",
                 state=value)  # fmt: skip

        # the subscriber comes back and takes them: the count falls again
        got: list[int] = []
        back = _session(mqtt_test_url, sub_id)
        back.on_message = lambda _c, _u, _m: got.append(1)
        back.loop_start()
        wait_for(lambda: len(got) >= 300, 30, "the held readings delivered")
        wait_for(lambda: (value() or 0) <= base, 30, "the count back down", state=value)
        back.disconnect()
        back.loop_stop()
    finally:
        watch.stop()
