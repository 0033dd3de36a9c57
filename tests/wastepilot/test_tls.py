"""The local broker's optional TLS listener, with a self-signed pair made by the test: a second
broker is started through the same set-up code on free ports, then used over TLS."""

from __future__ import annotations

import secrets
import socket
import ssl
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core import devices
from core.brokeradmin import BrokerAdmin
from core.mqtturl import parse_mqtt_url
from core.registry import Device
from core.settings import Settings
from core.topics import readings_topic
from ingest.validate import Limits
from tests.helpers import dumps, free_port, reading, wait_for
from wastepilot.localservices import broker
from wastepilot.localservices import state as localstate

pytestmark = pytest.mark.services


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_listener_serves_the_same_users_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    plain_port, tls_port = free_port(), free_port()
    s = Settings(
        state_dir=tmp_path / "state",
        mqtt_port=plain_port,
        mqtt_tls_port=tls_port,
        mqtt_tls_cert_file=cert,
        mqtt_tls_key_file=key,
    )
    paths = localstate.paths_for(s)
    passwords = {u: secrets.token_urlsafe(12) for u in localstate.MQTT_USERS.values()}
    broker.mqtt_up(s, paths, passwords)
    try:
        user = localstate.MQTT_USERS["test"]
        url = f"mqtts://{user}:{passwords[user]}@127.0.0.1:{tls_port}?ca={cert}"
        a = parse_mqtt_url(url)
        assert (a.tls, a.ca_file, a.port) == (True, str(cert), tls_port)
        got = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.username_pw_set(a.username, a.password)
        c.tls_set(ca_certs=a.ca_file)  # the client checks the certificate and the host name
        c.on_message = lambda *_: got.set()
        c.connect(a.host, a.port)
        c.loop_start()
        c.subscribe("wastepilot-test/tls/#", qos=1)
        c.publish("wastepilot-test/tls/x", b"over tls", qos=1).wait_for_publish(5)
        assert got.wait(5), "no message came back over the TLS listener"
        c.disconnect()
        c.loop_stop()
        # a client that trusts only the system's CAs refuses the broker's certificate
        ctx = ssl.create_default_context()
        with (
            socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        broker.mqtt_down(paths)


# --- the local broker's own TLS listener, in its default configuration ------------------------


def tls_context(ca: Path, **over: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    for k, v in over.items():
        setattr(ctx, k, v)
    return ctx


def tls_1_1_client(ca: Path) -> ssl.SSLContext:
    """A client that offers TLS 1.0-1.1 and nothing newer (Python warns that they are
    deprecated: that is the point)."""
    import warnings

    ctx = ssl.create_default_context(cafile=str(ca))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


@pytest.fixture
def local_tls(settings: Settings) -> tuple[int, Path]:
    tls = broker.tls_files(settings, localstate.paths_for(settings))
    if settings.mqtt_url or tls is None or tls[2] is None:
        pytest.skip("the local broker with its local CA")
    return settings.mqtt_tls_port, tls[2]


def test_a_device_publishes_over_tls_and_its_reading_is_stored(
    db: Any, db_url: str, settings: Settings, local_tls: tuple[int, Path],
    start_worker: Callable[..., Any],
) -> None:  # fmt: skip
    """The default local set-up: a device login, over the TLS listener, pinning the local CA
    and checking the host name; ingest (on the internal plain listener) stores the reading."""
    port, ca = local_tls
    admin = settings.broker_admin_url()
    assert admin is not None
    dev = f"T-{uuid.uuid4().hex[:8].upper()}"
    with psycopg.connect(db_url) as conn:
        [login] = devices.register(conn, [Device(dev, f"HH-{dev}")], admin)
    start_worker(  # as the ingest identity: only it may read the pilot's own topics
        mqtt_url=settings.mqtt_url_for("ingest"),
        limits=Limits.from_settings(Settings(), prefix=settings.topic_prefix),
    )
    try:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=dev, protocol=mqtt.MQTTv5)
        c.username_pw_set(dev, login.password)
        c.tls_set_context(tls_context(ca))
        c.connect("localhost", port)
        c.loop_start()
        info = c.publish(readings_topic(settings.topic_prefix, dev), dumps(reading(dev, 1)), qos=1)
        info.wait_for_publish(10)
        wait_for(lambda: db.execute("SELECT count(*) FROM readings WHERE device_id = %s",
                                    (dev,)).fetchone() == (1,), 30, "the reading stored")  # fmt: skip
        c.disconnect()
        c.loop_stop()
    finally:
        with BrokerAdmin(admin) as b:
            b.remove(dev)


def test_the_tls_listener_refuses_another_ca_plaintext_and_tls_1_1(
    settings: Settings, local_tls: tuple[int, Path], tmp_path: Path
) -> None:
    port, ca = local_tls
    # a client trusting another CA refuses the broker's certificate
    other, _ = self_signed(tmp_path)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        tls_context(other).wrap_socket(raw, server_hostname="localhost")
    # plaintext MQTT on the TLS port: no CONNACK, the connection is closed
    connect = bytes.fromhex("101000044d5154540502003c000000037878")  # CONNECT, MQTT 5, "xx"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(connect)
        try:
            answer = raw.recv(16)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"\x20"), answer  # 0x20 would be a CONNACK
    # TLS 1.1 (a client willing to use it and nothing newer) is refused in the handshake
    old = tls_1_1_client(ca)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        old.wrap_socket(raw, server_hostname="localhost")
    # and 1.2 is the lowest it takes
    ok = tls_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ok.wrap_socket(raw, server_hostname="localhost") as s,
    ):
        assert s.version() == "TLSv1.2"
