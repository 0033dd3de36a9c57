"""Migrations: applied once, in order, recorded; edits to applied ones are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from core.errors import MigrationError
from core.migrate import MIGRATIONS_DIR, load_migrations, migrate

pytestmark = pytest.mark.services


@pytest.fixture
def scratch_db(admin_db_url: str) -> str:
    name = "wastepilot_migrate_test"
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin_db_url.rsplit("/", 1)[0] + "/" + name


def test_migrate_applies_all_once_and_rerun_is_a_noop(scratch_db: str) -> None:
    files = load_migrations()
    assert [m.version for m in migrate(scratch_db)] == [m.version for m in files]
    assert migrate(scratch_db) == []
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert [r[0] for r in rows] == [m.version for m in files]
        ht = conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
        ).fetchall()
        assert ("readings",) in ht


def test_changed_migration_is_refused(scratch_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    migrate(scratch_db, folder)
    first = sorted(folder.glob("001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="append-only"):
        migrate(scratch_db, folder)


def test_gap_in_numbering_is_refused(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "003_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="002"):
        load_migrations(tmp_path)
