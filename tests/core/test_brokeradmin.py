"""Device identities on the real broker (dynamic security), attacked the way an intruder or a
careless admin would: subscriptions, other clients' ids, reserved names, concurrency, leftovers.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from api.app import create_app
from core import devices
from core.brokeradmin import BrokerAdmin, encode_password
from core.errors import BrokerAdminError, RegistryError
from core.registry import Device
from core.settings import Settings
from tests.helpers import bearer
from wastepilot.localservices import broker as localbroker
from wastepilot.localservices import state as localstate

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def admin_url(settings: Settings) -> str:
    url = settings.broker_admin_url()
    if url is None:
        pytest.skip("needs the broker's admin identity")
    return url


class Dev:
    """A device's own MQTT connection (username = the login's, client id as given)."""

    def __init__(self, port: int, username: str, password: str, client_id: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.connack: Any = None
        self.disconnected = threading.Event()
        self.suback: list[Any] = []
        self.got_suback = threading.Event()
        self.connected = threading.Event()

        def on_connect(_c: object, _u: object, _f: object, rc: Any, _p: object) -> None:
            self.connack = rc
            self.connected.set()

        def on_subscribe(_c: object, _u: object, _m: object, rcs: list[Any], _p: object) -> None:
            self.suback = rcs
            self.got_suback.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        p = Properties(PacketTypes.CONNECT)
        p.SessionExpiryInterval = 0
        self.client.connect("127.0.0.1", port, properties=p)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def device(db: Conn, db_url: str, admin_url: str, settings: Settings) -> Iterator[tuple[str, str]]:
    dev = f"T-{uuid.uuid4().hex[:8].upper()}"
    with psycopg.connect(db_url) as conn:
        [login] = devices.register(conn, [Device(dev, f"HH-{dev}")], admin_url)
    yield dev, login.password
    with BrokerAdmin(admin_url) as b:
        b.remove(dev)


def test_the_password_encoding_is_the_brokers_own(admin_url: str, settings: Settings) -> None:
    """The initial file's admin hash (written by Python) is one the broker accepts: the local
    wp-admin signs in with it; a hash of another password does not match."""
    secrets_ = localstate.local_secrets(localstate.paths_for(settings))
    stored = json.loads(localbroker.dynsec_file(localstate.paths_for(settings)).read_text())
    admin = next(c for c in stored["clients"] if c["username"] == "wp-admin")
    assert admin["encoded_password"].startswith("$7$")
    with BrokerAdmin(admin_url):
        pass
    salt = b"\x01" * 64
    assert encode_password("one", salt) == encode_password("one", salt)
    assert encode_password("one", salt) != encode_password("two", salt)
    assert (
        secrets_["wp-admin"]
        not in localbroker.dynsec_file(localstate.paths_for(settings)).read_text()
    )


def test_a_device_cannot_subscribe_at_all(device: tuple[str, str], settings: Settings) -> None:
    dev, password = device
    d = Dev(settings.mqtt_port, dev, password, dev)
    try:
        assert not d.connack.is_failure
        filters = [
            f"$share/ingest/{settings.topic_prefix}/devices/+/readings",  # others' readings
            f"{settings.topic_prefix}/devices/{dev}/readings",  # even its own
            "#",
        ]
        d.client.subscribe([(f, 1) for f in filters])
        assert d.got_suback.wait(10)
        assert [rc.is_failure for rc in d.suback] == [True, True, True], d.suback
        assert {str(rc) for rc in d.suback} == {"Not authorized"}
    finally:
        d.close()


def test_a_device_cannot_use_another_client_id(device: tuple[str, str], settings: Settings) -> None:
    """Not ingest's (which would disconnect the worker and, with clean start, delete its
    queued messages), nor another device's."""
    dev, password = device
    for other in (settings.ingest_client_id, "FWD-000001", f"{dev}-2"):
        d = Dev(settings.mqtt_port, dev, password, other)
        try:
            assert d.connack.is_failure, other
        finally:
            d.close()


