"""`services up` against the machine's real services: idempotent, quick, nothing changed."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from core.settings import Settings
from wastepilot.localservices import broker
from wastepilot.localservices import state as localstate

pytestmark = pytest.mark.services


def _snapshot(paths: localstate.Paths) -> dict[str, float]:
    files = [
        paths.mqtt_conf,
        broker.dynsec_file(paths),
        paths.mqtt / broker.PROVISIONED,
        paths.pg_data / "wastepilot.conf",
        paths.state / "local.json",
        paths.mqtt_pid,
        paths.pg_data / "postmaster.pid",
    ]
    return {str(f): f.stat().st_mtime for f in files}


def test_services_up_again_installs_nothing_and_changes_nothing(settings: Settings) -> None:
    """On a ready machine `services up` only looks: no package installed, no build, no file
    or process touched. (How long it takes is bench/services.py's figure.)"""
    paths = localstate.paths_for(settings)
    before = _snapshot(paths)
    pid = paths.mqtt_pid.read_text()
    out = subprocess.run(
        [sys.executable, "-m", "wastepilot", "services", "up"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "running" in out.stdout
    # every step of the set-up (apt-get, a build, initdb, a start, a restart) logs a line
    assert "wastepilot.localservices" not in out.stderr, out.stderr
    assert _snapshot(paths) == before
    assert paths.mqtt_pid.read_text() == pid


def test_status_json_gives_working_urls(settings: Settings) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wastepilot", "services", "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    st = json.loads(out.stdout)
    assert st["database"]["running"] and st["mqtt"]["running"]
    assert st["database"]["timescaledb_installed"]
    with psycopg.connect(st["database"]["url"]) as conn:  # the services' role
        row = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        assert row is not None
    with psycopg.connect(st["database"]["owner_url"]) as conn:  # the owner (migrations)
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
        assert preload is not None and "timescaledb" in str(preload[0])
    assert set(st["mqtt"]["identities"]) == {"ingest", "simulator", "admin", "test"}
    assert st["mqtt"]["identities"]["ingest"].startswith("mqtt://wp-ingest:")


def test_migrated_database_runs_timescaledb(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        lic = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
        assert lic is not None and lic[0] in ("apache", "timescale")
        ext = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        assert ext is not None


def test_local_broker_runs_the_deploy_tuning(settings: Settings) -> None:
    conf = localstate.paths_for(settings).mqtt_conf.read_text()
    deploy = (Path(localstate.DEPLOY_DIR) / "mosquitto/mosquitto.conf").read_text()
    keys = ("max_queued_messages", "max_inflight_messages", "persistence", "allow_anonymous",
            "max_connections")  # fmt: skip
    for key in keys:
        line = next(ln for ln in deploy.splitlines() if ln.startswith(key + " "))
        assert line in conf.splitlines()


def test_every_listener_limits_its_connections_below_the_brokers_file_limit(
    settings: Settings, tmp_path: Path
) -> None:
    """Each listener (the TLS one too) has the same max_connections, and the running broker
    may open more files than all listeners together (a connection is a file)."""
    paths = localstate.paths_for(settings)
    tls = Settings(mqtt_tls_port=8883, mqtt_tls_cert_file=tmp_path / "c.pem",
                   mqtt_tls_key_file=tmp_path / "k.pem")  # fmt: skip
    for text in (paths.mqtt_conf.read_text(), broker.render_mosquitto_conf(tls, paths)):
        blocks = re.split(r"^listener ", text, flags=re.M)[1:]
        assert blocks
        limits = [re.search(r"^max_connections (\d+)$", b, flags=re.M) for b in blocks]
        assert all(limits), text
        total = sum(int(m.group(1)) for m in limits if m)
    pid = int(paths.mqtt_pid.read_text().strip())
    soft = next(ln for ln in Path(f"/proc/{pid}/limits").read_text().splitlines()
                if ln.startswith("Max open files")).split()[3]  # fmt: skip
    assert total < int(soft), (total, soft)


def test_a_connection_that_never_sends_connect_is_closed_by_the_broker(settings: Settings) -> None:
    """An idle TCP socket on the broker costs it a file for at most ~30 s (Mosquitto's built-in
    deadline for a new connection); the test waits up to 90 s."""
    sock = socket.create_connection(("127.0.0.1", settings.mqtt_port), timeout=90)
    try:
        assert sock.recv(1) == b""  # closed by the broker, not by the time-out
    finally:
        sock.close()


def test_run_revives_a_local_broker_that_died(settings: Settings) -> None:
    """`wastepilot run` checks its local services every few seconds; a broker killed outright
    (as a segfault would) is started again, with its persisted sessions, and answers."""
    from wastepilot.commands.run import revive
    from wastepilot.localservices.state import port_open

    if settings.mqtt_url:
        pytest.skip("the broker is external")
    paths = localstate.paths_for(settings)
    assert revive(settings) == [], "nothing should be restarted while everything runs"
    pid = broker.mqtt_pid(paths)
    assert pid is not None
    subprocess.run(["kill", "-9", str(pid)], check=True)
    deadline = time.monotonic() + 10
    while port_open("127.0.0.1", settings.mqtt_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert broker.mqtt_pid(paths) is None
    assert revive(settings) == ["broker"]
    new_pid = broker.mqtt_pid(paths)
    assert new_pid is not None and new_pid != pid
    assert port_open("127.0.0.1", settings.mqtt_port)
    assert revive(settings) == []


def test_a_state_folder_made_again_at_the_same_path_does_not_inherit_the_last_ones_files(
    tmp_path: Path,
) -> None:
    """The folder under /var/lib/wastepilot is named from the state folder's path: a fresh state
    folder at a path used before (a new clone, a test's temporary folder whose name comes round
    again) must not find the last one's broker and database files, whose passwords it lacks —
    the cause of a TLS test's random "Not authorized"."""
    state, base = tmp_path / "state", tmp_path / "base"
    state.mkdir()
    (base / "mosquitto").mkdir(parents=True)
    (base / "mosquitto" / "dynamic-security.json").write_text("{the last one's admin}")
    localstate.claim(state, base)
    assert not (base / "mosquitto").exists()  # the stale files went
    assert (state / localstate.OWNER_FILE).read_text() == (base / localstate.OWNER_FILE).read_text()
    (base / "mosquitto").mkdir()
    localstate.claim(state, base)  # its own: kept
    assert (base / "mosquitto").exists()
    # a state folder from before the token, with its identities, adopts its base
    old, old_base = tmp_path / "old", tmp_path / "old-base"
    old.mkdir()
    (old / localstate.LOCAL_FILE).write_text("{}")
    (old_base / "pg").mkdir(parents=True)
    localstate.claim(old, old_base)
    assert (old_base / "pg").exists()
    # another state folder's base (its token differs) is not used
    (state / localstate.OWNER_FILE).write_text("someone-else")
    localstate.claim(state, base)
    assert not (base / "mosquitto").exists()
