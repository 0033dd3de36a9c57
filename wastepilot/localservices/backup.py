"""Backups of the local services (docs/recovery.md): pgBackRest for PostgreSQL — full,
differential and incremental backups, WAL archived continuously, point-in-time restores — and
consistent copies of the broker's store and identities taken with each backup.

The repository is a folder of its own (``WASTEPILOT_BACKUP_DIR``; put it on another disk), laid
out as pgBackRest keeps it, with ``broker/<backup label>/`` beside it: the broker's SQLite store
copied by SQLite's online backup (a consistent snapshot while the broker writes) and its
dynamic-security file (which the broker replaces whole by a rename, so a read is never torn).
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from core.errors import ServiceError
from core.settings import Settings
from wastepilot.localservices import install, postgres
from wastepilot.localservices.broker import dynsec_file
from wastepilot.localservices.state import Paths, as_user, chown_tree, paths_for

log = logging.getLogger(__name__)

STANZA = "wastepilot"
STORE = "mosquitto.sqlite3"
KINDS = ("full", "diff", "incr")


@dataclass(frozen=True, slots=True)
class Repo:
    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "pgbackrest.conf"

    @property
    def broker(self) -> Path:
        return self.root / "broker"


def repo_for(settings: Settings, paths: Paths) -> Repo:
    """The backup folder: WASTEPILOT_BACKUP_DIR, or beside the local clusters."""
    return Repo(settings.backup_dir or paths.pg.parent / "backup")


def configured(settings: Settings) -> bool:
    """Whether the local services back up here (`services up --backups` has run)."""
    if settings.database_url:
        return False
    return repo_for(settings, paths_for(settings)).conf.exists()


def archive_command(settings: Settings, paths: Paths) -> str:
    """PostgreSQL's archive_command: each finished WAL segment into the repository."""
    conf = shlex.quote(f"--config={repo_for(settings, paths).conf}")
    return f"pgbackrest {conf} --stanza={STANZA} archive-push %p"


def _conf_text(settings: Settings, paths: Paths, repo: Repo) -> str:
    primary, _ = postgres.primary_and_standby(settings, paths)
    return "\n".join(
        [
            "# Written by `wastepilot services up --backups`; edits are overwritten.",
            "[global]",
            f"repo1-path={repo.root / 'repo'}",
            f"repo1-retention-full={settings.backup_retention_full}",
            f"log-path={repo.root / 'log'}",
            f"lock-path={repo.root / 'lock'}",
            "log-level-console=warn",
            "log-level-file=info",
            "start-fast=y",
            "archive-timeout=60",
            "compress-type=zst",
            "",
            f"[{STANZA}]",
            f"pg1-path={primary.data}",
            f"pg1-port={primary.port}",
            f"pg1-socket-path={primary.socket}",
            "pg1-user=postgres",
            "",
        ]
    )


def pgbackrest(repo: Repo, *args: str) -> str:
    """Run pgBackRest as the postgres user with the repository's configuration."""
    cmd = as_user("postgres", ["pgbackrest", f"--config={repo.conf}", f"--stanza={STANZA}", *args])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ServiceError(
            f"pgbackrest {args[0]} failed ({proc.returncode}): "
            + (proc.stderr or proc.stdout).strip()[-1500:]
        )
    return proc.stdout


def setup(settings: Settings, paths: Paths) -> Repo:
    """The repository and its configuration (after the primary runs with archiving on), the
    stanza created once; idempotent."""
    install.Apt().install(["pgbackrest"])
    repo = repo_for(settings, paths)
    if repo.root.is_dir() and any(repo.root.iterdir()) and not repo.conf.exists():
        raise ServiceError(
            f"{repo.root} has other files in it: give WASTEPILOT_BACKUP_DIR a folder of its own"
        )
    repo.root.mkdir(parents=True, exist_ok=True)
    repo.root.chmod(0o750)
    shutil.chown(repo.root, "postgres", "postgres")
    for sub in ("repo", "log", "lock", "broker"):
        (repo.root / sub).mkdir(exist_ok=True)
        chown_tree(repo.root / sub, "postgres")
    text = _conf_text(settings, paths, repo)
    if not repo.conf.exists() or repo.conf.read_text() != text:
        repo.conf.write_text(text)
    shutil.chown(repo.conf, "postgres", "postgres")
    pgbackrest(repo, "stanza-create")
    return repo


def back_up(settings: Settings, kind: str = "incr") -> dict[str, Any]:
    """One backup of the database (``full``, ``diff`` or ``incr``; pgBackRest makes a full one
    when there is none yet) and a consistent copy of the broker's files labelled with it.
    Retention (WASTEPILOT_BACKUP_RETENTION_FULL full backups) expires the oldest after it."""
    if kind not in KINDS:
        raise ServiceError(f"no backup kind {kind!r}: {', '.join(KINDS)}")
    paths = paths_for(settings)
    repo = setup(settings, paths)
    pgbackrest(repo, "backup", f"--type={kind}")
    newest = backups(settings)[-1]
    copy_broker(paths, repo.broker / str(newest["label"]))
    for old in repo.broker.iterdir():  # the broker's copies follow pgBackRest's retention
        if old.name not in {str(b["label"]) for b in backups(settings)}:
            shutil.rmtree(old, ignore_errors=True)
    return newest


