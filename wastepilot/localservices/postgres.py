"""The private PostgreSQL cluster (with TimescaleDB) under the state folder."""

from __future__ import annotations

import logging
import subprocess

import psycopg
from psycopg import sql

from core.db import SERVER_PRIVACY_SETTINGS
from core.errors import ServiceError
from core.settings import Settings
from wastepilot.localservices import install
from wastepilot.localservices import queries as q
from wastepilot.localservices.state import (
    APP_GROUP,
    DB_NAME,
    DB_ROLE,
    SERVICE_ROLE,
    Paths,
    as_user,
    chown_tree,
    port_open,
)

log = logging.getLogger(__name__)


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
            *(f"{k} = '{v}'" for k, v in SERVER_PRIVACY_SETTINGS.items()),
            "",
        ]
    )


def pg_running(paths: Paths, major: int) -> bool:
    if not (paths.pg_data / "PG_VERSION").exists():
        return False
    proc = subprocess.run(
        as_user("postgres", [install.pg_bin(major, "pg_ctl"), "status", "-D", str(paths.pg_data)]),
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def pg_up(
    settings: Settings, paths: Paths, major: int, password: str, service_password: str
) -> tuple[str, str]:
    """Initialise (once) and start the private cluster; returns the database URLs of the
    schema's owner (migrations) and of the services' role."""
    paths.pg.mkdir(parents=True, exist_ok=True)
    paths.pg_socket.mkdir(parents=True, exist_ok=True)
    if not (paths.pg_data / "PG_VERSION").exists():
        chown_tree(paths.pg, "postgres")
        log.info("initialising a PostgreSQL %s cluster in %s", major, paths.pg_data)
        install.run(
            as_user(
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
        chown_tree(paths.pg, "postgres")
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
    _ensure_role_and_db(settings, paths, password, service_password)
    at = f"127.0.0.1:{settings.pg_port}/{DB_NAME}"
    return (
        f"postgresql://{DB_ROLE}:{password}@{at}",
        f"postgresql://{SERVICE_ROLE}:{service_password}@{at}",
    )


def pg_ctl(paths: Paths, major: int, action: str) -> None:
    """start | stop | restart the private cluster, waiting for it."""
    cmd = [install.pg_bin(major, "pg_ctl"), action, "-D", str(paths.pg_data), "-w", "-t", "60"]
    if action in ("start", "restart"):
        cmd += ["-l", str(paths.pg_log)]
    if action in ("stop", "restart"):
        cmd += ["-m", "fast"]
    install.run(as_user("postgres", cmd))


def superuser_conninfo(settings: Settings, paths: Paths, dbname: str = "postgres") -> str:
    """Connection string of the cluster's superuser over its private Unix socket."""
    return f"host={paths.pg_socket} port={settings.pg_port} user=postgres dbname={dbname}"


def _ensure_role_and_db(
    settings: Settings, paths: Paths, password: str, service_password: str
) -> None:
    with psycopg.connect(superuser_conninfo(settings, paths), autocommit=True) as conn:
        # Local development only: the owner may create the extension and test databases.
        for role, rights, secret in (
            (DB_ROLE, "LOGIN SUPERUSER", password),
            (APP_GROUP, "NOLOGIN", None),
            (SERVICE_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE", service_password),
        ):
            exists = conn.execute(q.ROLE_EXISTS, (role,)).fetchone()
            conn.execute(
                sql.SQL("{} ROLE {} {} PASSWORD {}").format(
                    sql.SQL("ALTER" if exists else "CREATE"),
                    sql.Identifier(role),
                    sql.SQL(rights),
                    sql.Literal(secret),
                )
            )
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(APP_GROUP), sql.Identifier(SERVICE_ROLE)
            )
        )
        if not conn.execute(q.DATABASE_EXISTS, (DB_NAME,)).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(DB_NAME), sql.Identifier(DB_ROLE)
                )
            )