def test_a_decommissioned_device_is_disconnected_at_once(
    device: tuple[str, str], db_url: str, admin_url: str, settings: Settings
) -> None:
    """The broker drops the device's connection when it is decommissioned, not when the
    connection's keep-alive (60 s, so 90 s with the broker's grace) runs out."""
    dev, password = device
    d = Dev(settings.mqtt_port, dev, password, dev)
    try:
        assert not d.connack.is_failure and not d.disconnected.is_set()
        assert d.client.keepalive >= 60  # so 10 s below is the kick, not the keep-alive
        with psycopg.connect(db_url) as conn:
            devices.decommission(conn, dev, admin_url)
        assert d.disconnected.wait(10), "still connected 10 s after decommissioning"
    finally:
        d.close()
    again = Dev(settings.mqtt_port, dev, password, dev)
    try:
        assert again.connack.is_failure
    finally:
        again.close()


def test_a_reissued_password_replaces_the_old_one_at_once(
    device: tuple[str, str], db_url: str, admin_url: str, settings: Settings
) -> None:
    dev, old = device
    d = Dev(settings.mqtt_port, dev, old, dev)
    try:
        with psycopg.connect(db_url) as conn:
            login = devices.reissue(conn, dev, admin_url)
        assert d.disconnected.wait(2.0), "the old connection was not dropped"
    finally:
        d.close()
    stale, fresh = Dev(settings.mqtt_port, dev, old, dev), None
    try:
        assert stale.connack.is_failure
        fresh = Dev(settings.mqtt_port, dev, login.password, dev)
        assert not fresh.connack.is_failure
    finally:
        stale.close()
        if fresh:
            fresh.close()


@pytest.mark.parametrize("name", ["wp-admin", "wp-ingest", "wp-simulator", "wp-test", "admin",
                                  "fwd-000001", "FWD 1", "-FWD", "$SYS", "A" * 65])  # fmt: skip
def test_reserved_and_malformed_device_ids_are_refused(
    db: Conn, db_url: str, admin_url: str, name: str
) -> None:
    with BrokerAdmin(admin_url) as b:
        before = set(b.usernames())
    with psycopg.connect(db_url) as conn, pytest.raises(RegistryError, match="device id"):
        devices.register(conn, [Device(name, "HH-X")], admin_url)
    with BrokerAdmin(admin_url) as b:
        after = set(b.usernames())
    assert after == before  # no login made, none changed or removed
    assert {"wp-admin", "wp-ingest", "wp-simulator", "wp-test"} <= after
    assert db.execute("SELECT count(*) FROM devices WHERE id = %s", (name,)).fetchone() == (0,)


def test_twenty_concurrent_registrations_give_twenty_working_logins(
    db: Conn, db_url: str, tokens: dict[str, str], settings: Settings
) -> None:
    paths = localstate.paths_for(settings)
    pid = localbroker.mqtt_pid(paths)
    run = uuid.uuid4().hex[:6].upper()
    ids = [f"C{run}-{i:02d}" for i in range(20)]
    app = create_app(Settings(database_url=db_url, db_pool_max=8))
    with TestClient(app, headers=bearer(tokens["admin"])) as api:

        def register(dev: str) -> Any:
            return api.post("/api/v1/devices", json={"device_id": dev, "household": f"H{dev}"})

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(register, [*ids, ids[0], ids[1]]))  # two ids twice
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 20 + [409] * 2, [r.text for r in answers if r.status_code != 201]
    logins = {r.json()["device_id"]: r.json()["mqtt_password"] for r in answers
              if r.status_code == 201}  # fmt: skip
    assert sorted(logins) == ids
    for dev, password in logins.items():
        d = Dev(settings.mqtt_port, dev, password, dev)
        try:
            assert not d.connack.is_failure, dev
        finally:
            d.close()
    assert localbroker.mqtt_pid(paths) == pid  # the broker never stopped
    stored = localbroker.dynsec_file(paths).read_text()
    assert not [p for p in logins.values() if p in stored]  # no plaintext password kept
    assert db.execute("SELECT count(*) FROM devices WHERE id = ANY(%s)", (ids,)).fetchone() == (20,)
    with BrokerAdmin(settings.broker_admin_url() or "") as b:
        b.run({"command": "deleteClient", "username": d} for d in ids)


