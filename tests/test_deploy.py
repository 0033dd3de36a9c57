"""The deployment files kept honest without a Docker engine (first checks; see issue 9)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import yaml

from core.db import SERVER_PRIVACY_SETTINGS
from core.settings import Settings
from wastepilot.localservices import install

ROOT = Path(__file__).resolve().parent.parent


def test_compose_sets_only_real_settings() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\b(WASTEPILOT_[A-Z0-9_]+)\b", text))
    fields = {f"WASTEPILOT_{n.upper()}" for n in Settings.model_fields}
    assert used, "compose sets no WASTEPILOT_ variables"
    assert used <= fields, used - fields


def test_compose_images_are_pinned() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    images = re.findall(r"^\s*image:\s*(\S+)", text, flags=re.M)
    for image in images:
        if image.startswith("wastepilot"):
            continue
        assert re.search(r":v?\d+\.\d+", image), f"{image} is not pinned to a version"


def test_compose_runs_the_local_broker_version_with_the_same_plugins() -> None:
    """The compose broker is the release the set-up builds, and its configuration loads the
    plugins the set-up builds, from where the image has them (/usr/lib)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    version = ".".join(map(str, install.MOSQUITTO_MIN))
    assert compose["services"]["mosquitto"]["image"] == f"eclipse-mosquitto:{version}-alpine"
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    plugins = re.findall(r"^plugin (\S+)$", conf, flags=re.M)
    assert sorted(plugins) == sorted(f"/usr/lib/{n}" for n in install.MOSQUITTO_PLUGINS.values())
    assert re.search(r"^persistence false$", conf, flags=re.M)
    assert re.search(r"^plugin_opt_flush_period 0$", conf, flags=re.M)
    assert not re.search(r"^(password_file|acl_file) ", conf, flags=re.M)


def test_compose_file_validates_against_the_compose_specification() -> None:
    import shutil
    import subprocess
    import sys

    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    out = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_database_keeps_personal_data_out_of_its_log() -> None:
    """The same server settings as the local cluster's (core/db.py)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["timescaledb"]["command"]
    given = dict(a.split("=", 1) for a in command[2::2])
    assert command[0] == "postgres" and set(command[1::2]) == {"-c"}
    assert {k: given.get(k) for k in SERVER_PRIVACY_SETTINGS} == SERVER_PRIVACY_SETTINGS


def test_compose_services_sign_in_as_the_row_rights_role_and_only_migrate_as_the_owner() -> None:
    """Least privilege (issue 26): every long-running service's database URL names the role the
    init script creates as a member of the group migration 017 grants row rights to; only the
    one-shot `migrate` gets the owner's URL."""
    from wastepilot.localservices.state import APP_GROUP, SERVICE_ROLE

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    owner = services["timescaledb"]["environment"]["POSTGRES_USER"]
    script = "deploy/timescaledb/service-role.sh"
    assert any(script in v for v in services["timescaledb"]["volumes"])
    init = (ROOT / script).read_text()
    assert f"CREATE ROLE {SERVICE_ROLE} LOGIN NOSUPERUSER" in init
    assert f"GRANT {APP_GROUP} TO {SERVICE_ROLE}" in init
    grants = (ROOT / "migrations/017_least_privilege.sql").read_text()
    assert f"ON ALL TABLES IN SCHEMA public TO {APP_GROUP}" in grants
    users = {}
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if "WASTEPILOT_DATABASE_URL" in env:
            users[name] = re.match(r"postgresql://([^:]+):", env["WASTEPILOT_DATABASE_URL"])[1]  # type: ignore[index]
        has_owner = "WASTEPILOT_DATABASE_OWNER_URL" in env
        # migrations, and the guard that switches synchronous replication (ALTER SYSTEM)
        assert has_owner == (name in ("migrate", "db-guard")), name
    assert {"api", "ingest-1", "ingest-2", "scheduler", "migrate"} <= set(users)
    assert set(users.values()) == {SERVICE_ROLE}
    owner_url = services["migrate"]["environment"]["WASTEPILOT_DATABASE_OWNER_URL"]
    assert owner_url.startswith(f"postgresql://{owner}:")


