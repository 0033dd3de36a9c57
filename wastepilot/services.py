"""The local services: a private PostgreSQL cluster and a private Mosquitto, under one state folder.

`up` installs what is missing, (re)writes the configuration, starts what is not running and
makes sure the local identities exist; each step is a no-op when already done. Services named
by WASTEPILOT_DATABASE_URL / WASTEPILOT_MQTT_URL are used as they are, never started here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from core.errors import ServiceError
from core.mqtturl import MqttAddress
from core.settings import Settings
from wastepilot import install

log = logging.getLogger(__name__)

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
DB_NAME = "wastepilot"
DB_ROLE = "wastepilot"
# Local broker identities: role in the code -> MQTT username.
MQTT_USERS = {
    "ingest": "wp-ingest",
    "simulator": "wp-simulator",
    "admin": "wp-admin",
    "test": "wp-test",
}
# Tests publish under their own prefixes below this root, with the wp-test identity.
TEST_TOPIC_ROOT = "wastepilot-test"


@dataclass(frozen=True, slots=True)
class Paths:
    state: Path
    pg: Path
    mqtt: Path

    @property
    def pg_data(self) -> Path:
        return self.pg / "data"

    @property
    def pg_socket(self) -> Path:
        return self.pg / "run"

    @property
    def pg_log(self) -> Path:
        return self.pg / "postgresql.log"

    @property
    def mqtt_conf(self) -> Path:
        return self.mqtt / "mosquitto.conf"

    @property
    def mqtt_pid(self) -> Path:
        return self.mqtt / "mosquitto.pid"

    @property
    def mqtt_log(self) -> Path:
        return self.mqtt / "mosquitto.log"


def _user_can_reach(user: str, path: Path) -> bool:
    """Whether OS ``user`` can traverse to ``path`` (each parent needs the x bit for others)."""
    if os.geteuid() != 0:
        return True
    proc = subprocess.run(
        ["runuser", "-u", user, "--", "test", "-x", str(path)], check=False, capture_output=True
    )
    return proc.returncode == 0


def paths_for(settings: Settings) -> Paths:
    """Where the services keep their files: under the state folder when the service users can
    reach it, else under /var/lib/wastepilot (a clone under /root is not readable by them)."""
    state = settings.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)
    reachable = _user_can_reach("postgres", state) if _has_user("postgres") else True
    if reachable:
        base = state
    else:
        digest = hashlib.sha256(str(state).encode()).hexdigest()[:12]
        base = Path("/var/lib/wastepilot") / digest
        base.mkdir(parents=True, exist_ok=True)
        for p in (Path("/var/lib/wastepilot"), base):
            p.chmod(0o755)
    return Paths(state=state, pg=base / "pg", mqtt=base / "mosquitto")


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _as_user(user: str, cmd: list[str]) -> list[str]:
    """Run as ``user`` when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--", *cmd]
    return cmd


