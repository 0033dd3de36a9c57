"""The chaos run of bench/chaos.py, small: two workers on the shared group, a few thousand
readings, and each kind of fault — broker SIGTERM and kill -9, PostgreSQL kill -9, ingest
worker kill -9 — while readings flow (real services)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bench.chaos import FAULTS, run_chaos
from core.settings import Settings

pytestmark = pytest.mark.services


def test_every_acknowledged_reading_is_stored_once_through_every_kind_of_fault(
    db: psycopg.Connection[tuple[object, ...]],
    db_url: str,
    mqtt_test_url: str,
    prefix: str,
    settings: Settings,
    tmp_path: Path,
) -> None:
    if settings.mqtt_url or settings.database_url:
        pytest.skip("the services are external: this test kills the local ones")
    res = run_chaos(
        settings, db_url, mqtt_test_url, prefix,
        readings=9_000, rate=400, gap_s=(1.5, 2.5), logdir=tmp_path, out=lambda _line: None,
    )  # fmt: skip
    assert sorted({f["fault"] for f in res.faults}) == sorted(FAULTS), res.faults
    assert res.published == 9_000
    assert res.acknowledged >= 0.99 * res.published, res.line()
    assert res.lost == 0, res.faults
    assert res.doubled == 0, res.line()
    assert res.no_subscribers == 0, res.faults
    assert res.stored_once == res.acknowledged
