"""The private PostgreSQL cluster (with TimescaleDB) under the state folder."""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from core import replication
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
    wait_until,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Node:
    """One of the local clusters: ``data`` (port PG_PORT) or its standby (PG_STANDBY_PORT). Which
    of the two is the primary is remembered in pg/primary (it changes at a failover)."""

    name: str
    data: Path
    socket: Path
    log: Path
    port: int


def nodes(settings: Settings, paths: Paths) -> tuple[Node, Node]:
    """The two local nodes, in the fixed order of the services' URL."""
    return (
        Node("data", paths.pg_data, paths.pg_socket, paths.pg_log, settings.pg_port),
        Node(
            "standby",
            paths.pg / "standby",
            paths.pg / "run-standby",
            paths.pg / "standby.log",
            settings.pg_standby_port,
        ),
    )


def primary_and_standby(settings: Settings, paths: Paths) -> tuple[Node, Node]:
    """(the primary, the other node) as the last `services up` or `services promote` left them."""
    a, b = nodes(settings, paths)
    marker = paths.pg / "primary"
    name = marker.read_text().strip() if marker.exists() else a.name
    return (b, a) if name == b.name else (a, b)


def _pg_conf(
    settings: Settings,
    node: Node,
    *,
    sync: bool,
    upstream: Node | None,
    archive: str | None = None,
) -> str:
    names = replication.synchronous_names(settings.db_standby_name) if sync else ""
    lines = [
        "# Written by `wastepilot services up`; edits are overwritten.",
        "listen_addresses = '127.0.0.1'",
        f"port = {node.port}",
        f"unix_socket_directories = {_quoted(str(node.socket))}",
        "shared_preload_libraries = 'timescaledb'",
        "timescaledb.telemetry_level = off",
        "max_connections = 200",
        "shared_buffers = 512MB",
        "work_mem = 32MB",
        "maintenance_work_mem = 256MB",
        "max_wal_size = 4GB",
        "checkpoint_timeout = 15min",
        "log_min_messages = warning",
        # replication: a standby can be built from this node and fed by it (docs/recovery.md)
        "wal_level = replica",
        "wal_keep_size = 2GB",
        f"synchronous_standby_names = {_quoted(names)}",
        f"synchronous_commit = {settings.pg_synchronous_commit}",
        *(f"{k} = '{v}'" for k, v in SERVER_PRIVACY_SETTINGS.items()),
    ]
    if archive is not None:  # backups: every finished WAL segment to the repository, and a
        # segment finished at least every minute however quiet the database (the recovery point)
        lines += [
            "archive_mode = on",
            f"archive_command = {_quoted(archive)}",
            "archive_timeout = 60",
        ]
    if upstream is not None:
        info = psycopg.conninfo.make_conninfo(
            host=str(upstream.socket), port=upstream.port, user="postgres",
            application_name=settings.db_standby_name,
        )  # fmt: skip
        lines.append(f"primary_conninfo = {_quoted(info)}")
    return "\n".join([*lines, ""])


def _quoted(value: str) -> str:
    """A string setting as postgresql.conf reads it: in single quotes, each ' doubled; no line
    break can end the setting early."""
    if "\n" in value or "\r" in value:
        raise ServiceError(f"a PostgreSQL setting cannot hold a line break: {value!r}")
    return "'" + value.replace("'", "''") + "'"


def restored_conf(settings: Settings, node: Node, *, archive: str | None) -> str:
    """The settings of a cluster restored from a backup: its own port and socket, alone."""
    return _pg_conf(settings, node, sync=False, upstream=None, archive=archive)


