"""The archive tier (issue 32): a month of raw readings goes to a Parquet file and back, and a
kill -9 at every step of either way loses and doubles nothing — at every moment the readings
visible (the database's, plus the file's once the month is archived) are exactly the month's;
the usage the API answers is the same before and after; erasure reaches the files; a late
reading in an archived month never re-aggregates its hour from itself alone."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics import archive
from analytics.rollups import rebuild, refresh
from analytics.usage import Bucket, usage_series
from api.keepers import KEEPERS
from core import clock, keepers
from core.registry import Device, Household, add_devices, add_households
from core.settings import Settings

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
JAN = date(2025, 1, 1)
LO, HI = archive.month_range(JAN)
ARCHIVE_STEPS = ("rolled up", "writing", "written", "verified", "archived", "chunks dropped")
RESTORE_STEPS = ("restoring", "copied", "restored")
ROW = "device_id, ts, seq, kind, run_s, energy_wh, water_l, peak_a, fault, received_at"


def a_winter(db: Conn) -> None:
    """Three households' readings every three hours (a few faults), December to February."""
    add_households(db, [Household(f"HH-{i}", joined_on=date(2024, 11, 1)) for i in (1, 2, 3)])
    add_devices(db, [Device(f"D-{i}", f"HH-{i}") for i in (1, 2, 3)])
    rows = []
    t, seq = datetime(2024, 12, 30, tzinfo=UTC), 0
    while t < datetime(2025, 2, 3, tzinfo=UTC):
        seq += 1
        for i in (1, 2, 3):
            fault = "jam" if seq % 37 == i else None
            rows.append((t + timedelta(minutes=7 * i, seconds=seq % 50), f"D-{i}", seq,
                         "fault" if fault else "run", 10.0 + seq % 9 / 3, 2.5 + i / 7,
                         1.1 + (seq * i) % 13 / 10, 3.3, fault))  # fmt: skip
        t += timedelta(hours=3)
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a,"
            " fault) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)  # fmt: skip
    with clock.frozen_at(datetime(2025, 2, 10, tzinfo=UTC)):
        refresh(db, timedelta(days=400), commit_lag=timedelta(0))


def as_stored(row: Any) -> tuple[Any, ...]:
    """A row with its real (float4) columns as the float4 they are: PostgreSQL prints 3.3,
    Parquet gives back the float32's exact 3.2999999523…, the same stored value."""
    return tuple(float(struct.unpack("f", struct.pack("f", v))[0]) if isinstance(v, float) else v
                 for v in row)  # fmt: skip


def in_db(db: Conn) -> Counter[tuple[Any, ...]]:
    rows = db.execute(f"SELECT {ROW} FROM readings WHERE ts >= %s AND ts < %s", (LO, HI))
    return Counter(as_stored(r) for r in rows.fetchall())


def in_file(db: Conn, path: Path) -> Counter[tuple[Any, ...]]:
    """The file's rows, once the month is archived (before, the database is the truth)."""
    state = db.execute("SELECT state FROM archived_months WHERE month = %s", (JAN,)).fetchone()
    if state is None or state[0] not in ("archived", "restoring"):
        return Counter()
    import pyarrow.parquet as pq

    t = pq.read_table(path).to_pylist()
    return Counter(as_stored(tuple(r[c.strip()] for c in ROW.split(","))) for r in t)


def killed_at(db_url: str, folder: Path, verb: str, step: str) -> int:
    """`archive_month` or `restore_month` of January in a process of its own that kills itself
    (SIGKILL) as ``step`` completes; returns its exit status."""
    code = (
        "import os, signal, psycopg\n"
        "from analytics import archive\n"
        "from core.settings import Settings\n"
        f"s = Settings(database_url={db_url!r}, archive_dir={str(folder)!r})\n"
        f"def die(step):\n    if step == {step!r}: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"with psycopg.connect({db_url!r}, autocommit=True) as conn:\n"
        f"    archive.{verb}_month(conn, s, archive.parse_month('2025-01'), die)\n"
    )
    return subprocess.run([sys.executable, "-c", code], check=False, cwd=os.getcwd()).returncode


def series(db: Conn) -> list[Any]:
    """What the usage API answers over January and its edges: whole hours and days from the
    rollups, part-hour edges and 15-minute buckets from raw readings (the database's, or an
    archived month's file), for a household, a cohort and the pilot."""
    spans = [(LO - timedelta(days=3), HI + timedelta(days=2)),
             (datetime(2025, 1, 10, 5, 23, tzinfo=UTC), datetime(2025, 1, 12, 17, 41, tzinfo=UTC))]  # fmt: skip
    return [usage_series(db, scope, key, b, lo, hi)
            for scope, key in (("household", "HH-2"), ("cohort", "default"), ("pilot", None))
            for lo, hi in spans
            for b in (Bucket.M15, Bucket.H1, Bucket.D1, Bucket.W1)]  # fmt: skip


