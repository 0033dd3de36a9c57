"""Numbered SQL migrations, applied once each, in order, one transaction each, under a lock."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from core import queries as q
from core.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
# Any constant works: it only has to be the same for every process that migrates this database.
_LOCK_KEY = 0x77617374


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files of ``folder``, in order; refuses gaps and duplicate numbers."""
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNN_snake_case.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    found.sort(key=lambda mig: mig.version)
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise MigrationError(f"migration {expected:03d} is missing (found {mig.version:03d})")
    return found


def migrate(url: str, folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply the pending migrations; returns those applied (empty when up to date)."""
    migrations = load_migrations(folder)
    applied: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(q.MIGRATE_LOCK, (_LOCK_KEY,))
        try:
            conn.execute(q.CREATE_SCHEMA_MIGRATIONS)
            done = {int(v): str(c) for v, c in conn.execute(q.APPLIED_MIGRATIONS)}
            for mig in migrations:
                if mig.version in done:
                    if done[mig.version] != mig.checksum:
                        raise MigrationError(
                            f"migration {mig.version:03d}_{mig.name} was changed after it was "
                            "applied; migrations are append-only: add a new one instead"
                        )
                    continue
                log.info("applying migration %03d_%s", mig.version, mig.name)
                try:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        conn.execute(
                            q.RECORD_MIGRATION,
                            (mig.version, mig.name, mig.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {mig.version:03d}_{mig.name} failed: {exc}"
                    ) from exc
                applied.append(mig)
        finally:
            conn.execute(q.MIGRATE_UNLOCK, (_LOCK_KEY,))
    return applied