def _chown_tree(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


# --- identities -----------------------------------------------------------------------------


def _load_identities(paths: Paths) -> dict[str, Any]:
    path = paths.state / "local.json"
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def _save_identities(paths: Paths, data: dict[str, Any]) -> None:
    path = paths.state / "local.json"
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def _secrets(paths: Paths) -> dict[str, str]:
    """Generated passwords of the local identities, made once and kept in the state folder."""
    data = _load_identities(paths)
    secret: dict[str, str] = dict(data.get("secrets", {}))
    for key in ["db", *MQTT_USERS.values()]:
        secret.setdefault(key, secrets.token_urlsafe(18))
    return secret


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg_conf(settings: Settings, paths: Paths) -> str:
    return "\n".join(
        [
            "# Written by `wastepilot services up`; edits are overwritten.",
            "listen_addresses = '127.0.0.1'",
            f"port = {settings.pg_port}",
            f"unix_socket_directories = '{paths.pg_socket}'",
            "shared_preload_libraries = 'timescaledb'",
            "timescaledb.telemetry_level = off",
            "max_connections = 200",
            "shared_buffers = 512MB",
            "work_mem = 32MB",
            "maintenance_work_mem = 256MB",
            "max_wal_size = 4GB",
            "checkpoint_timeout = 15min",
            "log_min_messages = warning",
            "",
        ]
    )


def pg_running(paths: Paths, major: int) -> bool:
    if not (paths.pg_data / "PG_VERSION").exists():
        return False
    proc = subprocess.run(
        _as_user("postgres", [install.pg_bin(major, "pg_ctl"), "status", "-D", str(paths.pg_data)]),
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def pg_up(settings: Settings, paths: Paths, major: int, password: str) -> str:
    """Initialise (once) and start the private cluster; returns the app's database URL."""
    paths.pg.mkdir(parents=True, exist_ok=True)
    paths.pg_socket.mkdir(parents=True, exist_ok=True)
    if not (paths.pg_data / "PG_VERSION").exists():
        _chown_tree(paths.pg, "postgres")
        log.info("initialising a PostgreSQL %s cluster in %s", major, paths.pg_data)
        install.run(
            _as_user(
                "postgres",
                [
                    install.pg_bin(major, "initdb"),
                    "-D",
                    str(paths.pg_data),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
            )
        )
    conf = paths.pg_data / "wastepilot.conf"
    wanted = _pg_conf(settings, paths)
    changed = not conf.exists() or conf.read_text() != wanted
    if changed:
        conf.write_text(wanted)
        main_conf = paths.pg_data / "postgresql.conf"
        if "include_if_exists = 'wastepilot.conf'" not in main_conf.read_text():
            with main_conf.open("a") as fh:
                fh.write("\ninclude_if_exists = 'wastepilot.conf'\n")
        _chown_tree(paths.pg, "postgres")
    running = pg_running(paths, major)
    if running and changed:
        log.info("PostgreSQL configuration changed: restarting")
        pg_ctl(paths, major, "restart")
    elif not running:
        if port_open("127.0.0.1", settings.pg_port):
            raise ServiceError(
                f"port {settings.pg_port} is taken by another program; set WASTEPILOT_PG_PORT"
            )
        log.info("starting PostgreSQL on 127.0.0.1:%s", settings.pg_port)
        pg_ctl(paths, major, "start")
    _ensure_role_and_db(settings, paths, password)
    return f"postgresql://{DB_ROLE}:{password}@127.0.0.1:{settings.pg_port}/{DB_NAME}"


def pg_ctl(paths: Paths, major: int, action: str) -> None:
    """start | stop | restart the private cluster, waiting for it."""
    cmd = [install.pg_bin(major, "pg_ctl"), action, "-D", str(paths.pg_data), "-w", "-t", "60"]
    if action in ("start", "restart"):
        cmd += ["-l", str(paths.pg_log)]
    if action in ("stop", "restart"):
        cmd += ["-m", "fast"]
    install.run(_as_user("postgres", cmd))


def superuser_conninfo(settings: Settings, paths: Paths, dbname: str = "postgres") -> str:
    """Connection string of the cluster's superuser over its private Unix socket."""
    return f"host={paths.pg_socket} port={settings.pg_port} user=postgres dbname={dbname}"


def _ensure_role_and_db(settings: Settings, paths: Paths, password: str) -> None:
    with psycopg.connect(superuser_conninfo(settings, paths), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_ROLE,)).fetchone()
        # Local development only: the app role may create the extension and test databases.
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.SQL(verb), sql.Identifier(DB_ROLE), sql.Literal(password)
            )
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(DB_NAME), sql.Identifier(DB_ROLE)
                )
            )


# --- Mosquitto ------------------------------------------------------------------------------


def render_mosquitto_conf(settings: Settings, paths: Paths) -> str:
    """The deploy config with the local paths and port: one source for the broker's tuning."""
    text = (DEPLOY_DIR / "mosquitto/mosquitto.conf").read_text()
    replace = {
        r"^listener .*$": f"listener {settings.mqtt_port} 127.0.0.1",
        r"^password_file .*$": f"password_file {paths.mqtt / 'passwd'}",
        r"^acl_file .*$": f"acl_file {paths.mqtt / 'acl'}",
        r"^persistence_location .*$": f"persistence_location {paths.mqtt / 'data'}/",
        r"^log_dest .*$": f"log_dest file {paths.mqtt_log}",
    }
    for pattern, line in replace.items():
        text, n = re.subn(pattern, line, text, flags=re.M)
        if n != 1:
            raise ServiceError(f"deploy/mosquitto/mosquitto.conf has no single {pattern!r} line")
    text += f"pid_file {paths.mqtt_pid}\n"
    if settings.mqtt_tls_port:
        if not (settings.mqtt_tls_cert_file and settings.mqtt_tls_key_file):
            raise ServiceError(
                "WASTEPILOT_MQTT_TLS_PORT needs WASTEPILOT_MQTT_TLS_CERT_FILE and "
                "WASTEPILOT_MQTT_TLS_KEY_FILE"
            )
        # (the broker reads copies in its own folder: the originals may not be readable to it)
        text += (
            "\n# TLS listener (same users and ACL as the plain one)\n"
            f"listener {settings.mqtt_tls_port} 127.0.0.1\n"
            f"certfile {paths.mqtt / 'tls' / 'cert.pem'}\n"
            f"keyfile {paths.mqtt / 'tls' / 'key.pem'}\n"
            "tls_version tlsv1.2\n"
        )
    return text


