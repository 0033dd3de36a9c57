"""Broker identities and rights, kept by Mosquitto's dynamic-security plugin and managed over its
control topic (``$CONTROL/dynamic-security/v1``) — the same for the local broker and compose.

Every device is its own broker client: username = client id = device id (the broker refuses
any other client id for it), role ``device`` (publish its own readings and status topics,
nothing else: no subscription at all), or for a maker's kind ``device-<kind>`` (publish under
its own ``<prefix>/<family>/<id>/`` tree only). Service identities (``wp-ingest``, ``wp-simulator``,
``wp-test``) get roles with only what they need; ``wp-admin`` may use the control topic.
Deleting a client makes the broker drop its live connection at its next network loop.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.errors import BrokerAdminError
from core.mqtturl import parse_mqtt_url
from core.topics import FAMILIES, KIND_FAMILY, V1_KIND, ingest_filters, maker_root

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
# PBKDF2-SHA512 as Mosquitto's own `$7$` format (libcommon/password_common.c): 64-byte salt
PBKDF2_ITERATIONS = 101
SERVICE_USERS = {"ingest": "wp-ingest", "simulator": "wp-simulator", "admin": "wp-admin",
                 "test": "wp-test"}  # fmt: skip


# The dynamic-security plugin's error texts this code expects (a field of its answers, compared
# whole; BrokerAdminError.broker_error carries any other).
CLIENT_EXISTS = "Client already exists"
CLIENT_NOT_FOUND = "Client not found"
ROLE_EXISTS = "Role already exists"


def encode_password(password: str, salt: bytes | None = None) -> str:
    """A password as the broker stores it (``$7$iterations$salt$hash``, PBKDF2-SHA512)."""
    salt = salt if salt is not None else secrets.token_bytes(64)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


@dataclass(frozen=True, slots=True)
class Acl:
    acltype: str  # publishClientSend | publishClientReceive | subscribePattern | ...
    topic: str
    allow: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow, "priority": 0}


def _readwrite(topic: str) -> list[Acl]:
    """Publish, receive and subscribe (plainly or through any shared group) under ``topic``."""
    return [
        Acl("publishClientSend", topic),
        Acl("publishClientReceive", topic),
        Acl("subscribePattern", topic),
        Acl("subscribePattern", f"$share/+/{topic}"),
    ]


def roles(prefix: str, *, test_root: str | None = None) -> dict[str, list[Acl]]:
    """Each role's rights under the topic ``prefix`` (a test root adds the test identity's)."""
    devices = f"{prefix}/devices"
    out = {
        # a device: its own two topics (%u is the username = the device id), nothing else
        "device": [
            Acl("publishClientSend", f"{devices}/%u/readings"),
            Acl("publishClientSend", f"{devices}/%u/status"),
        ],
        # a device of a maker's kind: its own tree in its family's layout, nothing else
        **{
            device_role(kind): [Acl("publishClientSend", f"{maker_root(prefix, family, '%u')}/#")]
            for kind, family in KIND_FAMILY.items()
            if family
        },
        # ingest reads what it subscribes to (core/topics.py ingest_filters: every device's
        # readings and status, and each maker family's tree), plainly or through its shared
        # group, and uses its own watchdog probe topic
        "ingest": [
            *(Acl("subscribePattern", f) for f in ingest_filters(prefix)),
            *(Acl("subscribePattern", f"$share/+/{f}") for f in ingest_filters(prefix)),
            *_readwrite(f"{prefix}/ingest/#"),
            # the broker's store counts: what it holds that is not stored yet (ingest/exposure.py)
            Acl("subscribeLiteral", "$SYS/broker/store/messages/count"),
            Acl("subscribeLiteral", "$SYS/broker/retained messages/count"),
        ],
        # the simulator publishes for any device
        "simulator": [
            Acl("publishClientSend", f"{devices}/+/readings"),
            Acl("publishClientSend", f"{devices}/+/status"),
            *(Acl("publishClientSend", f"{prefix}/{family}/+/#") for family in FAMILIES),
        ],
        # tools: the whole prefix and the control topic
        "admin": [*_readwrite(f"{prefix}/#"), *_readwrite("$CONTROL/dynamic-security/#")],
    }
    if test_root:
        out["test"] = _readwrite(f"{test_root}/#")
    return out


def initial_config(admin_password: str, prefix: str) -> dict[str, Any]:
    """The dynamic-security file a new broker starts from: deny by default, and only the admin
    identity, which then sets up the rest over the control topic (:meth:`BrokerAdmin.provision`)."""
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            {
                "username": SERVICE_USERS["admin"],
                "textname": "wastepilot administration (CLI and API)",
                "encoded_password": encode_password(admin_password),
                "roles": [{"rolename": "admin", "priority": -1}],
            }
        ],
        "groups": [],
        "roles": [{"rolename": "admin", "acls": [a.as_json() for a in roles(prefix)["admin"]]}],
    }


def device_role(kind: str = V1_KIND) -> str:
    """The role of a device of ``kind``: ``device`` for the v1 contract, ``device-<kind>`` for a
    maker's format (rights on its family's topics only)."""
    return "device" if kind == V1_KIND else f"device-{kind}"


def device_command(device_id: str, password: str, kind: str = V1_KIND) -> dict[str, Any]:
    """The command that makes a device's login: its id as username and only possible client
    id, the role of its kind."""
    return {
        "command": "createClient",
        "username": device_id,
        "clientid": device_id,
        "password": password,
        "roles": [{"rolename": device_role(kind), "priority": -1}],
    }


class BrokerAdmin:
    """A connection to the broker's dynamic-security control topic. Use as a context manager;
    each call sends one or more commands and waits for their answers (in order)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.addr = parse_mqtt_url(url)
        self.timeout = timeout
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"wastepilot-admin-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        if self.addr.username:
            self._client.username_pw_set(self.addr.username, self.addr.password)
        if self.addr.tls:
            self._client.tls_set(ca_certs=self.addr.ca_file)
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._ready = threading.Event()
        self._refused: str | None = None
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_a: self._ready.set()
        self._client.on_message = self._on_message

    # --- connection --------------------------------------------------------------------------
    def __enter__(self) -> BrokerAdmin:
        try:
            self._client.connect(self.addr.host, self.addr.port, keepalive=30)
        except OSError as exc:
            raise BrokerAdminError(
                f"cannot reach the broker at {self.addr.host}:{self.addr.port}: {exc}"
            ) from exc
        self._client.loop_start()
        if not self._ready.wait(self.timeout) or self._refused:
            self.close()
            raise BrokerAdminError(
                "the broker did not accept the admin identity "
                f"({self._refused or 'no answer'}); check WASTEPILOT_MQTT_ADMIN_URL"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, rc: Any, _p: object) -> None:
        if rc.is_failure:
            self._refused = str(rc)
            self._ready.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            answers = json.loads(msg.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable answer on %s", msg.topic)
            return
        for answer in answers:
            key = str(answer.get("correlationData", ""))
            with self._lock:
                waiting = self._waiting.get(key)
            if waiting is not None:
                waiting[1].append(answer)
                waiting[0].set()

    # --- commands ----------------------------------------------------------------------------
    def run(self, commands: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send commands; their answers in order (each may carry ``error``)."""
        cmds = [dict(c, correlationData=uuid.uuid4().hex) for c in commands]
        slots: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {
            c["correlationData"]: (threading.Event(), []) for c in cmds
        }
        with self._lock:
            self._waiting.update(slots)
        try:
            info = self._client.publish(CONTROL_TOPIC, json.dumps({"commands": cmds}), qos=1)
            try:
                info.wait_for_publish(self.timeout)
            except (RuntimeError, ValueError) as exc:  # paho: not connected, or queue full
                raise BrokerAdminError(f"could not send to the broker: {exc}") from exc
            answers = []
            for c in cmds:
                ev, got = slots[c["correlationData"]]
                if not ev.wait(self.timeout):
                    raise BrokerAdminError(f"the broker did not answer {c['command']!r}")
                answers.append(got[0])
            return answers
        finally:
            with self._lock:
                for key in slots:
                    self._waiting.pop(key, None)

    def one(self, command: dict[str, Any], *, ok_errors: tuple[str, ...] = ()) -> dict[str, Any]:
        """Send one command; raise on an error the plugin answers other than ``ok_errors`` (its
        error texts, compared whole: CLIENT_EXISTS, ...)."""
        answer = self.run([command])[0]
        err = answer.get("error")
        if err and str(err) not in ok_errors:
            raise BrokerAdminError(f"{command['command']}: {err}", broker_error=str(err))
        return answer

    # --- what the product does with it -------------------------------------------------------
    def provision(self, prefix: str, passwords: dict[str, str], *, test_root: str | None) -> None:
        """Make the roles and the service identities what this version of the product needs:
        created if missing, rights and passwords brought up to date (idempotent). The admin
        role is the initial file's: the broker drops the connections of a changed role's clients,
        this one's included."""
        for name, acls in roles(prefix, test_root=test_root).items():
            if name == "admin":
                continue
            body = [a.as_json() for a in acls]
            answer = self.one(
                {"command": "createRole", "rolename": name, "acls": body},
                ok_errors=(ROLE_EXISTS,),
            )
            if answer.get("error"):
                self.one({"command": "modifyRole", "rolename": name, "acls": body})
        for role, user in SERVICE_USERS.items():
            if role == "admin" or role not in passwords:
                continue
            spec = {"username": user, "password": passwords[role],
                    "roles": [{"rolename": role, "priority": -1}]}  # fmt: skip
            answer = self.one({"command": "createClient", **spec}, ok_errors=(CLIENT_EXISTS,))
            if answer.get("error"):
                self.one({"command": "modifyClient", **spec})

    def add_device(self, device_id: str, password: str, kind: str = V1_KIND) -> None:
        """A device's login: its id as username and only possible client id, its kind's role."""
        self.one(device_command(device_id, password, kind))

    def set_password(self, username: str, password: str) -> None:
        """A new password; the client's live connection is dropped, so it must use the new one."""
        self.one({"command": "setClientPassword", "username": username, "password": password})
        self.one({"command": "disableClient", "username": username})
        self.one({"command": "enableClient", "username": username})

    def remove(self, username: str) -> bool:
        """Delete a login (its live connection is dropped); False if there was none."""
        answer = self.one(
            {"command": "deleteClient", "username": username}, ok_errors=(CLIENT_NOT_FOUND,)
        )
        return not answer.get("error")

    def clear_retained(self, topic: str) -> None:
        """Delete the message the broker retains on ``topic`` (an empty retained message)."""
        info = self._client.publish(topic, b"", qos=1, retain=True)
        try:
            info.wait_for_publish(self.timeout)
        except (RuntimeError, ValueError) as exc:  # paho: not connected, or queue full
            raise BrokerAdminError(f"could not send to the broker: {exc}") from exc
        if not info.is_published():
            raise BrokerAdminError(f"the broker did not acknowledge clearing {topic!r}")

    def usernames(self) -> list[str]:
        """Every login the broker knows."""
        answer = self.one({"command": "listClients", "verbose": False, "count": -1})
        clients = answer.get("data", {}).get("clients", [])
        return [c if isinstance(c, str) else str(c.get("username")) for c in clients]