def test_a_refused_login_leaves_no_device_and_a_leftover_login_is_taken_over(
    db: Conn, db_url: str, admin_url: str, settings: Settings
) -> None:
    dev = f"R-{uuid.uuid4().hex[:8].upper()}"
    # the broker refuses (wrong admin password): the registry keeps nothing
    wrong = admin_url.replace("wp-admin:", "wp-admin:x", 1)
    with psycopg.connect(db_url) as conn, pytest.raises(BrokerAdminError):
        devices.register(conn, [Device(dev, f"HH-{dev}")], wrong)
    assert db.execute("SELECT count(*) FROM devices WHERE id = %s", (dev,)).fetchone() == (0,)
    # a login left behind (a registration whose commit failed after the broker took it):
    # registering the device again takes it over with a new password
    with BrokerAdmin(admin_url) as b:
        b.add_device(dev, "a leftover password nobody knows")
    with psycopg.connect(db_url) as conn:
        [login] = devices.register(conn, [Device(dev, f"HH-{dev}")], admin_url)
    d = Dev(settings.mqtt_port, dev, login.password, dev)
    try:
        assert not d.connack.is_failure
    finally:
        d.close()
    # a commit that fails removes the login it made
    dev2 = f"R-{uuid.uuid4().hex[:8].upper()}"
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "CREATE TEMP TABLE fail_commit (x int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED)"
        )
        conn.execute("INSERT INTO fail_commit VALUES (1), (1)")  # fails only at commit
        with pytest.raises(psycopg.Error):
            devices.register(conn, [Device(dev2, f"HH-{dev2}")], admin_url)
    with BrokerAdmin(admin_url) as b:
        assert dev2 not in b.usernames()
    assert db.execute("SELECT count(*) FROM devices WHERE id = %s", (dev2,)).fetchone() == (0,)
    with BrokerAdmin(admin_url) as b:
        b.remove(dev)


def test_bulk_registration_from_a_sheet_writes_each_login_once(
    db: Conn, db_url: str, admin_url: str, settings: Settings, tmp_path: Any
) -> None:
    """`wastepilot devices import`: all or none, logins written once to a new file (0600)."""
    import os
    import subprocess
    import sys

    run = uuid.uuid4().hex[:6].upper()
    ids = [f"B{run}-{i}" for i in range(3)]
    env = {**os.environ, "WASTEPILOT_DATABASE_URL": db_url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wastepilot", "devices", "import", *args],
                              env=env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    bad = tmp_path / "bad.csv"
    bad.write_text(f"device_id,household\n{ids[0]},HH-B1\nwp-admin,HH-B2\n")
    done = cli(str(bad), "--out", str(tmp_path / "none.csv"))
    assert done.returncode != 0 and "device id" in done.stdout + done.stderr
    assert not (tmp_path / "none.csv").exists()
    assert db.execute("SELECT count(*) FROM devices WHERE id = ANY(%s)", (ids,)).fetchone() == (0,)
    sheet = tmp_path / "devices.csv"
    sheet.write_text("device_id,household,model,cohort\n"
                     + "".join(f"{d},HH-{d},M1,B\n" for d in ids))  # fmt: skip
    out = tmp_path / "logins.csv"
    done = cli(str(sheet), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    rows = [line.split(",") for line in out.read_text().split()[1:]]
    assert [r[0] for r in rows] == ids
    for dev, _user, password in rows:
        d = Dev(settings.mqtt_port, dev, password, dev)
        try:
            assert not d.connack.is_failure
        finally:
            d.close()
    again = cli(str(sheet), "--out", str(out))  # never overwritten: shown once
    assert again.returncode != 0 and "exists" in again.stdout + again.stderr
    assert db.execute(
        "SELECT count(*) FROM households WHERE ref = ANY(%s) AND cohort = 'B'",
        ([f"HH-{d}" for d in ids],),
    ).fetchone() == (3,)
    with BrokerAdmin(admin_url) as b:
        b.run({"command": "deleteClient", "username": d} for d in ids)
