"""The deployment, kept honest without a Docker engine: healthchecks and dependencies in the
compose file, Grafana's provisioning and dashboard queries against the real database, and two
ingest workers plus the API started natively with the compose file's commands and environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from tests.helpers import free_port
from wastepilot.localservices import state as localstate

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/pilot.json").read_text())


def test_every_long_running_service_has_a_healthcheck_and_waits_for_what_it_needs() -> None:
    one_shots = {"migrate", "broker-init", "broker-setup"}
    for name, svc in SERVICES.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in SERVICES, (name, dep)
            expected = "service_completed_successfully" if dep in one_shots else "service_healthy"
            assert cond["condition"] == expected, (name, dep)
        if name in one_shots:  # the others wait for it to complete
            assert svc.get("restart") == "no"
            continue
        assert "healthcheck" in svc, f"{name} has no healthcheck"
    ids = {
        SERVICES[n]["environment"]["WASTEPILOT_INGEST_CLIENT_ID"] for n in ("ingest-1", "ingest-2")
    }
    assert len(ids) == 2  # each worker keeps its own session on the broker
    assert (
        SERVICES["ingest-1"]["environment"]["WASTEPILOT_INGEST_GROUP"]
        == SERVICES["ingest-2"]["environment"]["WASTEPILOT_INGEST_GROUP"]
    )


def test_grafana_is_provisioned_with_the_pilot_dashboard() -> None:
    ds = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/timescaledb.yml").read_text()
    )
    (source,) = ds["datasources"]
    assert source["user"] == "grafana_reader"
    assert source["url"] == "timescaledb:5432"
    board = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/wastepilot.yml").read_text()
    )
    mounts = SERVICES["grafana"]["volumes"]
    assert any(m.endswith(":" + board["providers"][0]["options"]["path"] + ":ro") for m in mounts)
    assert {p["datasource"]["uid"] for p in DASHBOARD["panels"]} == {source["uid"]}
    script = (ROOT / "deploy/timescaledb/grafana-reader.sh").read_text()
    assert "default_transaction_read_only = on" in script
    assert "grafana-reader.sh:/docker-entrypoint-initdb.d/" in " ".join(
        SERVICES["timescaledb"]["volumes"]
    )


def grafana_sql(sql: str) -> str:
    """Grafana's PostgreSQL macros, expanded the way Grafana does for the last seven days."""
    sql = re.sub(r"\$__timeGroupAlias\((\w+),\s*'([^']+)'\)", r"time_bucket('\2', \1) AS time", sql)
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN now() - interval '7 days' AND now()", sql)
    sql = sql.replace("$__timeFrom()", "(now() - interval '7 days')").replace(
        "$__timeTo()", "now()"
    )
    assert "$__" not in sql, sql
    return sql


@pytest.mark.services
def test_dashboard_queries_run_read_only_against_the_database(
    db: psycopg.Connection[tuple[object, ...]],
) -> None:
    from datetime import UTC, datetime, timedelta

    from analytics.rollups import refresh
    from core.registry import Device, add_devices

    add_devices(db, [Device("OPS-1", "HH-OPS")])
    db.execute(
        "INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a) "
        "VALUES (%s, 'OPS-1', 1, 'run', 12, 3, 1.5, 4)",
        (datetime.now(UTC) - timedelta(hours=2),),
    )
    refresh(db, timedelta(days=7), commit_lag=timedelta(0))
    db.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader') "
        "THEN CREATE ROLE grafana_reader NOLOGIN; END IF; END $$"
    )
    db.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader")
    db.execute("SET ROLE grafana_reader")
    try:
        db.execute("SET default_transaction_read_only = on")
        results = {}
        for panel in DASHBOARD["panels"]:
            for target in panel["targets"]:
                results[panel["title"]] = db.execute(grafana_sql(target["rawSql"])).fetchall()
        assert results["Disposer uses per hour (all households)"][0][1] == 1
        assert results["Water to the sewer per hour, litres"][0][1] == 1.5
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            db.execute("DELETE FROM readings")
    finally:
        db.execute("RESET ROLE")
        db.execute("SET default_transaction_read_only = off")


