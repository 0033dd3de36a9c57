"""The private Mosquitto under the state folder: configuration, ACL, logins, start and stop."""

from __future__ import annotations

import logging
import os
import re
import signal
from pathlib import Path

from core.errors import ServiceError
from core.settings import Settings
from wastepilot import install
from wastepilot.localstate import (
    DEPLOY_DIR,
    MQTT_USERS,
    TEST_TOPIC_ROOT,
    Paths,
    chown_tree,
    has_user,
    paths_for,
    port_open,
    wait_until,
    write_if_changed,
)

log = logging.getLogger(__name__)


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
                write_if_changed(paths.mqtt / "tls" / name, src.read_text()) or tls_changed
            )
            (paths.mqtt / "tls" / name).chmod(0o600)
    conf_changed = write_if_changed(paths.mqtt_conf, render_mosquitto_conf(settings, paths))
    conf_changed = conf_changed or tls_changed
    acl_changed = write_if_changed(
        paths.mqtt / "acl", render_acl(settings.topic_prefix, local=True)
    )
    users_file = paths.mqtt / "users.plain"
    plain = "".join(f"{user}:{passwords[user]}\n" for user in sorted(MQTT_USERS.values()))
    users_changed = write_if_changed(users_file, plain)
    users_file.chmod(0o600)
    service_passwd = paths.mqtt / "service.passwd"
    if users_changed or not service_passwd.exists():
        service_passwd.write_text(_hash_lines(paths, plain))
        service_passwd.chmod(0o600)
    users_changed = _assemble_passwd(paths) or users_changed
    if has_user("mosquitto"):
        chown_tree(paths.mqtt, "mosquitto")
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
        wait_until(
            lambda: port_open("127.0.0.1", settings.mqtt_port), 10, "Mosquitto", paths.mqtt_log
        )
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
    if has_user("mosquitto"):
        chown_tree(tmp, "mosquitto")
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
    if has_user("mosquitto"):
        chown_tree(devices_file, "mosquitto")
    if _assemble_passwd(paths):
        pid = mqtt_pid(paths)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)  # reloads the password file


def mqtt_down(paths: Paths) -> None:
    pid = mqtt_pid(paths)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)  # Mosquitto saves its persistence file on the way out
    wait_until(lambda: mqtt_pid(paths) is None, 30, "Mosquitto to stop", paths.mqtt_log)
