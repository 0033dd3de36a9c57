"""Each simulated device on its own broker connection, with its own credentials.

One thread drives every connection (paho's external-loop API over a selector), so a thousand
devices need a thousand sockets, not a thousand threads. Each device connects with its device
id as username, a retained ``offline`` last will on its status topic, and publishes QoS 1 only
under its own topics; the broker's ACL refuses anything else.
"""

from __future__ import annotations

import logging
import selectors
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from core.errors import PublishError
from core.topics import parse_maker_topic, parse_topic, status_topic
from simulator.publisher import NO_MATCHING_SUBSCRIBERS, RESEND_AFTER_S

log = logging.getLogger(__name__)


class DeviceSinks:
    """A Sink that publishes each message over the connection of the device it names."""

    def __init__(
        self,
        host: str,
        port: int,
        prefix: str,
        credentials: dict[str, str],
        *,
        max_pending_per_device: int = 100,
    ) -> None:
        self._prefix = prefix
        self._sel = selectors.DefaultSelector()
        self._clients: dict[str, mqtt.Client] = {}
        self._pending: dict[str, int] = {}
        self.sent = 0
        self.confirmed = 0
        self.refused = 0
        self.no_subscribers = 0  # PUBACK 0x10 answers, each message sent again
        self._bodies: dict[tuple[str, int], tuple[str, bytes, bool]] = {}
        self._resend: list[tuple[float, str, tuple[str, bytes, bool]]] = []
        self._last_misc = 0.0
        self._addr = (host, port)
        self._creds = credentials
        self._max_pending = max_pending_per_device

    # --- connections -------------------------------------------------------------------

    def _make_client(self, device_id: str, secret: str) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv5)
        c.username_pw_set(device_id, secret)
        will = orjson.dumps({"v": 1, "device_id": device_id, "state": "offline"})
        c.will_set(status_topic(self._prefix, device_id), will, qos=1, retain=True)
        c.max_inflight_messages_set(20)
        c.max_queued_messages_set(self._max_pending)

        def on_connect(_c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
            self._state[device_id] = "refused" if rc.is_failure else "connected"
            if rc.is_failure:
                self._why[device_id] = str(rc)

        def on_disconnect(client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
            # unregister this client's socket before its descriptor number is reused
            for key in list(self._sel.get_map().values()):
                if key.data is client:
                    self._sel.unregister(key.fileobj)
            if self._clients.get(device_id) is client and self._state.get(device_id) == "connected":
                self._state[device_id] = "lost"

        def on_publish(_c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
            self._pending[device_id] -= 1
            body = self._bodies.pop((device_id, mid), None)
            if rc.value == NO_MATCHING_SUBSCRIBERS and body is not None:
                # dropped by the broker (no ingest subscribed): send it again shortly
                self.no_subscribers += 1
                self._resend.append((time.monotonic() + RESEND_AFTER_S, device_id, body))
            elif rc.is_failure:
                self.refused += 1
                log.warning("broker refused a message of %s: %s", device_id, rc)
            else:
                self.confirmed += 1

        c.on_connect = on_connect
        c.on_disconnect = on_disconnect
        c.on_publish = on_publish
        return c

    def _open(self, device_id: str) -> None:
        c = self._make_client(device_id, self._creds[device_id])
        self._state[device_id] = "connecting"
        c.connect(*self._addr, keepalive=60)
        sock = c.socket()
        if sock is None:
            raise PublishError(f"device {device_id} has no connection")
        self._sel.register(sock, selectors.EVENT_READ, c)
        self._clients[device_id] = c
        self._pending.setdefault(device_id, 0)

    def connect(self, timeout: float = 60.0) -> DeviceSinks:
        """Connect every device. A device refused at first is tried again for a while: a broker
        that was just told of new credentials reloads its password file asynchronously."""
        self._state: dict[str, str] = {}
        self._why: dict[str, str] = {}
        for device_id in self._creds:
            self._open(device_id)
            self.pump(0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.05)
            states = self._state.values()
            if all(st == "connected" for st in states):
                return self
            if any(st == "connecting" for st in states):
                continue
            for dev, st in list(self._state.items()):
                if st in ("refused", "lost"):
                    time.sleep(0.2)
                    self._open(dev)
        bad = {d: self._why.get(d, st) for d, st in self._state.items() if st != "connected"}
        raise PublishError(
            f"{len(bad)} of {len(self._creds)} devices could not connect, "
            f"e.g. {next(iter(bad.items()))}"
        )

    def pump(self, timeout: float) -> None:
        """Read what the broker sent, write what is waiting, keep connections alive."""
        if not self._sel.get_map():
            time.sleep(timeout)
        for key, _ in self._sel.select(timeout) if self._sel.get_map() else []:
            client: mqtt.Client = key.data
            client.loop_read()
        for client in self._clients.values():
            if client.want_write():
                client.loop_write()
        now = time.monotonic()
        due = [r for r in self._resend if r[0] <= now]
        if due:
            self._resend = [r for r in self._resend if r[0] > now]
            for _, dev, (topic, payload, retain) in due:
                self._publish(dev, topic, payload, retain)
        if now - self._last_misc > 1.0:
            self._last_misc = now
            for client in self._clients.values():
                client.loop_misc()

    # --- the Sink protocol -------------------------------------------------------------

    def send(self, topic: str, payload: bytes, *, retain: bool = False) -> object:
        addr = parse_topic(self._prefix, topic) or parse_maker_topic(self._prefix, topic)
        if addr is None or addr.device_id not in self._clients:
            raise PublishError(f"no device connection for {topic}")
        info = self._publish(addr.device_id, topic, payload, retain)
        self.sent += 1
        self.pump(0)
        return info

    def send_as(self, device_id: str, topic: str, payload: bytes) -> object:
        """Publish on ``device_id``'s connection to any topic (the broker decides whether that
        device may): what a faulty or hostile device would do."""
        info = self._publish(device_id, topic, payload, False)
        self.sent += 1
        self.pump(0)
        return info

    def _publish(self, dev: str, topic: str, payload: bytes, retain: bool) -> object:
        client = self._clients[dev]
        while True:
            info = client.publish(topic, payload, qos=1, retain=retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._pending[dev] += 1
                self._bodies[(dev, info.mid)] = (topic, payload, retain)
                return info
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                self.pump(0.01)  # let acknowledgements in, then try again
                continue
            raise PublishError(
                f"paho could not queue a message of {dev}: {mqtt.error_string(info.rc)}"
            )

    def close(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while (sum(self._pending.values()) > 0 or self._resend) and time.monotonic() < deadline:
            self.pump(0.05)
        unconfirmed = self.sent - self.confirmed
        for dev, client in self._clients.items():
            # a clean disconnect does not fire the will: say offline first
            offline = orjson.dumps({"v": 1, "device_id": dev, "state": "offline"})
            client.publish(status_topic(self._prefix, dev), offline, qos=0, retain=True)
            client.disconnect()
            client.loop_write()
        self._sel.close()
        return unconfirmed
