"""The simulator's publisher against the real broker: PUBACK 0x10 ("no matching subscribers",
the broker dropped the message) is not a delivery; the message goes again until one takes it."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.mqtturl import parse_mqtt_url
from simulator.publisher import MqttSink
from tests.helpers import dumps, reading, wait_for

pytestmark = pytest.mark.services


def test_a_message_nobody_subscribed_to_is_sent_again_until_delivered(
    mqtt_test_url: str, prefix: str
) -> None:
    topic = f"{prefix}/devices/FWD-000001/readings"
    sink = MqttSink(mqtt_test_url, f"pub-{prefix.split('/')[1]}").connect()
    d = sink.send(topic, dumps(reading()))
    wait_for(lambda: sink.no_subscribers >= 1, 10, "the broker's 0x10 answer")
    assert not d.confirmed and sink.confirmed == 0
    time.sleep(1.2)
    # the next send first re-sends what is due: nobody still, both answered 0x10
    d2 = sink.send(topic, dumps(reading(seq=2)))
    wait_for(lambda: sink.no_subscribers >= 3, 10, "0x10 for the re-sent and the new one")
    assert not d.confirmed and not d2.confirmed and d.resends == 1

    got: list[bytes] = []
    ready = threading.Event()
    a = parse_mqtt_url(mqtt_test_url)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.username_pw_set(a.username, a.password)
    sub.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    sub.on_subscribe = lambda *_: ready.set()
    sub.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.connect(a.host, a.port)
    sub.loop_start()
    try:
        assert ready.wait(10)
        assert sink.close(timeout=10) == 0  # re-sent, delivered, confirmed
        assert d.confirmed and d2.confirmed and d.resends >= 2
        wait_for(lambda: len(got) == 2, 5, "the subscriber to get both")
    finally:
        sub.disconnect()
        sub.loop_stop()
