"""What stays exposed: readings the broker has acknowledged to devices that ingest has not stored
yet. They live only in the broker's store (its disk) until ingest commits them; a standby or a
backup of the database does not hold them (docs/recovery.md).

The broker says how many messages its store holds and how many of those are retained ones, in
its ``$SYS`` topics (every ``sys_interval``: 1 s in deploy/mosquitto/mosquitto.conf). The
difference — messages queued or in flight to subscribers, which in this deployment are ingest's
sessions — is published as
``wastepilot_broker_unstored_messages`` by every ingest process (alert when it grows: ingest or
the database is behind or down).
"""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import Gauge

from core.mqtturl import parse_mqtt_url

log = logging.getLogger(__name__)

STORE_TOPIC = "$SYS/broker/store/messages/count"
RETAINED_TOPIC = "$SYS/broker/retained messages/count"


def unstored(store: int, retained: int) -> int:
    """Messages in the broker's store that are not retained ones: queued or in flight."""
    return max(store - retained, 0)


class StoreWatch:
    """A small client of its own (clean session, QoS 0) that follows the two ``$SYS`` counts
    and sets ``gauge``; it reconnects by itself and never touches ingest's session."""

    def __init__(self, mqtt_url: str, client_id: str, gauge: Gauge) -> None:
        self._gauge = gauge
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        addr = parse_mqtt_url(mqtt_url)
        self._addr = addr
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if addr.username:
            c.username_pw_set(addr.username, addr.password)
        if addr.tls:
            c.tls_set(ca_certs=addr.ca_file)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._connected
        c.on_disconnect = self._disconnected
        c.on_message = self._message
        self.client = c

    def start(self) -> None:
        self.client.connect_async(self._addr.host, self._addr.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _connected(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        client.subscribe([(STORE_TOPIC, 0), (RETAINED_TOPIC, 0)])

    def _disconnected(self, *_a: object) -> None:
        with self._lock:  # unknown until the broker says again: never an old figure
            self._counts.clear()
            self._gauge.set(float("nan"))

    def _message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            value = int(msg.payload.decode().strip())
        except (UnicodeDecodeError, ValueError):
            log.debug("unexpected %s payload %r", msg.topic, msg.payload[:40])
            return
        with self._lock:
            self._counts[msg.topic] = value
            if len(self._counts) == 2:  # both known (they come one after the other)
                self._gauge.set(unstored(self._counts[STORE_TOPIC], self._counts[RETAINED_TOPIC]))
