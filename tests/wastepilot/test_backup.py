"""The restore drill (issue 28): local services of the test's own — a cluster with WAL archived
to a pgBackRest repository, a broker with its identities — and ingest storing readings. A full
backup (`wastepilot backup run`), more readings, an instant T, more readings, then the readings
table dropped by mistake. `wastepilot backup restore --to T` into a fresh cluster: every reading
committed before T is there and none after, the bid-support records and users too, and the
broker's identities come back with the same passwords working."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from bench.chaos import Ingest
from bids import records, registrations
from bids.records import load_reference_councils
from core.brokeradmin import BrokerAdmin
from core.errors import ServiceError
from core.migrate import migrate
from core.registry import Device, add_devices
from core.settings import Settings
from core.topics import readings_topic
from core.wire import format_ts
from simulator.publisher import MqttSink
from tests.helpers import PASSWORD, free_port, wait_for, workshop_body
from wastepilot.localservices import broker, install, services
from wastepilot.localservices import state as localstate

pytestmark = pytest.mark.services


@pytest.fixture
def own(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, dict[str, Any]]]:
    """Local services of the test's own, with backups on (as `services up --backups`)."""
    if settings.mqtt_url or settings.database_url:
        pytest.skip("the services are external: this test makes local ones")
    s = Settings(
        state_dir=tmp_path / "state", pg_port=free_port(), mqtt_port=free_port(), mqtt_tls_port=0
    )
    try:
        yield s, services.up(s, backups=True)
    finally:
        services.down(s)
        paths = localstate.paths_for(s)
        for d in (paths.pg, paths.mqtt, paths.pg.parent / "backup", paths.pg.parent / "restored"):
            shutil.rmtree(d, ignore_errors=True)


