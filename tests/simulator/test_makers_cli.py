"""`wastepilot simulate --device-kind` and the scheduler's derive_uses job, as an operator runs
them: a day of two households' Tasmota plugs through the real broker and an ingest worker, the
job as its own process; the uses stored are the model's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.settings import Settings
from ingest.validate import Limits
from ingest.worker import IngestWorker
from simulator.makers import day_messages
from simulator.model import household_day, make_household
from simulator.params import Params
from simulator.runner import maker_device_id
from tests.helpers import metric_value, wait_for

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
ROOT = Path(__file__).resolve().parents[2]
DAY = datetime(2026, 3, 10, tzinfo=UTC)
SEED = 7
FIRST = 70  # households of their own: SIM-000070, SIM-000071


def wastepilot(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "WASTEPILOT_DATABASE_URL": db_url,
        # the simulator publishes the day before this instant (the process's clock)
        "WASTEPILOT_CLOCK_AT": (DAY + timedelta(days=1)).isoformat(),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "wastepilot"), *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_simulate_a_makers_format_and_derive_its_uses(
    db: Conn,
    db_url: str,
    settings: Settings,
    start_worker: Callable[..., IngestWorker],
) -> None:
    w = start_worker(
        mqtt_url=settings.mqtt_url_for("ingest"),
        limits=replace(Limits.from_settings(settings), prefix=settings.topic_prefix),
    )
    sim = wastepilot(db_url, "simulate", "--device-kind", "tasmota", "--households", "2",
                     "--first", str(FIRST), "--seed", str(SEED), "--backfill-days", "1",
                     "--no-live")  # fmt: skip
    assert sim.returncode == 0, sim.stdout + sim.stderr
    assert "not confirmed: 0" in sim.stdout
    devices = [maker_device_id("tasmota", i) for i in (FIRST, FIRST + 1)]
    kinds = db.execute("SELECT id, kind FROM devices WHERE id = ANY(%s) ORDER BY id", (devices,))
    assert kinds.fetchall() == [(d, "tasmota") for d in devices]
    p = Params()
    expected: dict[str, int] = {}
    samples = 0
    for index, device in zip((FIRST, FIRST + 1), devices, strict=True):
        h = make_household(index, SEED, p)
        events = [e for e in household_day(h, DAY.date(), SEED, p)
                  if DAY <= e.at < DAY + timedelta(days=1)]  # fmt: skip
        msgs, truth = day_messages("tasmota", h, events, DAY, SEED)
        expected[device] = len([u for u in truth.uses if u.run_s >= settings.uses_min_on_s])
        samples += 2 * len({m.payload for m in msgs if m.subtopic == "tele/SENSOR"})
    assert sum(expected.values()) > 0
    wait_for(lambda: metric_value(w.metrics.samples_written) >= samples, 60, "the samples stored")
    job = wastepilot(db_url, "scheduler", "--once", "derive_uses")
    assert job.returncode == 0, job.stdout + job.stderr
    got = dict(
        db.execute(
            "SELECT d.id, count(u.start_at) FROM devices d"
            " LEFT JOIN power_uses u ON u.device_id = d.id WHERE d.id = ANY(%s) GROUP BY d.id",
            (devices,),
        ).fetchall()
    )
    assert got == expected
    run = db.execute("SELECT outcome, rows_touched FROM job_runs WHERE job = 'derive_uses'")
    assert run.fetchall() == [("ok", sum(expected.values()))]