def backups(settings: Settings) -> list[dict[str, Any]]:
    """The backups in the repository, oldest first: label, kind, start and stop (UTC), and
    whether the broker's files were copied with it."""
    paths = paths_for(settings)
    repo = repo_for(settings, paths)
    if not repo.conf.exists():
        return []
    info = json.loads(pgbackrest(repo, "info", "--output=json"))
    out = []
    for stanza in info:
        for b in stanza.get("backup", []):
            out.append(
                {
                    "label": b["label"],
                    "kind": b["type"],
                    "start": datetime.fromtimestamp(b["timestamp"]["start"], UTC),
                    "stop": datetime.fromtimestamp(b["timestamp"]["stop"], UTC),
                    "broker": (repo.broker / b["label"] / STORE).exists(),
                    "broker_taken": _taken(repo.broker / b["label"]),
                }
            )
    return sorted(out, key=lambda b: b["stop"])


def _taken(copy: Path) -> datetime | None:
    """When the broker's copy was taken (after its backup finished), if there is one."""
    try:
        return datetime.fromisoformat((copy / "taken.txt").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def copy_broker(paths: Paths, into: Path) -> None:
    """A consistent copy of the broker's store and identities, taken while it runs."""
    tmp = into.with_name(into.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    data = paths.mqtt / "data"
    if (data / STORE).exists():
        src = sqlite3.connect(f"file:{data / STORE}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(tmp / STORE)
        try:
            src.backup(dst)  # one step: a snapshot under one read lock
        finally:
            dst.close()
            src.close()
    dynsec = dynsec_file(paths)
    if dynsec.exists():
        json.loads(dynsec.read_text())  # a whole file (the broker renames a finished one in)
        shutil.copy2(dynsec, tmp / dynsec.name)
    (tmp / "taken.txt").write_text(datetime.now(UTC).isoformat() + "\n")
    shutil.rmtree(into, ignore_errors=True)
    tmp.rename(into)
    chown_tree(into.parent, "postgres")


def restore(settings: Settings, to: datetime, into: Path, port: int) -> tuple[str, Path | None]:
    """Restore the database as it was at ``to`` into a fresh cluster in ``into/pg`` (started on
    ``port``, promoted once recovery reaches ``to``), and the broker's files of the newest backup
    taken at or before ``to`` into ``into/mosquitto``. Returns the new cluster's superuser
    connection string and the broker folder (None when no broker copy is that old). The live
    services are left alone: swap in what was restored as docs/recovery.md says."""
    paths = paths_for(settings)
    repo = repo_for(settings, paths)
    if not repo.conf.exists():
        raise ServiceError(f"no backups here ({repo.root}): `services up --backups` first")
    major = install.installed_pg_majors()[0]
    node = postgres.Node(
        "restored", into / "pg" / "data", into / "pg" / "run", into / "pg" / "pg.log", port
    )
    if node.data.exists() and any(node.data.iterdir()):
        raise ServiceError(f"{node.data} is not empty: restore into a fresh folder")
    node.data.mkdir(parents=True, exist_ok=True)
    node.socket.mkdir(parents=True, exist_ok=True)
    node.data.chmod(0o700)
    chown_tree(into, "postgres")
    target = to.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    pgbackrest(
        repo,
        "restore",
        f"--pg1-path={node.data}",
        "--type=time",
        f"--target={target}",
        "--target-action=promote",
        "--target-exclusive",
    )
    # its own port and socket; no standby to wait for; its WAL not archived into the live
    # repository (it would be a second timeline of the same stanza)
    (node.data / "wastepilot.conf").write_text(postgres.restored_conf(settings, node, archive=None))
    chown_tree(into, "postgres")
    postgres.node_ctl(node, major, "start")
    info = f"host={node.socket} port={node.port} user=postgres dbname=postgres"
    deadline = time.monotonic() + 300
    while True:
        try:
            with psycopg.connect(info, autocommit=True) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        except psycopg.OperationalError:
            row = None
            if not postgres.node_running(node, major):  # recovery gave up (FATAL in its log)
                tail = node.log.read_text(errors="replace").splitlines()[-5:]
                raise ServiceError(
                    f"the restore could not reach {target} (is the WAL up to it archived yet? "
                    "PostgreSQL hands a segment over within a minute): " + " | ".join(tail)
                ) from None
        if row and not row[0]:
            break
        if time.monotonic() > deadline:
            raise ServiceError(f"the restored cluster did not reach {target}; see {node.log}")
        time.sleep(0.2)
    broker_dir: Path | None = None
    older = [b for b in backups(settings) if b["broker_taken"] and b["broker_taken"] <= to]
    if older:
        broker_dir = into / "mosquitto"
        shutil.copytree(repo.broker / str(older[-1]["label"]), broker_dir)
    return info, broker_dir