def test_compose_publishes_only_https_the_http_redirect_and_the_devices_tls_port() -> None:
    """TLS at every edge (issue 27): the host sees 80 (redirects), 443 (the proxy) and 8883
    (the broker's TLS listener), nothing else; the API and Grafana are reached only through the
    proxy, which forwards to the compose services' own names and ports; the broker's 8883 is a
    TLS listener and its plain 1883 is not published."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    published = {}
    for name, svc in compose["services"].items():
        for entry in svc.get("ports", []):
            host, _, container = str(entry).rpartition(":")
            published[int(host.rsplit(":", 1)[-1])] = (name, int(container))
    assert published == {80: ("proxy", 80), 443: ("proxy", 443), 8883: ("mosquitto", 8883)}
    caddy = (ROOT / "deploy/caddy/Caddyfile").read_text()
    assert "{$PROXY_API:api:8080}" in caddy and "{$PROXY_GRAFANA:grafana:3000}" in caddy
    assert compose["services"]["api"]["command"] == ["api"]
    # the API believes forwarded addresses from the proxy, and only from it
    proxy_ip = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    assert compose["services"]["api"]["environment"]["WASTEPILOT_API_TRUSTED_PROXIES"] == proxy_ip
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]

    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(subnet)
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    blocks = {b.split("\n", 1)[0].strip(): b for b in re.split(r"^listener ", conf, flags=re.M)[1:]}
    assert set(blocks) == {"1883", "8883"}
    assert "certfile /mosquitto/certs/broker.pem" in blocks["8883"]
    assert "keyfile /mosquitto/certs/broker-key.pem" in blocks["8883"]
    assert "tls_version tlsv1.2" in blocks["8883"]
    assert "certfile" not in blocks["1883"].split("\nplugin", 1)[0]
    mounts = compose["services"]["mosquitto"]["volumes"]
    assert "./deploy/certs:/mosquitto/certs:ro" in mounts


def test_compose_runs_a_synchronous_standby_the_guard_and_backups_as_the_code_expects() -> None:
    """A lost disk loses nothing (issue 28): every service reaches the database through both
    nodes, taking the writable one; the primary makes commits wait for the standby the guard
    watches (by the application_name the standby streams as); WAL goes to the stanza the local
    backups use; the backup service copies the broker's files the local backups copy."""
    from urllib.parse import parse_qs, urlsplit

    from wastepilot.localservices import backup

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, svc in services.items():
        env = svc.get("environment") or {}
        for key in ("WASTEPILOT_DATABASE_URL", "WASTEPILOT_DATABASE_OWNER_URL"):
            if key in env:
                where = env[key].rsplit("@", 1)[1]  # (the password holds a compose ${...:?...})
                hosts, _, rest = where.partition("/")
                assert hosts.split(",") == ["timescaledb:5432", "timescaledb-standby:5432"], name
                assert parse_qs(urlsplit("/" + rest).query) == {
                    "target_session_attrs": ["read-write"]
                }, name
    name = Settings().db_standby_name
    assert f"application_name={name}" in (ROOT / "deploy/timescaledb/standby.sh").read_text()
    init = (ROOT / "deploy/timescaledb/replication.sh").read_text()
    from core.replication import synchronous_names

    assert f"synchronous_standby_names = '{synchronous_names(name)}'" in init
    assert any("replication.sh" in v for v in services["timescaledb"]["volumes"])
    assert services["timescaledb-standby"]["entrypoint"] == ["standby.sh"]
    assert services["timescaledb"]["entrypoint"] == ["primary.sh"]  # fenced after a failover
    dockerfile_copies = (ROOT / "deploy/timescaledb/Dockerfile").read_text()
    for script in ("primary.sh", "standby.sh", "backup-loop.sh"):
        assert script in dockerfile_copies and (ROOT / "deploy/timescaledb" / script).exists()
    assert services["db-guard"]["command"] == ["db", "guard"]
    command = services["timescaledb"]["command"]
    given = dict(a.split("=", 1) for a in command[2::2])
    assert given["archive_mode"] == "on" and given["archive_timeout"] == "60"
    assert f"--stanza={backup.STANZA} archive-push %p" in given["archive_command"]
    conf = (ROOT / "deploy/timescaledb/pgbackrest.conf").read_text()
    assert f"[{backup.STANZA}]" in conf
    loop = (ROOT / "deploy/timescaledb/backup-loop.sh").read_text()
    assert f"/mosquitto/data/{backup.STORE}" in loop and "dynamic-security.json" in loop
    volumes = services["backup"]["volumes"]
    assert "mqttdata:/mosquitto/data:ro" in volumes and "pgbackup:/var/lib/pgbackrest" in volumes
    assert "pgbackup:/var/lib/pgbackrest" in services["timescaledb"]["volumes"]
    dockerfile = (ROOT / "deploy/timescaledb/Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert base and re.search(r":\d+\.\d+", base[1]), "the database image's base is not pinned"


def test_prometheus_scrapes_the_services_and_alerts_only_on_metrics_the_code_has() -> None:
    """Every scrape target is a compose service on the port its settings give it; every metric
    an alert rule names is registered somewhere in the code (a renamed metric would silence an
    alert without anyone noticing)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    ports = {
        "ingest-1": services["ingest-1"]["environment"]["WASTEPILOT_INGEST_METRICS_PORT"],
        "ingest-2": services["ingest-2"]["environment"].get(
            "WASTEPILOT_INGEST_METRICS_PORT",
            services["ingest-1"]["environment"]["WASTEPILOT_INGEST_METRICS_PORT"],
        ),
        "scheduler": services["scheduler"]["environment"]["WASTEPILOT_SCHEDULER_METRICS_PORT"],
        "db-guard": services["db-guard"]["environment"]["WASTEPILOT_DB_GUARD_METRICS_PORT"],
        "api": str(Settings().api_port),
    }
    targets = [
        t for job in prom["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    assert sorted(targets) == sorted(f"{name}:{port}" for name, port in ports.items())
    assert "/etc/prometheus:ro" in " ".join(services["prometheus"]["volumes"])
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    from fastapi import FastAPI

    from api.metrics import instrument
    from ingest.metrics import IngestMetrics
    from wastepilot.commands.db import GuardMetrics
    from wastepilot.commands.scheduler import SchedulerMetrics

    known = {"up"}
    registries = [IngestMetrics().registry, SchedulerMetrics().registry, GuardMetrics().registry]
    for registry in [*registries, instrument(FastAPI())]:
        for family in registry.collect():
            known |= {family.name, f"{family.name}_total"}
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert any("wastepilot_broker_unstored_messages" in e for e in exprs)
    assert any("wastepilot_db_sync_replication_degraded" in e for e in exprs)
    for expr in exprs:
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # label matchers and ranges out
        names = set(re.findall(r"\b[a-z_]+\b", bare)) - {"max", "min", "increase"}
        assert names <= known, (expr, names - known)


def test_compose_archives_old_readings_where_the_api_can_read_and_erase_them() -> None:
    """The scheduler archives into a volume the API mounts at the same place (the usage series
    read the files; a household's erasure rewrites them), and the image makes that folder the
    service user's own (a named volume takes its owner from the image's folder)."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    where = Settings.model_fields["archive_dir"]
    assert where.default is None
    for name in ("scheduler", "api"):
        env, volumes = services[name]["environment"], services[name]["volumes"]
        assert env["WASTEPILOT_ARCHIVE_DIR"] == "/var/lib/wastepilot/archive", name
        assert "archive:/var/lib/wastepilot/archive" in volumes, name
    assert int(services["scheduler"]["environment"]["WASTEPILOT_ARCHIVE_AFTER_MONTHS"]) >= 13
    assert "WASTEPILOT_ARCHIVE_AFTER_MONTHS" not in services["api"]["environment"]
    assert "archive" in yaml.safe_load((ROOT / "docker-compose.yml").read_text())["volumes"]
    docker = (ROOT / "Dockerfile").read_text()
    assert "chown wastepilot /var/lib/wastepilot/archive" in docker
    assert docker.index("chown wastepilot /var/lib/wastepilot/archive") < docker.index(
        "USER wastepilot"
    )
