"""Migrations: applied once, in order, recorded; edits to applied ones are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from core.errors import MigrationError
from core.migrate import MIGRATIONS_DIR, load_migrations, migrate
from wastepilot.prepare import fresh_database

pytestmark = pytest.mark.services


@pytest.fixture
def scratch_db(admin_db_url: str) -> str:
    return fresh_database(admin_db_url, "wastepilot_migrate_test", migrated=False)


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


def test_readings_key_upgrade_keeps_data_and_serves_device_time_ranges(
    scratch_db: str, tmp_path: Path
) -> None:
    """009 rebuilds the idempotency key as (device_id, ts, seq) over existing readings: the
    readings stay, a repeat is still skipped by ON CONFLICT (device_id, seq, ts), and one
    device's latest readings are read from the key (the index 009 dropped served that)."""
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "009":  # those before the migration under test
            shutil.copy(path, before / path.name)
    migrate(scratch_db, before)
    insert = (
        "INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l) "
        "SELECT timestamptz '2026-01-05' + make_interval(mins => i), 'DEV-' || (i % 3), i, "
        "'run', 10, 2, 1 FROM generate_series(1, 600) i "
        "ON CONFLICT (device_id, seq, ts) DO NOTHING"
    )
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute(insert).rowcount == 600
    migrate(scratch_db)
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (600,)
        assert conn.execute(insert).rowcount == 0  # every one a duplicate
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT ts FROM readings WHERE device_id = 'DEV-1' "
                "AND ts >= '2026-01-05' AND ts < '2026-01-06' ORDER BY ts DESC LIMIT 5"
            )
        )
    assert "readings_key" in plan, plan
    assert "readings_device_ts_idx" not in plan
