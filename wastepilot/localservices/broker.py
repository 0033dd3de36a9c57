"""The private Mosquitto under the state folder: configuration, start and stop, and the set-up of
its roles and service identities (dynamic security, over the control topic: core/brokeradmin.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import time
from pathlib import Path

from core.brokeradmin import SERVICE_USERS, BrokerAdmin, initial_config, roles
from core.errors import ServiceError
from core.mqtturl import MqttAddress
from core.settings import Settings
from wastepilot.localservices import certs, install
from wastepilot.localservices.state import (
    DEPLOY_DIR,
    TEST_TOPIC_ROOT,
    Paths,
    chown_tree,
    has_user,
    port_open,
    wait_until,
    write_if_changed,
)

log = logging.getLogger(__name__)

PROVISIONED = "provisioned.sha256"


def dynsec_file(paths: Paths) -> Path:
    """The dynamic-security plugin's own file (identities, roles), kept by the broker."""
    return paths.mqtt / "data" / "dynamic-security.json"


def render_mosquitto_conf(settings: Settings, paths: Paths) -> str:
    """The deploy config with the local paths and port: one source for the broker's tuning."""
    text = (DEPLOY_DIR / "mosquitto/mosquitto.conf").read_text()
    dynsec = install.mosquitto_plugin("mosquitto_dynamic_security.so")
    sqlite = install.mosquitto_plugin("mosquitto_persist_sqlite.so")
    replace = {
        r"^listener 1883$": f"listener {settings.mqtt_port} 127.0.0.1",
        r"^plugin /usr/lib/mosquitto_dynamic_security\.so$": f"plugin {dynsec}",
        r"^plugin_opt_config_file .*$": f"plugin_opt_config_file {dynsec_file(paths)}",
        r"^plugin /usr/lib/mosquitto_persist_sqlite\.so$": f"plugin {sqlite}",
        r"^persistence_location .*$": f"persistence_location {paths.mqtt / 'data'}/",
        r"^log_dest .*$": f"log_dest file {paths.mqtt_log}",
    }
    if settings.mqtt_tls_port:
        tls_dir = paths.mqtt / "tls"  # copies the broker can read (mqtt_up)
        replace |= {
            r"^listener 8883$": f"listener {settings.mqtt_tls_port} 127.0.0.1",
            r"^certfile .*$": f"certfile {tls_dir / 'cert.pem'}",
            r"^keyfile .*$": f"keyfile {tls_dir / 'key.pem'}",
        }
    else:  # no TLS listener: the block goes, from its listener line to the end of the block
        text = re.sub(r"^listener 8883$.*?(?=^\s*$|^#|\Z)", "", text, flags=re.M | re.S)
    for pattern, line in replace.items():
        text, n = re.subn(pattern, line, text, flags=re.M)
        if n != 1:
            raise ServiceError(f"deploy/mosquitto/mosquitto.conf has no single {pattern!r} line")
    text += f"pid_file {paths.mqtt_pid}\n"
    return text