def compose_env(service: str, values: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """A service's command and environment, with ${VAR...} filled from `values` (or, as
    compose does, with the default of ${VAR:-default} when `values` has none)."""
    svc = SERVICES[service]

    def fill(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        return values[name] if name in values or default is None else default

    env = {}
    for k, v in svc["environment"].items():
        env[k] = re.sub(r"\$\{(\w+)(?::-([^}]*))?[^}]*\}", fill, str(v))
    return list(svc["command"]), env


@pytest.fixture
def compose_like(
    db: psycopg.Connection[tuple[object, ...]], db_url: str, settings: Any
) -> Iterator[dict[str, Any]]:
    """ingest-1, ingest-2 and the api as the compose file runs them: the same commands and
    environment, with the hosts, ports and secrets of this machine's services in place of the
    containers' (and a group of this test's own on the broker)."""
    if settings.mqtt_url:
        pytest.skip("runs against the local services")

    secrets_ = localstate.local_secrets(localstate.paths_for(settings))
    db_parts = urlsplit(db_url)
    values = {
        "POSTGRES_PASSWORD": db_parts.password or "",
        "DB_SERVICE_PASSWORD": db_parts.password or "",
        "MQTT_INGEST_PASSWORD": secrets_[localstate.MQTT_USERS["ingest"]],
        "MQTT_ADMIN_PASSWORD": secrets_[localstate.MQTT_USERS["admin"]],
        "MQTT_SIMULATOR_PASSWORD": secrets_[localstate.MQTT_USERS["simulator"]],
    }
    group = f"ops{uuid.uuid4().hex[:6]}"
    exe = str(Path(sys.executable).parent / "wastepilot")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}
    for name in ("broker-setup", "ingest-1", "ingest-2", "api"):
        cmd, env = compose_env(name, values)
        env["WASTEPILOT_DATABASE_URL"] = db_url  # timescaledb:5432/wastepilot -> this machine's
        for key in ("WASTEPILOT_MQTT_URL", "WASTEPILOT_MQTT_ADMIN_URL"):
            if key in env:
                env[key] = env[key].replace("mosquitto:1883", f"127.0.0.1:{settings.mqtt_port}")
        ports[name] = free_port()
        if name.startswith("ingest"):
            env["WASTEPILOT_INGEST_GROUP"] = group
            env["WASTEPILOT_INGEST_CLIENT_ID"] += f"-{group}"
            env["WASTEPILOT_INGEST_SESSION_EXPIRY_S"] = "60"
            env["WASTEPILOT_INGEST_METRICS_PORT"] = str(ports[name])
        else:
            env["WASTEPILOT_API_HOST"] = "127.0.0.1"
            env["WASTEPILOT_API_PORT"] = str(ports[name])
        env["PATH"] = os.environ["PATH"]
        env["WASTEPILOT_STATE_DIR"] = str(settings.state_dir.resolve())
        procs[name] = subprocess.Popen(
            [exe, *cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if name == "broker-setup":  # a one-shot service: the others start after it succeeded
            _, err = procs[name].communicate(timeout=60)
            assert procs.pop(name).returncode == 0, err.decode()
    try:
        yield {"ports": ports, "procs": procs, "admin": values["MQTT_ADMIN_PASSWORD"]}
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
            if p.stderr:
                p.stderr.close()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310  (our own processes)
    try:
        with urllib.request.urlopen(req, timeout=3) as r:  # noqa: S310
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_ready(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


@pytest.mark.services
def test_two_ingest_workers_and_the_api_run_the_compose_way(
    compose_like: dict[str, Any],
    db: psycopg.Connection[tuple[object, ...]],
    settings: Any,
    tokens: dict[str, str],
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from core.registry import Device, add_devices
    from tests.helpers import dumps, reading

    ports = compose_like["ports"]
    for name in ("ingest-1", "ingest-2"):
        wait_ready(f"http://127.0.0.1:{ports[name]}/readyz")
    wait_ready(f"http://127.0.0.1:{ports['api']}/readyz")
    devices = [f"OPS-{i:03d}" for i in range(20)]
    add_devices(db, [Device(d, "HH-OPS-1") for d in devices])
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.username_pw_set("wp-admin", compose_like["admin"])
    pub.connect("127.0.0.1", settings.mqtt_port)
    pub.loop_start()
    infos = [
        pub.publish(f"wastepilot/v1/devices/{d}/readings", dumps(reading(device_id=d, seq=s)), qos=1)
        for d in devices for s in range(1, 51)
    ]  # fmt: skip
    for info in infos:
        info.wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()
    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline and stored < 1000:
        time.sleep(0.5)
        row = db.execute(
            "SELECT count(*), count(DISTINCT (device_id, seq)) FROM readings"
        ).fetchone()
        stored = int(row[0]) if row else 0
    assert row == (1000, 1000)
    written = []
    for name in ("ingest-1", "ingest-2"):
        _, text = get(f"http://127.0.0.1:{ports[name]}/metrics")
        m = re.search(r"^wastepilot_ingest_readings_written_total (\S+)$", text, flags=re.M)
        assert m, text[:500]
        written.append(float(m.group(1)))
    assert sum(written) == 1000
    assert all(w > 0 for w in written), written  # the shared subscription split the load
    code, body = get(
        f"http://127.0.0.1:{ports['api']}/api/v1/households/HH-OPS-1/usage?bucket=1d",
        {"Authorization": f"Bearer {tokens['analyst']}"},
    )
    assert code == 200, body
    assert sum(p["uses"] for p in json.loads(body)["points"]) == 1000
    code, text = get(f"http://127.0.0.1:{ports['api']}/metrics")
    assert (
        'wastepilot_api_requests_total{method="GET",route="/api/v1/households/{ref}/usage",status="200"} 1.0'
        in text
    )
    # device registration works the compose way: the API issues the login as wp-admin, and the
    # device publishes with it
    req = urllib.request.Request(
        f"http://127.0.0.1:{ports['api']}/api/v1/devices",
        data=json.dumps({"device_id": "OPS-NEW-1", "household": "HH-OPS-2"}).encode(),
        headers={"Authorization": f"Bearer {tokens['admin']}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        login = json.loads(r.read())
    dev = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="OPS-NEW-1", protocol=mqtt.MQTTv5)
    dev.username_pw_set(login["mqtt_username"], login["mqtt_password"])
    dev.connect("127.0.0.1", settings.mqtt_port)
    dev.loop_start()
    dev.publish("wastepilot/v1/devices/OPS-NEW-1/readings",
                dumps(reading(device_id="OPS-NEW-1", seq=1)), qos=1).wait_for_publish(10)  # fmt: skip
    dev.disconnect()
    dev.loop_stop()
    deadline = time.monotonic() + 30
    while (
        time.monotonic() < deadline
        and not db.execute("SELECT 1 FROM readings WHERE device_id = 'OPS-NEW-1'").fetchone()
    ):
        time.sleep(0.2)
    assert db.execute("SELECT count(*) FROM readings WHERE device_id = 'OPS-NEW-1'").fetchone() == (
        1,
    )


def test_dockerfile_is_multi_stage_pinned_non_root_and_copies_what_exists() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert len(stages) >= 2
    assert all(re.search(r":\d+\.\d+", image) for image in stages), stages
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    for src in re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M):
        assert (ROOT / src).exists(), src
    # every package of the project is copied into the build
    for package in ("core", "ingest", "simulator", "analytics", "api", "wastepilot"):
        assert f"COPY {package} {package}" in text
