"""The failover drill (issue 28): the database as a primary and a synchronous standby of the
test's own (two real clusters), readings at 1,000/s through two ingest workers, `wastepilot
api` and `wastepilot scheduler` running; the primary is killed (-9) and its data directory
deleted, the standby promoted, the lost node rebuilt as the new standby — twice. Nothing is
restarted by hand: every reading the broker acknowledged is stored once, and the API and the
scheduler answer and work on the new primary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import psycopg
import pytest

from bench.chaos import FAILOVER, run_chaos, standby_pair, stop_pair
from core import auth
from core.registry import Device, add_devices
from core.settings import Settings
from tests.helpers import PASSWORD, bearer, free_port, wait_for
from wastepilot.localservices import install, postgres
from wastepilot.localservices import state as localstate

pytestmark = pytest.mark.services


@pytest.fixture
def pair(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, str, str]]:
    if settings.mqtt_url or settings.database_url:
        pytest.skip("the services are external: this test builds local clusters")
    made = standby_pair(tmp_path / "pair")
    try:
        yield made
    finally:
        stop_pair(made[0])


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "wastepilot", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_lost_primary_loses_no_acknowledged_reading_and_nobody_is_restarted(
    pair: tuple[Settings, str, str],
    settings: Settings,
    mqtt_test_url: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    pair_settings, _owner, url = pair
    with psycopg.connect(url) as conn:
        auth.add_user(conn, "drill-analyst", "analyst", PASSWORD)
        token = auth.create_token(conn, "drill-analyst", name="drill")[1]
    port = free_port()
    env = {
        **os.environ,
        "WASTEPILOT_DATABASE_URL": url,
        "WASTEPILOT_API_PORT": str(port),
        "WASTEPILOT_SCHEDULER_METRICS_PORT": str(free_port()),
        "WASTEPILOT_ROLLUP_INTERVAL_S": "5",
    }
    api = _start(["api"], env, tmp_path / "api.log")
    scheduler = _start(["scheduler"], env, tmp_path / "scheduler.log")
    base = f"http://127.0.0.1:{port}"

    def households() -> int:
        try:
            return httpx2.get(
                f"{base}/api/v1/households", headers=bearer(token), timeout=5
            ).status_code
        except httpx2.TransportError:
            return 0

    try:
        wait_for(
            lambda: households() == 200,
            30,
            "the API",
            state=lambda: (tmp_path / "api.log").read_text()[-2000:],
        )
        res = run_chaos(
            settings, url, mqtt_test_url, prefix, readings=30_000, rate=1_000, gap_s=(3.0, 4.0),
            faults=(FAILOVER,), logdir=tmp_path, out=lambda _line: None, db_settings=pair_settings,
        )  # fmt: skip
        after = datetime.now(UTC)
        failovers = [f for f in res.faults if f["fault"] == FAILOVER]
        assert len(failovers) >= 2, res.faults  # and back again, onto the rebuilt node
        assert all(f["first_commit_s"] > 0 for f in failovers), failovers
        assert res.published == 30_000
        assert res.acknowledged >= 0.99 * res.published, res.line()
        assert (res.lost, res.doubled, res.no_subscribers) == (0, 0, 0), res.faults
        assert res.stored_once == res.acknowledged

        # the lost node came back as the standby every commit waits for
        paths = localstate.paths_for(pair_settings)
        primary, standby = postgres.primary_and_standby(pair_settings, paths)
        assert postgres.is_standby(standby) and not postgres.is_standby(primary)
        assert postgres.synchronous(primary, pair_settings.db_standby_name)

        # the API and the scheduler, never restarted, work on the new primary
        assert api.poll() is None and scheduler.poll() is None
        assert households() == 200
        with psycopg.connect(url) as conn:

            def rolled_up_since() -> bool:
                row = conn.execute(
                    "SELECT count(*) FROM job_runs WHERE job = 'rollup_refresh' "
                    "AND outcome = 'ok' AND started_at > %s",
                    (after,),
                ).fetchone()
                conn.rollback()
                return bool(row and row[0])

            wait_for(rolled_up_since, 30, "a rollup by the scheduler on the new primary",
                     state=lambda: (tmp_path / "scheduler.log").read_text()[-2000:])  # fmt: skip
    finally:
        _stop(api)
        _stop(scheduler)


def _metric(port: int, name: str) -> float | None:
    try:
        text = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx2.TransportError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_a_lost_standby_holds_commits_for_the_grace_then_the_guard_lets_them_through(
    pair: tuple[Settings, str, str], tmp_path: Path
) -> None:
    """The standby killed: a commit waits for it (PostgreSQL's synchronous replication) until
    `wastepilot db guard` switches it off after its grace, says so in its metrics, and switches
    it back on once the standby streams again."""
    pair_settings, owner, url = pair
    paths = localstate.paths_for(pair_settings)
    major = install.installed_pg_majors()[0]
    primary, standby = postgres.primary_and_standby(pair_settings, paths)
    port = free_port()
    env = {
        **os.environ,
        "WASTEPILOT_DATABASE_URL": url,
        "WASTEPILOT_DATABASE_OWNER_URL": owner,
        "WASTEPILOT_DB_STANDBY_GRACE_S": "3",
        "WASTEPILOT_DB_GUARD_METRICS_PORT": str(port),
    }
    guard = _start(["db", "guard"], env, tmp_path / "guard.log")
    log = lambda: (tmp_path / "guard.log").read_text()[-2000:]  # noqa: E731
    try:
        wait_for(
            lambda: _metric(port, "wastepilot_db_standbys_streaming") == 1,
            30,
            "the guard",
            state=log,
        )
        assert _metric(port, "wastepilot_db_sync_replication_degraded") == 0
        pid = int((standby.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)  # the standby's host is gone
        done = threading.Event()

        def write() -> None:
            with psycopg.connect(url) as conn:
                add_devices(conn, [Device("GUARD-1", "HH-GUARD-1")])
            done.set()

        threading.Thread(target=write, daemon=True).start()
        with psycopg.connect(owner, autocommit=True) as watch:

            def waits_for_standby() -> bool:
                row = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
                ).fetchone()
                return bool(row and row[0])

            wait_for(lambda: waits_for_standby() or done.is_set(), 10, "the commit")
            assert not done.is_set()  # it waited for the standby ...
        assert done.wait(30), log()  # ... until the guard switched synchronous replication off
        assert _metric(port, "wastepilot_db_sync_replication_degraded") == 1
        assert "switched OFF" in log()

        for _ in range(20):  # the killed standby's children leave its shared memory shortly after
            try:
                postgres.node_ctl(standby, major, "start")
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.5)
        wait_for(
            lambda: postgres.synchronous(primary, pair_settings.db_standby_name),
            30,
            "synchronous again",
            state=log,
        )
        assert _metric(port, "wastepilot_db_sync_replication_degraded") == 0
    finally:
        _stop(guard)