def node_running(node: Node, major: int) -> bool:
    if not (node.data / "PG_VERSION").exists():
        return False
    proc = subprocess.run(
        as_user("postgres", [install.pg_bin(major, "pg_ctl"), "status", "-D", str(node.data)]),
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def node_ctl(node: Node, major: int, action: str) -> None:
    """start | stop | restart | reload | promote a node, waiting for it."""
    cmd = [install.pg_bin(major, "pg_ctl"), action, "-D", str(node.data)]
    if action != "reload":
        cmd += ["-w", "-t", "60"]
    if action in ("start", "restart"):
        cmd += ["-l", str(node.log)]
    if action in ("stop", "restart"):
        cmd += ["-m", "fast"]
    install.run(as_user("postgres", cmd))


def pg_running(paths: Paths, major: int) -> bool:
    """Whether the ``data`` node runs (the only one without a standby)."""
    return node_running(Node("data", paths.pg_data, paths.pg_socket, paths.pg_log, 0), major)


def pg_ctl(paths: Paths, major: int, action: str) -> None:
    """start | stop | restart the ``data`` node, waiting for it."""
    node_ctl(Node("data", paths.pg_data, paths.pg_socket, paths.pg_log, 0), major, action)


def is_standby(node: Node) -> bool:
    return (node.data / "standby.signal").exists()


def _configure(settings: Settings, node: Node, major: int, conf_text: str) -> None:
    """Write the node's settings and (re)start it as little as they need."""
    node.data.parent.mkdir(parents=True, exist_ok=True)
    node.socket.mkdir(parents=True, exist_ok=True)
    conf = node.data / "wastepilot.conf"
    changed = not conf.exists() or conf.read_text() != conf_text
    if changed:
        conf.write_text(conf_text)
        main_conf = node.data / "postgresql.conf"
        if "include_if_exists = 'wastepilot.conf'" not in main_conf.read_text():
            with main_conf.open("a") as fh:
                fh.write("\ninclude_if_exists = 'wastepilot.conf'\n")
        chown_tree(node.data.parent, "postgres")
    if node_running(node, major):
        if changed:
            log.info("PostgreSQL configuration of %s changed: reloading", node.name)
            node_ctl(node, major, "reload")
            if _pending_restart(node):
                log.info("... a changed setting needs a restart of %s", node.name)
                node_ctl(node, major, "restart")
        return
    if port_open("127.0.0.1", node.port):
        raise ServiceError(
            f"port {node.port} is taken by another program; set WASTEPILOT_PG_"
            f"{'STANDBY_' if node.name == 'standby' else ''}PORT"
        )
    log.info("starting PostgreSQL (%s) on 127.0.0.1:%s", node.name, node.port)
    node_ctl(node, major, "start")


def _pending_restart(node: Node) -> bool:
    info = f"host={node.socket} port={node.port} user=postgres dbname=postgres"
    time.sleep(0.5)  # the postmaster re-reads its files a moment after the signal
    with psycopg.connect(info, autocommit=True) as conn:
        return conn.execute(q.PENDING_RESTART).fetchone() is not None


def _initdb(node: Node, major: int) -> None:
    node.data.parent.mkdir(parents=True, exist_ok=True)
    chown_tree(node.data.parent, "postgres")
    log.info("initialising a PostgreSQL %s cluster in %s", major, node.data)
    install.run(
        as_user(
            "postgres",
            [
                install.pg_bin(major, "initdb"),
                "-D",
                str(node.data),
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


def _build_standby(settings: Settings, node: Node, primary: Node, major: int) -> None:
    """A fresh copy of the primary (pg_basebackup, WAL streamed alongside) that follows it. A
    directory in the way — the old primary after a failover — is moved aside, never deleted."""
    if node_running(node, major):
        node_ctl(node, major, "stop")
    if node.data.exists():
        aside = node.data.with_name(f"{node.data.name}.old-{int(time.time())}")
        log.warning("moving %s aside to %s before making it a standby", node.data, aside)
        node.data.rename(aside)
    node.socket.mkdir(parents=True, exist_ok=True)
    chown_tree(node.data.parent, "postgres")
    log.info("copying the primary (%s) into a standby (%s)", primary.name, node.name)
    install.run(
        as_user(
            "postgres",
            [
                install.pg_bin(major, "pg_basebackup"),
                "-D",
                str(node.data),
                "-h",
                str(primary.socket),
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        )
    )
    (node.data / "standby.signal").touch()
    (node.data / "postmaster.pid").unlink(missing_ok=True)


def pg_up(
    settings: Settings,
    paths: Paths,
    major: int,
    password: str,
    service_password: str,
    *,
    standby: bool = False,
    archive: str | None = None,
) -> tuple[str, str]:
    """Initialise (once) and start the private cluster — with ``pg_standby``, a synchronous
    standby too; returns the database URLs of the schema's owner (migrations) and of the
    services' role (both nodes, the writable one chosen at connect time)."""
    paths.pg.mkdir(parents=True, exist_ok=True)
    primary, other = primary_and_standby(settings, paths)
    if is_standby(primary):
        raise ServiceError(
            f"{primary.data} is remembered as the primary but is still a standby (a promotion "
            "that stopped half-way?): run `wastepilot services promote` again"
        )
    if not (primary.data / "PG_VERSION").exists():
        if (other.data / "PG_VERSION").exists() and not is_standby(other):
            raise ServiceError(
                f"the primary's data directory {primary.data} is gone and {other.data} is not a "
                "standby: promote one with `wastepilot services promote` or restore a backup"
            )
        if (other.data / "PG_VERSION").exists():
            raise ServiceError(
                f"the primary's data directory {primary.data} is gone: promote the standby with "
                "`wastepilot services promote`, then `wastepilot services up` rebuilds the other"
            )
        _initdb(primary, major)
    (paths.pg / "primary").write_text(primary.name + "\n")
    standby_ok = standby and is_standby(other) and _follows(other, primary)
    _configure(
        settings,
        primary,
        major,
        _pg_conf(settings, primary, sync=standby_ok, upstream=None, archive=archive),
    )
    if standby:
        if not standby_ok:
            _build_standby(settings, other, primary, major)
        _configure(
            settings,
            other,
            major,
            _pg_conf(settings, other, sync=False, upstream=primary, archive=archive),
        )
        _configure(
            settings,
            primary,
            major,
            _pg_conf(settings, primary, sync=True, upstream=None, archive=archive),
        )
        _undo_degrade(primary)  # a guard's switch-off of an earlier loss (core/replication.py)
        try:
            wait_until(
                lambda: synchronous(primary, settings.db_standby_name),
                60,
                "the standby to stream",
                other.log,
            )
        except ServiceError:
            # commits must not wait for a standby that does not come: asynchronous until it does
            _configure(
                settings, primary, major,
                _pg_conf(settings, primary, sync=False, upstream=None, archive=archive),
            )  # fmt: skip
            raise
    _ensure_role_and_db(settings, primary, password, service_password)
    hosts = f"127.0.0.1:{primary.port}"
    query = ""
    if standby:
        a, b = nodes(settings, paths)
        hosts = f"127.0.0.1:{a.port},127.0.0.1:{b.port}"
        query = "?target_session_attrs=read-write"
    at = f"{hosts}/{DB_NAME}{query}"
    return (
        f"postgresql://{DB_ROLE}:{password}@{at}",
        f"postgresql://{SERVICE_ROLE}:{service_password}@{at}",
    )


def _follows(node: Node, primary: Node) -> bool:
    """Whether a standby's copy descends from the primary (same system identifier)."""
    return _system_id(node) == _system_id(primary)


def _system_id(node: Node) -> str | None:
    control = node.data / "global" / "pg_control"
    return control.read_bytes()[:8].hex() if control.exists() else None


def sync_state(primary: Node, name: str) -> str | None:
    info = f"host={primary.socket} port={primary.port} user=postgres dbname=postgres"
    try:
        with psycopg.connect(info, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(q.SYNC_STATE, (name,)).fetchone()
    except psycopg.OperationalError:
        return None
    return str(row[0]) if row else None


def synchronous(primary: Node, name: str) -> bool:
    """Whether the standby ``name`` confirms the primary's commits now (it is the one, or one of
    the quorum, that synchronous_standby_names asks for)."""
    return sync_state(primary, name) in ("sync", "quorum")


def _undo_degrade(primary: Node) -> None:
    info = f"host={primary.socket} port={primary.port} user=postgres dbname=postgres"
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute(replication.UNDO)
        conn.execute(replication.RELOAD)


def promote(settings: Settings, paths: Paths, major: int) -> Node:
    """Make the standby the primary: the old primary is stopped first if it still runs (never
    two writable nodes), then the standby is promoted and remembered as the primary. Its
    commits wait for no standby until `services up` has rebuilt the other node."""
    primary, standby = primary_and_standby(settings, paths)
    if not is_standby(standby) or not (standby.data / "PG_VERSION").exists():
        raise ServiceError(f"{standby.data} is not a standby: nothing to promote")
    if node_running(primary, major):
        log.warning("stopping the old primary (%s) before promoting the standby", primary.name)
        node_ctl(primary, major, "stop")
    if not node_running(standby, major):
        node_ctl(standby, major, "start")
    # remembered first: should this stop half-way, `services up` finds the node it names still a
    # standby and refuses (never rebuilding the node that may hold the newer commits)
    (paths.pg / "primary").write_text(standby.name + "\n")
    node_ctl(standby, major, "promote")
    return standby


def superuser_conninfo(settings: Settings, paths: Paths, dbname: str = "postgres") -> str:
    """Connection string of the primary's superuser over its private Unix socket."""
    primary, _ = primary_and_standby(settings, paths)
    return f"host={primary.socket} port={primary.port} user=postgres dbname={dbname}"


def _ensure_role_and_db(
    settings: Settings, primary: Node, password: str, service_password: str
) -> None:
    info = f"host={primary.socket} port={primary.port} user=postgres dbname=postgres"
    with psycopg.connect(info, autocommit=True) as conn:
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
