"""The local broker's optional TLS listener, with a self-signed pair made by the test: a second
broker is started through the same set-up code on free ports, then used over TLS."""

from __future__ import annotations

import secrets
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.mqtturl import parse_mqtt_url
from core.settings import Settings
from tests.helpers import free_port
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