def test_a_kill_at_any_step_of_archiving_or_restoring_loses_and_doubles_nothing(
    db: Conn, db_url: str, tmp_path: Path
) -> None:
    a_winter(db)
    original = in_db(db)
    assert len(original) > 700
    answers = series(db)
    assert all(answers) and len(answers[4]) > 10  # each has points; the 15-minute one many
    s = Settings(database_url=db_url, archive_dir=tmp_path)
    path = tmp_path / archive.relative_path(JAN)
    for step in ARCHIVE_STEPS:
        assert killed_at(db_url, tmp_path, "archive", step) == -9, step
        assert in_db(db) + in_file(db, path) == original, f"killed at {step!r}"
        assert archive.archive_month(db, s, JAN).startswith(("archived", "archived already"))
        assert in_db(db) == Counter() and in_file(db, path) == original, step
        assert series(db) == answers, step  # the rollups keep the month
        for restore_step in RESTORE_STEPS:
            assert killed_at(db_url, tmp_path, "restore", restore_step) == -9, restore_step
            assert in_db(db) + in_file(db, path) == original, f"killed at {restore_step!r}"
            if restore_step != "restored":  # after the commit it is done
                assert archive.restore_month(db, s, JAN).startswith("restored")
            else:
                with pytest.raises(Exception, match="not archived"):
                    archive.restore_month(db, s, JAN)  # the leftover file goes
            assert in_db(db) == original and not path.exists(), restore_step
            if restore_step != RESTORE_STEPS[-1]:
                archive.archive_month(db, s, JAN)
    # the tally the database computed matches the file's, independently computed
    archive.archive_month(db, s, JAN)
    listed = archive.listing(db)
    assert [(r["month"], r["state"], r["rows"]) for r in listed] == [(JAN, "archived",
                                                                       len(original))]  # fmt: skip
    assert archive.file_tally(path).rows == len(original)
    # the months either side were not touched
    assert db.execute("SELECT count(*) FROM readings WHERE ts < %s", (LO,)).fetchone() != (0,)
    assert db.execute("SELECT count(*) FROM readings WHERE ts >= %s", (HI,)).fetchone() != (0,)


def test_erasure_reaches_the_archive_and_a_late_reading_never_rebuilds_a_month_alone(
    db: Conn, db_url: str, tmp_path: Path
) -> None:
    a_winter(db)
    s = Settings(database_url=db_url, archive_dir=tmp_path)
    path = tmp_path / archive.relative_path(JAN)
    before = db.execute("SELECT uses, water_l FROM usage_daily WHERE household_ref = 'HH-1' "
                        "AND day = '2025-01-15'").fetchone()  # fmt: skip
    archive.archive_month(db, s, JAN)
    # a reading of mid-January arrives thirteen months late; a rebuild must not make the day
    # of its hour that one reading
    db.execute(
        "INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh, water_l,"
        " peak_a) VALUES ('2025-01-15T12:00Z', 'D-1', 999999, 'run', 1, 1, 1, 1)"
    )
    rebuild(db, LO, HI)
    after = db.execute("SELECT uses, water_l FROM usage_daily WHERE household_ref = 'HH-1' "
                       "AND day = '2025-01-15'").fetchone()  # fmt: skip
    assert after == before and before is not None and int(str(before[0])) > 1
    # erasing household 2 rewrites the month's file without its device
    rows = archive.file_tally(path).rows
    done = keepers.erase_household(KEEPERS, db, "HH-2", ["D-2"])
    assert done["archived_readings"] == rows // 3
    import pyarrow.parquet as pq

    assert "D-2" not in set(pq.read_table(path, columns=["device_id"]).column(0).to_pylist())
    listed = archive.listing(db)[0]
    assert listed["rows"] == archive.file_tally(path).rows == rows - rows // 3
    assert not list(path.parent.glob("*.tmp"))


def test_the_archive_job_takes_the_months_old_enough_and_a_bad_month_is_refused(
    db: Conn, db_url: str, tmp_path: Path
) -> None:
    a_winter(db)
    s = Settings(database_url=db_url, archive_dir=tmp_path, archive_after_months=13)
    with clock.frozen_at(datetime(2026, 2, 10, tzinfo=UTC)):
        assert archive.due_months(db, s) == [date(2024, 12, 1)]  # January is 12 whole months
    with clock.frozen_at(datetime(2026, 3, 1, tzinfo=UTC)):
        assert archive.due_months(db, s) == [date(2024, 12, 1), JAN]
        assert archive.archive_due(db, s) == 2
        assert archive.due_months(db, s) == []
    assert archive.due_months(db, Settings(database_url=db_url)) == []  # unset: never
    with pytest.raises(ValueError, match="YYYY-MM"):
        archive.parse_month("January")


def test_a_reading_stored_while_its_month_is_archived_is_not_deleted_unfiled(
    db: Conn, db_url: str, tmp_path: Path
) -> None:
    """Between the file's check and the delete, a late reading of the month arrives: the
    delete takes it too, sees the rows it took are not the file's, and rolls back — nothing is
    deleted, and the next run files it with the rest."""
    from core.errors import Conflict

    a_winter(db)
    original = in_db(db)
    s = Settings(database_url=db_url, archive_dir=tmp_path)
    path = tmp_path / archive.relative_path(JAN)

    def late(step: str) -> None:
        if step == "verified":
            db.execute("INSERT INTO readings (ts, device_id, seq, kind, run_s, energy_wh,"
                       " water_l, peak_a) VALUES ('2025-01-20T08:00Z', 'D-3', 424242, 'run',"
                       " 9, 2, 1, 3)")  # fmt: skip

    with pytest.raises(Conflict, match="stored while it was being archived"):
        archive.archive_month(db, s, JAN, late)
    assert sum(in_db(db).values()) == sum(original.values()) + 1  # all here, the late one too
    assert in_file(db, path) == Counter()  # the month is not archived
    archive.archive_month(db, s, JAN)
    assert in_db(db) == Counter()
    assert sum(in_file(db, path).values()) == sum(original.values()) + 1
