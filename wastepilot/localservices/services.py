"""The local services: a private PostgreSQL cluster and a private Mosquitto, under one state folder.

`up` installs what is missing, (re)writes the configuration, starts what is not running and
makes sure the local identities exist; each step is a no-op when already done. Services named
by WASTEPILOT_DATABASE_URL / WASTEPILOT_MQTT_URL are used as they are, never started here.
"""

from __future__ import annotations

from typing import Any

from core.errors import ServiceError
from core.mqtturl import MqttAddress
from core.settings import Settings
from wastepilot.localservices import backup, install, postgres
from wastepilot.localservices.broker import mqtt_down, mqtt_pid, mqtt_up, tls_files
from wastepilot.localservices.state import (
    MQTT_USERS,
    load_identities,
    local_secrets,
    paths_for,
    port_open,
    save_identities,
)


def up(
    settings: Settings, *, standby: bool | None = None, backups: bool | None = None
) -> dict[str, Any]:
    """Install what is missing and start what is not running. Returns the status. ``standby``
    (remembered in the state folder; default: as last time, or WASTEPILOT_PG_STANDBY) runs the
    database with a synchronous standby; ``backups`` likewise turns on WAL archiving to the
    backup repository (docs/recovery.md)."""
    paths = paths_for(settings)
    apt = install.Apt()
    passwords = local_secrets(paths)
    data = load_identities(paths)
    data["secrets"] = passwords
    if standby is not None:
        data["pg_standby"] = standby
    standby = settings.pg_standby or bool(data.get("pg_standby"))
    if backups is not None:
        data["pg_backups"] = backups
    backups = settings.pg_backups or bool(data.get("pg_backups"))
    if settings.database_url is None:
        major = install.ensure_postgres(apt)
        if backups:
            apt.install(["pgbackrest"])
        data["database_owner_url"], data["database_url"] = postgres.pg_up(
            settings,
            paths,
            major,
            passwords["db"],
            passwords["db_service"],
            standby=standby,
            archive=backup.archive_command(settings, paths) if backups else None,
        )
        if backups:
            backup.setup(settings, paths)
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
    for node in postgres.nodes(settings, paths) if majors else ():
        if postgres.node_running(node, majors[0]):
            postgres.node_ctl(node, majors[0], "stop")


def promote(settings: Settings) -> dict[str, Any]:
    """Fail over to the local standby (docs/recovery.md). Returns the status."""
    majors = install.installed_pg_majors()
    if not majors:
        raise ServiceError("no PostgreSQL here")
    postgres.promote(settings, paths_for(settings), majors[0])
    return status(settings)


def status(settings: Settings) -> dict[str, Any]:
    """What runs where, with the URLs (and credentials) of the local identities."""
    paths = paths_for(settings)
    data = load_identities(paths)
    majors = install.installed_pg_majors()
    db: dict[str, Any]
    if settings.database_url:
        db = {"managed": False, "url": settings.database_url}
    else:
        primary, standby = postgres.primary_and_standby(settings, paths)
        running = bool(majors) and postgres.node_running(primary, majors[0])
        db = {
            "managed": True,
            "url": data.get("database_url"),  # the services' role
            "owner_url": data.get("database_owner_url"),  # migrations
            "running": running,
            "port": primary.port,
            "data_dir": str(primary.data),
            "standby": {
                "port": standby.port,
                "data_dir": str(standby.data),
                "running": bool(majors) and postgres.node_running(standby, majors[0]),
            }
            if settings.pg_standby or data.get("pg_standby")
            else None,
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