def mqtt_pid(paths: Paths) -> int | None:
    try:
        pid = int(paths.mqtt_pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:
        text = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    if state in ("Z", "X"):  # dead, its sockets closed; only its parent has not reaped it
        return None
    # an empty command line is a broker on its way out (a kill -9 of a big one frees its memory
    # before it closes its sockets): still there until it is gone
    if text and b"mosquitto" not in text:
        return None
    return pid


def tls_files(settings: Settings, paths: Paths) -> tuple[Path, Path, Path | None] | None:
    """The TLS listener's certificate and key, and the CA clients pin (None: a public CA's or
    the operator's, not known here); None without a TLS port. Without the operator's files, a
    local CA under the state folder issues one for localhost and 127.0.0.1, renewed when it
    has less than 30 days left (wastepilot/localservices/certs.py)."""
    if not settings.mqtt_tls_port:
        return None
    if settings.mqtt_tls_cert_file and settings.mqtt_tls_key_file:
        return settings.mqtt_tls_cert_file, settings.mqtt_tls_key_file, None
    folder = paths.state / "tls"
    cert, key = folder / "broker.pem", folder / "broker-key.pem"
    if not (cert.exists() and key.exists()) or certs.expires_within(cert, days=30):
        certs.issue_server(folder, ["localhost", "127.0.0.1"])
    return cert, key, folder / certs.CA_CERT


def mqtt_up(settings: Settings, paths: Paths, passwords: dict[str, str]) -> None:
    """Configure and start the private broker, then bring its roles and service identities up to
    date (only when they changed: the broker keeps them, and every device's login, itself). A
    new TLS certificate alone is taken by a reload (SIGHUP), not a restart: no connection is
    dropped."""
    (paths.mqtt / "data").mkdir(parents=True, exist_ok=True)
    tls_changed = False
    tls = tls_files(settings, paths)
    if tls is not None:
        (paths.mqtt / "tls").mkdir(exist_ok=True)
        for src, name in ((tls[1], "key.pem"), (tls[0], "cert.pem")):
            tls_changed = (
                write_if_changed(paths.mqtt / "tls" / name, src.read_text()) or tls_changed
            )
            (paths.mqtt / "tls" / name).chmod(0o600)
    conf_changed = write_if_changed(paths.mqtt_conf, render_mosquitto_conf(settings, paths))
    if not dynsec_file(paths).exists():
        config = initial_config(passwords[SERVICE_USERS["admin"]], settings.topic_prefix)
        dynsec_file(paths).write_text(json.dumps(config, indent=2))
        dynsec_file(paths).chmod(0o600)
        (paths.mqtt / PROVISIONED).unlink(missing_ok=True)
    if has_user("mosquitto"):
        chown_tree(paths.mqtt, "mosquitto")
    pid = mqtt_pid(paths)
    if pid is not None and conf_changed:
        log.info("broker configuration changed: restarting Mosquitto")
        mqtt_down(paths)
        pid = None
    elif pid is not None and tls_changed:
        log.info("broker certificate changed: reloading Mosquitto")
        os.kill(pid, signal.SIGHUP)
    if pid is None:
        # a broker killed a moment ago may hold its port a little longer
        if port_open("127.0.0.1", settings.mqtt_port) and not _wait_closed(settings.mqtt_port):
            raise ServiceError(
                f"port {settings.mqtt_port} is taken by another program; set WASTEPILOT_MQTT_PORT"
            )
        log.info("starting Mosquitto on 127.0.0.1:%s", settings.mqtt_port)
        install.run([install.mosquitto_binary(), "-c", str(paths.mqtt_conf), "-d"])
        wait_until(
            lambda: port_open("127.0.0.1", settings.mqtt_port), 30, "Mosquitto", paths.mqtt_log
        )
    _provision(settings, paths, passwords)


def _wait_closed(port: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not port_open("127.0.0.1", port):
            return True
        time.sleep(0.1)
    return False


def _provision(settings: Settings, paths: Paths, passwords: dict[str, str]) -> None:
    """Roles and service identities as this version needs them; skipped when nothing changed
    since the last time (a digest of what was provisioned is kept beside the broker's files)."""
    by_role = {role: passwords[user] for role, user in SERVICE_USERS.items()}
    wanted = roles(settings.topic_prefix, test_root=TEST_TOPIC_ROOT)
    spec = {"roles": {k: [a.as_json() for a in v] for k, v in wanted.items()}, "pw": by_role}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    stamp = paths.mqtt / PROVISIONED
    if stamp.exists() and stamp.read_text() == digest:
        return
    admin = MqttAddress(
        "127.0.0.1", settings.mqtt_port, SERVICE_USERS["admin"], by_role["admin"], False
    )
    with BrokerAdmin(admin.url()) as broker:
        broker.provision(settings.topic_prefix, by_role, test_root=TEST_TOPIC_ROOT)
    stamp.write_text(digest)
    log.info("broker roles and service identities provisioned")


def mqtt_down(paths: Paths) -> None:
    pid = mqtt_pid(paths)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: mqtt_pid(paths) is None, 30, "Mosquitto to stop", paths.mqtt_log)
