"""Scheduled jobs against the real database: the advisory lock between schedulers, retention,
device health and the weekly report."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.anomalies import check_devices
from analytics.jobs import weekly_report
from analytics.report import last_full_week, store_report
from analytics.retention import drop_raw
from analytics.rollups import refresh
from core import clock
from core.jobs import Outcome, run_job
from core.registry import Device, Household, add_devices, add_households
from core.settings import Settings
from tests.analytics.test_rollups import LONDON, insert
from tests.helpers import AWKWARD_INSTANTS, bearer

pytestmark = pytest.mark.services

Conn = psycopg.Connection[tuple[object, ...]]


def test_two_schedulers_never_run_a_job_twice_at_once(db: Conn, db_url: str) -> None:
    running: list[int] = []
    overlap: list[int] = []
    barrier = threading.Barrier(2)
    outcomes: list[Outcome] = []

    def slow(conn: Any, s: Settings) -> int:
        running.append(1)
        overlap.append(len(running))
        time.sleep(1.0)
        running.pop()
        return 7

    def scheduler() -> None:
        barrier.wait()
        outcomes.append(run_job(db_url, "slow_job", slow, Settings()))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(o.outcome for o in outcomes) == ["ok", "skipped"]
    assert overlap == [1]
    rows = db.execute("SELECT outcome, rows_touched FROM job_runs ORDER BY outcome").fetchall()
    assert rows == [("ok", 7), ("skipped", None)]
    # the lock is released: the next run goes ahead
    assert run_job(db_url, "slow_job", lambda c, s: 0, Settings()).outcome == "ok"


def test_two_scheduler_processes_record_each_run(db: Conn, db_url: str) -> None:
    """Two `wastepilot scheduler --once` processes at the same moment: each run is recorded,
    none overlaps another of the same job."""
    env = {"WASTEPILOT_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    cmd = [str(Path(sys.executable).parent / "wastepilot"), "scheduler", "--once", "rollup_refresh"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(60) == 0, p.stdout.read() if p.stdout else ""
        if p.stdout:
            p.stdout.close()
    runs = db.execute(
        "SELECT outcome, started_at, finished_at FROM job_runs WHERE job = 'rollup_refresh' ORDER BY started_at"
    ).fetchall()
    assert len(runs) == 2
    ok = [r for r in runs if r[0] == "ok"]
    assert ok, runs  # at least one of the two ran the job
    for a, b in itertools.pairwise(ok):
        assert a[2] <= b[1]  # one finished before the next started


def test_a_failing_job_is_recorded_and_does_not_stop_the_scheduler(db: Conn, db_url: str) -> None:
    def broken(conn: Any, s: Settings) -> int:
        conn.execute("SELECT 1/0")
        return 0

    out = run_job(db_url, "broken", broken, Settings())
    assert out.outcome == "failed"
    assert "division by zero" in out.detail
    assert db.execute("SELECT outcome FROM job_runs WHERE job = 'broken'").fetchone() == ("failed",)


def test_retention_drops_only_old_raw_chunks_and_keeps_their_rollups(
    db: Conn, awkward_now: datetime
) -> None:
    add_households(db, [Household("HH-R", joined_on=date(2020, 1, 1))])
    add_devices(db, [Device("D-R", "HH-R")])
    now = awkward_now
    insert(db, "D-R", 1, now - timedelta(days=900))
    insert(db, "D-R", 2, now - timedelta(days=899))
    insert(db, "D-R", 3, now - timedelta(days=10))
    # the old readings were never rolled up (they are far older than the late window)
    assert drop_raw(db, retention_days=365) >= 1
    assert db.execute("SELECT seq FROM readings ORDER BY seq").fetchall() == [(3,)]
    old_days = db.execute(
        "SELECT sum(uses) FROM usage_daily WHERE day < %s::date - 365",
        (now.astimezone(LONDON).date(),),
    ).fetchone()
    assert old_days == (2,)
    assert drop_raw(db, retention_days=365) == 0  # nothing more to drop


def test_device_health_opens_and_resolves_anomalies(db: Conn, awkward_now: datetime) -> None:
    add_households(
        db,
        [
            Household("HH-A", joined_on=date(2026, 1, 1)),
            Household("HH-B", joined_on=date(2026, 1, 1)),
        ],
    )
    add_devices(db, [Device("D-A", "HH-A"), Device("D-B", "HH-B")])
    now = awkward_now
    db.execute(
        "INSERT INTO device_status (device_id, online, last_seen) VALUES ('D-A', false, %s), ('D-B', true, %s)",
        (now - timedelta(days=3), now),
    )
    for seq in range(1, 11):  # ten uses at 5 L each, two jams and a leak
        insert(db, "D-B", seq, now - timedelta(days=1, minutes=seq), water=5.0)
    insert(db, "D-B", 11, now - timedelta(hours=20), "fault", "jam")
    insert(db, "D-B", 12, now - timedelta(hours=19), "fault", "jam")
    insert(db, "D-B", 13, now - timedelta(hours=18), "fault", "leak")
    refresh(db, timedelta(days=7), commit_lag=timedelta(0))
    assert check_devices(db, Settings()) == 4
    found = dict(
        db.execute("SELECT kind, device_id FROM anomalies WHERE resolved_at IS NULL").fetchall()
    )
    assert found == {"offline": "D-A", "jam_rate": "D-B", "leak": "D-B", "water_per_use": "D-B"}
    # heard from 47 h ago: not yet offline (the setting's default is 48 h)
    db.execute(
        "UPDATE device_status SET last_seen = %s WHERE device_id = 'D-A'",
        (now - timedelta(hours=47),),
    )
    assert check_devices(db, Settings()) == 3
    # the device comes back: its anomaly is resolved, the others stay open (once each)
    db.execute("UPDATE device_status SET last_seen = %s WHERE device_id = 'D-A'", (now,))
    assert check_devices(db, Settings()) == 3
    rows = db.execute(
        "SELECT kind, resolved_at IS NOT NULL FROM anomalies ORDER BY kind"
    ).fetchall()
    assert rows == [
        ("jam_rate", False),
        ("leak", False),
        ("offline", True),
        ("water_per_use", False),
    ]


def test_weekly_report_is_kept_and_downloadable(
    db: Conn, db_url: str, tokens: dict[str, str]
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    start, end = last_full_week(date(2026, 11, 25))
    assert (start, end) == (date(2026, 11, 16), date(2026, 11, 23))
    add_households(db, [Household("HH-W", joined_on=date(2026, 1, 1))])
    add_devices(db, [Device("D-W", "HH-W")])
    for seq in range(1, 8):
        insert(db, "D-W", seq, datetime(2026, 11, 16 + seq - 1, 19, 0, tzinfo=UTC))
    insert(db, "D-W", 8, datetime(2026, 11, 10, 19, 0, tzinfo=UTC))
    refresh(db, timedelta(days=7), commit_lag=timedelta(0))
    rid = store_report(db, start, end, Settings())
    assert store_report(db, start, end, Settings()) == rid  # the same week again replaces it
    with TestClient(
        create_app(Settings(database_url=db_url)), headers=bearer(tokens["analyst"])
    ) as api:
        listed = api.get("/api/v1/reports/weekly").json()
        assert [r["period_start"] for r in listed] == ["2026-11-16"]
        page = api.get(f"/api/v1/reports/weekly/{rid}.html")
        assert page.headers["content-type"].startswith("text/html")
        assert page.text.count("data:image/png;base64,") == 2
        # written for people: units, UK dates, no None/nan
        assert "16 Nov 2026 to 22 Nov 2026" in page.text
        assert "<td>1.5 kg</td><td>0.2 kg</td>" in page.text  # 7 and 1 uses x 0.22 kg
        assert not re.search(r"\bNone\b|\bnan\b", page.text)
        csv_text = api.get(f"/api/v1/reports/weekly/{rid}.csv").text
        # seven uses this week, one the week before (the change is of the figures shown)
        assert "Uses per household per day (mean),1.0,0.143,+599.3%" in csv_text
        assert api.get("/api/v1/reports/weekly/999999.html").status_code == 404
        run_job(db_url, "weekly_probe", lambda c, s: 3, Settings())
        jobs = api.get("/api/v1/jobs", params={"job": "weekly_probe"}).json()
        assert [(j["outcome"], j["rows_touched"]) for j in jobs] == [("ok", 3)]


@pytest.mark.parametrize(
    ("at", "week"),
    [
        (AWKWARD_INSTANTS["holiday-of-SIM-000001"], date(2027, 5, 17)),  # a Sunday, BST
        (AWKWARD_INSTANTS["spring-forward"], date(2027, 3, 15)),
        (AWKWARD_INSTANTS["repeated-hour"], date(2026, 10, 12)),
        (AWKWARD_INSTANTS["leap-day-evening"], date(2028, 2, 21)),
        (AWKWARD_INSTANTS["new-years-eve"], date(2026, 12, 21)),
        # 00:30 BST on Monday 31 May: the UK's week has turned, UTC's (Sunday 23:30) has not
        (datetime(2027, 5, 30, 23, 30, tzinfo=UTC), date(2027, 5, 24)),
    ],
    ids=[*AWKWARD_INSTANTS, "monday-0030-bst"],
)
def test_weekly_report_job_reports_the_last_full_uk_week(
    db: Conn, at: datetime, week: date
) -> None:
    with clock.frozen_at(at):
        assert weekly_report(db, Settings()) == 1
    assert db.execute("SELECT period_start, period_end FROM weekly_reports").fetchall() == [
        (week, week + timedelta(days=7))
    ]


def test_report_command_writes_any_period(db: Conn, db_url: str, tmp_path: Path) -> None:
    add_households(db, [Household("HH-C", joined_on=date(2026, 1, 1))])
    add_devices(db, [Device("D-C", "HH-C")])
    insert(db, "D-C", 1, datetime(2026, 6, 3, 18, 0, tzinfo=UTC))
    refresh(db, timedelta(days=7), commit_lag=timedelta(0))
    env = {"WASTEPILOT_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    exe = str(Path(sys.executable).parent / "wastepilot")
    args = ["report", "--start", "2026-06-01", "--end", "2026-06-08", "--out", str(tmp_path)]
    done = subprocess.run(
        [exe, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    html = (tmp_path / "pilot-2026-06-01-to-2026-06-08.html").read_text()
    assert "1 of\n1 household used their" in html
    csv_text = (tmp_path / "pilot-2026-06-01-to-2026-06-08.csv").read_text()
    assert csv_text.splitlines()[0] == "figure,2026-06-01..2026-06-08,2026-05-25..2026-06-01,change"