def _cli(s: Settings, *args: str) -> str:
    env = {
        **os.environ,
        "WASTEPILOT_STATE_DIR": str(s.state_dir),
        "WASTEPILOT_PG_PORT": str(s.pg_port),
        "WASTEPILOT_MQTT_PORT": str(s.mqtt_port),
        "WASTEPILOT_MQTT_TLS_PORT": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "wastepilot", *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _publish(url: str, prefix: str, device: str, seqs: range) -> None:
    """QoS 1, until the broker has confirmed each (a reading answered 0x10 before ingest
    subscribed is sent again by the sink)."""
    sink = MqttSink(url, f"bk-pub-{uuid.uuid4().hex[:6]}").connect(timeout=30)
    base = time.time() - 3600  # stamped in the last hour, a second apart
    for seq in seqs:
        ts = format_ts(datetime.fromtimestamp(base + seq, UTC))
        body = (
            f'{{"v":1,"device_id":"{device}","seq":{seq},"ts":"{ts}","kind":"run",'
            '"run_s":11.5,"energy_wh":1.9,"water_l":6.2,"peak_a":3.1}'
        ).encode()
        sink.send(readings_topic(prefix, device), body)
    assert sink.close(timeout=60) == 0


def _connects(port: int, username: str, password: str) -> mqtt.ReasonCode | None:
    got: list[mqtt.ReasonCode] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
    c.username_pw_set(username, password)
    c.on_connect = lambda _c, _u, _f, rc, _p: got.append(rc)
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    c.loop_stop()
    c.disconnect()
    return got[0] if got else None


def test_a_dropped_table_is_restored_to_the_instant_before_with_the_brokers_identities(
    own: tuple[Settings, dict[str, Any]],
    mqtt_test_url: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    s, status = own
    owner_url, url = status["database"]["owner_url"], status["database"]["url"]
    migrate(owner_url)
    with psycopg.connect(url, autocommit=True) as conn:
        load_reference_councils(conn)
        add_devices(conn, [Device("BK-1", "HH-BK-1")])
        from core import auth

        auth.add_user(conn, "before-t", "officer", PASSWORD)
        workshop = records.create_workshop(
            conn, workshop_body(status="planned", timezone="Europe/London")
        )
        registrations.register(
            conn, int(workshop["id"]), "E06000002", "Person One", None, "one@council.example.org",
            "before-t",
        )  # fmt: skip
    paths = localstate.paths_for(s)
    with BrokerAdmin(status["mqtt"]["identities"]["admin"]) as admin:
        admin.add_device("BK-1", "the device's own password 1")

    ingest = Ingest(url, mqtt_test_url, prefix, "ingest", tmp_path)
    ingest.start(f"backup-{prefix.split('/')[1]}")

    def stored() -> set[int]:
        with psycopg.connect(url) as conn:
            return {int(r[0]) for r in conn.execute("SELECT seq FROM readings").fetchall()}  # type: ignore[call-overload]

    try:
        _publish(mqtt_test_url, prefix, "BK-1", range(1, 501))  # in the full backup

        def logs() -> str:
            with psycopg.connect(url) as conn:
                dead = conn.execute(
                    "SELECT reason, count(*) FROM dead_letters GROUP BY 1"
                ).fetchall()
            tails = "".join(p.read_text()[-1500:] for p in tmp_path.glob("backup-*.log"))
            return f"dead letters {dead}; {len(stored())} stored; {tails}"

        wait_for(lambda: len(stored()) == 500, 60, "the first readings stored", state=logs)
        out = _cli(s, "backup", "run", "--kind", "full")
        assert "(full) taken" in out, out
        _publish(mqtt_test_url, prefix, "BK-1", range(501, 1001))  # after it: in the archived WAL
        wait_for(lambda: len(stored()) == 1000, 60, "the second readings stored", state=logs)
        time.sleep(1)
        with psycopg.connect(url) as conn:
            t = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        time.sleep(1)
        _publish(mqtt_test_url, prefix, "BK-1", range(1001, 1301))  # after T
        wait_for(lambda: len(stored()) == 1300, 60, "the last readings stored", state=logs)
        with psycopg.connect(url, autocommit=True) as conn:
            auth.add_user(conn, "after-t", "officer", PASSWORD)
    finally:
        ingest.stop()
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("DROP TABLE readings CASCADE")  # the mistake
        conn.execute("SELECT pg_switch_wal()")  # (the archiver has the WAL past T on its way)
    # the device's identity is lost on the broker too
    with BrokerAdmin(status["mqtt"]["identities"]["admin"]) as admin:
        admin.remove("BK-1")
    assert _connects(s.mqtt_port, "BK-1", "the device's own password 1") != 0

    port = free_port()
    into = paths.pg.parent / "restored"  # where the postgres user can reach
    out = _cli(
        s, "backup", "restore", "--to", t.isoformat(), "--into", str(into), "--port", str(port)
    )
    restored = into / "pg" / "run"
    info = f"host={restored} port={port} user=postgres dbname=wastepilot"
    try:
        with psycopg.connect(info) as conn:
            seqs = {int(r[0]) for r in conn.execute("SELECT seq FROM readings").fetchall()}  # type: ignore[call-overload]
            rows = conn.execute("SELECT count(*) FROM readings").fetchone()
            users = {r[0] for r in conn.execute("SELECT username FROM users").fetchall()}
            people = conn.execute("SELECT person_name FROM registrations").fetchall()
            archiving = conn.execute("SHOW archive_mode").fetchone()
        assert seqs == set(range(1, 1001)), (len(seqs), min(seqs), max(seqs))
        assert rows == (1000,)
        assert "before-t" in users and "after-t" not in users
        assert people == [("Person One",)]
        assert archiving == ("off",)  # never a second timeline in the live repository

        # the broker's files of the backup: a broker started on them knows the device again
        assert "broker store and identities" in out, out
        b = Settings(state_dir=tmp_path / "broker-state", mqtt_port=free_port(), mqtt_tls_port=0)
        bpaths = localstate.paths_for(b)
        (bpaths.mqtt / "data").mkdir(parents=True)
        for f in (into / "mosquitto").iterdir():
            shutil.copy2(f, bpaths.mqtt / "data" / f.name)
        broker.mqtt_up(b, bpaths, localstate.local_secrets(paths))  # the services' passwords
        try:
            assert _connects(b.mqtt_port, "BK-1", "the device's own password 1") == 0
            assert _connects(b.mqtt_port, "BK-1", "another password") != 0
        finally:
            broker.mqtt_down(bpaths)
            shutil.rmtree(bpaths.mqtt, ignore_errors=True)
    finally:
        major = install.installed_pg_majors()[0]
        from wastepilot.localservices import postgres

        node = postgres.Node(
            "restored", into / "pg" / "data", restored, into / "pg" / "pg.log", port
        )
        if postgres.node_running(node, major):
            postgres.node_ctl(node, major, "stop")


def test_a_restore_point_without_its_offset_and_an_unknown_backup_kind_are_refused() -> None:
    """A careless operator: an instant without a zone is ambiguous (a restore must be exact),
    and a kind pgBackRest does not know is named back, before anything is touched."""
    for args, says in (
        (["backup", "restore", "--to", "2026-12-02T14:05:00", "--into", "/nonexistent"], "offset"),
        (["backup", "restore", "--to", "yesterday", "--into", "/nonexistent"], "ISO 8601"),
        (["backup", "run", "--kind", "weekly"], "no backup kind 'weekly'"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "wastepilot", *args], capture_output=True, text=True, check=False
        )
        assert proc.returncode != 0, args
        assert says in " ".join((proc.stdout + proc.stderr).split()), proc.stdout + proc.stderr
    assert not Path("/nonexistent").exists()


def test_settings_written_into_postgresql_conf_cannot_break_out_of_their_quotes() -> None:
    """A folder or password with a quote stays one setting; a line break is refused; the
    standby's name (written unquoted into conninfo and replication lists) is an identifier."""
    import pydantic

    from wastepilot.localservices.postgres import _quoted

    assert _quoted("/srv/o'brien backups") == "'/srv/o''brien backups'"
    with pytest.raises(ServiceError):
        _quoted("x'\narchive_command = 'rm -rf /'")
    with pytest.raises(pydantic.ValidationError):
        Settings(db_standby_name="s'\narchive_command='x'")
    s = Settings(backup_dir=Path("/srv/o'brien backups"))
    from wastepilot.localservices.backup import archive_command

    here = Path("/srv/state")  # (not read: the backup folder is given)
    command = archive_command(s, localstate.Paths(here, here / "pg", here / "mosquitto"))
    assert command.startswith("pgbackrest '--config=/srv/o'\"'\"'brien backups/pgbackrest.conf'")
