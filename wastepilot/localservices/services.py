"""The local services: a private PostgreSQL cluster and a private Mosquitto, under one state folder.

`up` installs what is missing, (re)writes the configuration, starts what is not running and
makes sure the local identities exist; each step is a no-op when already done. Services named
by WASTEPILOT_DATABASE_URL / WASTEPILOT_MQTT_URL are used as they are, never started here.
"""

from __future__ import annotations

from typing import Any

from core.mqtturl import MqttAddress
from core.settings import Settings
from wastepilot.localservices import install
from wastepilot.localservices.broker import mqtt_down, mqtt_pid, mqtt_up, tls_files
from wastepilot.localservices.postgres import pg_ctl, pg_running, pg_up
from wastepilot.localservices.state import (
    MQTT_USERS,
    load_identities,
    local_secrets,
    paths_for,
    port_open,
    save_identities,
)


def up(settings: Settings) -> dict[str, Any]:
    """Install what is missing and start what is not running. Returns the status."""
    paths = paths_for(settings)
    apt = install.Apt()
    passwords = local_secrets(paths)
    data = load_identities(paths)
    data["secrets"] = passwords
    if settings.database_url is None:
        major = install.ensure_postgres(apt)
        data["database_owner_url"], data["database_url"] = pg_up(
            settings, paths, major, passwords["db"], passwords["db_service"]
        )
        data["pg_major"] = major
    if settings.mqtt_url is None:
        install.ensure_mosquitto(apt)
        mqtt_up(settings, paths, passwords)
        data["mqtt"] = {
            role: MqttAddress("127.0.0.1", settings.mqtt_port, user, passwords[user], False).url()
            for role, user in MQTT_USERS.items()
        }
        tls = tls_files(settings, paths)
        if tls is not None:  # the simulator publishes as devices do: over TLS, pinning the CA
            user = MQTT_USERS["simulator"]
            ca = str(tls[2]) if tls[2] else None
            data["mqtt"]["simulator"] = MqttAddress(
                "127.0.0.1", settings.mqtt_tls_port, user, passwords[user], True, ca
            ).url()
    data["paths"] = {"pg": str(paths.pg), "mosquitto": str(paths.mqtt)}
    save_identities(paths, data)
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
    data = load_identities(paths)
    majors = install.installed_pg_majors()
    db: dict[str, Any]
    if settings.database_url:
        db = {"managed": False, "url": settings.database_url}
    else:
        db = {
            "managed": True,
            "url": data.get("database_url"),  # the services' role
            "owner_url": data.get("database_owner_url"),  # migrations
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