def render_acl(prefix: str, *, local: bool) -> str:
    text = (DEPLOY_DIR / "mosquitto/acl.tmpl").read_text().replace("{prefix}", prefix)
    if local:
        text += (
            "\n# local only: tools and tests\n"
            f"user {MQTT_USERS['admin']}\ntopic readwrite {prefix}/#\n"
            f"user {MQTT_USERS['test']}\ntopic readwrite {TEST_TOPIC_ROOT}/#\n"
        )
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
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"mosquitto" not in cmdline.read_bytes():
        return None
    return pid


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def mqtt_up(settings: Settings, paths: Paths, passwords: dict[str, str]) -> None:
    """Configure and start the private broker; reload it when its users or ACL changed."""
    (paths.mqtt / "data").mkdir(parents=True, exist_ok=True)
    tls_changed = False
    if settings.mqtt_tls_port and settings.mqtt_tls_cert_file and settings.mqtt_tls_key_file:
        (paths.mqtt / "tls").mkdir(exist_ok=True)
        for src, name in (
            (settings.mqtt_tls_cert_file, "cert.pem"),
            (settings.mqtt_tls_key_file, "key.pem"),
        ):
            tls_changed = (
                _write_if_changed(paths.mqtt / "tls" / name, src.read_text()) or tls_changed
            )
            (paths.mqtt / "tls" / name).chmod(0o600)
    conf_changed = _write_if_changed(paths.mqtt_conf, render_mosquitto_conf(settings, paths))
    conf_changed = conf_changed or tls_changed
    acl_changed = _write_if_changed(
        paths.mqtt / "acl", render_acl(settings.topic_prefix, local=True)
    )
    users_file = paths.mqtt / "users.plain"
    plain = "".join(f"{user}:{passwords[user]}\n" for user in sorted(MQTT_USERS.values()))
    users_changed = _write_if_changed(users_file, plain)
    users_file.chmod(0o600)
    service_passwd = paths.mqtt / "service.passwd"
    if users_changed or not service_passwd.exists():
        service_passwd.write_text(_hash_lines(paths, plain))
        service_passwd.chmod(0o600)
    users_changed = _assemble_passwd(paths) or users_changed
    if _has_user("mosquitto"):
        _chown_tree(paths.mqtt, "mosquitto")
    pid = mqtt_pid(paths)
    if pid is not None and conf_changed:
        log.info("broker configuration changed: restarting Mosquitto")
        mqtt_down(paths)
        pid = None
    if pid is None:
        if port_open("127.0.0.1", settings.mqtt_port):
            raise ServiceError(
                f"port {settings.mqtt_port} is taken by another program; set WASTEPILOT_MQTT_PORT"
            )
        log.info("starting Mosquitto on 127.0.0.1:%s", settings.mqtt_port)
        install.run([install.mosquitto_binary(), "-c", str(paths.mqtt_conf), "-d"])
        _wait(lambda: port_open("127.0.0.1", settings.mqtt_port), 10, "Mosquitto", paths.mqtt_log)
    elif acl_changed or users_changed:
        os.kill(pid, signal.SIGHUP)  # reloads password and ACL files


def _hash_lines(paths: Paths, plain: str) -> str:
    """``user:password`` lines -> Mosquitto's hashed lines (mosquitto_passwd -U, in one call)."""
    tmp = paths.mqtt / "passwd.new"
    tmp.write_text(plain)
    tmp.chmod(0o600)
    try:
        install.run(["mosquitto_passwd", "-U", str(tmp)])  # hashes the file in place
        return tmp.read_text()
    finally:
        tmp.unlink(missing_ok=True)


def _assemble_passwd(paths: Paths) -> bool:
    """The broker's password file = service identities + device credentials. True if changed."""
    parts = [paths.mqtt / "service.passwd", paths.mqtt / "devices.passwd"]
    text = "".join(p.read_text() for p in parts if p.exists())
    passwd = paths.mqtt / "passwd"
    if passwd.exists() and passwd.read_text() == text:
        return False
    tmp = paths.mqtt / "passwd.tmp"
    tmp.write_text(text)
    tmp.chmod(0o600)
    if _has_user("mosquitto"):
        _chown_tree(tmp, "mosquitto")
    tmp.replace(passwd)
    return True


def set_device_credentials(
    settings: Settings, secrets_by_device: dict[str, str], *, remove: list[str] | None = None
) -> None:
    """Give devices broker logins on the local broker (username = device id), or take them
    away; the broker reloads its password file. Devices may then write only under their own
    topics (the ACL's ``pattern`` lines)."""
    paths = paths_for(settings)
    devices_file = paths.mqtt / "devices.passwd"
    entries: dict[str, str] = {}
    if devices_file.exists():
        for line in devices_file.read_text().splitlines():
            user, _, _ = line.partition(":")
            entries[user] = line
    for user in remove or []:
        entries.pop(user, None)
    if secrets_by_device:
        hashed = _hash_lines(paths, "".join(f"{d}:{s}\n" for d, s in secrets_by_device.items()))
        for line in hashed.splitlines():
            entries[line.partition(":")[0]] = line
    devices_file.write_text("".join(f"{line}\n" for line in entries.values()))
    devices_file.chmod(0o600)
    if _has_user("mosquitto"):
        _chown_tree(devices_file, "mosquitto")
    if _assemble_passwd(paths):
        pid = mqtt_pid(paths)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)  # reloads the password file


def mqtt_down(paths: Paths) -> None:
    pid = mqtt_pid(paths)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)  # Mosquitto saves its persistence file on the way out
    _wait(lambda: mqtt_pid(paths) is None, 30, "Mosquitto to stop", paths.mqtt_log)


def _wait(ready: Any, seconds: float, what: str, logfile: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    tail = logfile.read_text(errors="replace").splitlines()[-10:] if logfile.exists() else []
    raise ServiceError(f"timed out waiting for {what}; last log lines:\n" + "\n".join(tail))


# --- the three verbs ------------------------------------------------------------------------


def up(settings: Settings) -> dict[str, Any]:
    """Install what is missing and start what is not running. Returns the status."""
    paths = paths_for(settings)
    apt = install.Apt()
    passwords = _secrets(paths)
    data = _load_identities(paths)
    data["secrets"] = passwords
    if settings.database_url is None:
        major = install.ensure_postgres(apt)
        data["database_url"] = pg_up(settings, paths, major, passwords["db"])
        data["pg_major"] = major
    if settings.mqtt_url is None:
        install.ensure_mosquitto(apt)
        mqtt_up(settings, paths, passwords)
        data["mqtt"] = {
            role: MqttAddress("127.0.0.1", settings.mqtt_port, user, passwords[user], False).url()
            for role, user in MQTT_USERS.items()
        }
    data["paths"] = {"pg": str(paths.pg), "mosquitto": str(paths.mqtt)}
    _save_identities(paths, data)
    return status(settings)


def down(settings: Settings) -> None:
    """Stop the local services (their data stays)."""
    paths = paths_for(settings)
    mqtt_down(paths)
    majors = install.installed_pg_majors()
    if majors and pg_running(paths, majors[0]):
        pg_ctl(paths, majors[0], "stop")


def status(settings: Settings) -> dict[str, Any]:
    """What runs where, with the URLs (and credentials) of the local identities."""
    paths = paths_for(settings)
    data = _load_identities(paths)
    majors = install.installed_pg_majors()
    db: dict[str, Any]
    if settings.database_url:
        db = {"managed": False, "url": settings.database_url}
    else:
        db = {
            "managed": True,
            "url": data.get("database_url"),
            "running": bool(majors) and pg_running(paths, majors[0]),
            "port": settings.pg_port,
            "data_dir": str(paths.pg_data),
            "timescaledb_installed": bool(majors) and install.timescaledb_installed(majors[0]),
        }
    mqtt: dict[str, Any]
    if settings.mqtt_url:
        mqtt = {"managed": False, "url": settings.mqtt_url}
    else:
        mqtt = {
            "managed": True,
            "url": (data.get("mqtt") or {}).get("admin"),
            "identities": data.get("mqtt", {}),
            "running": mqtt_pid(paths) is not None and port_open("127.0.0.1", settings.mqtt_port),
            "port": settings.mqtt_port,
            "config": str(paths.mqtt_conf),
        }
    return {"database": db, "mqtt": mqtt, "state_dir": str(paths.state)}
