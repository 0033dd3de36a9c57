"""The chaos run of bench/chaos.py, small: two workers on the shared group, a few thousand
readings, and each kind of fault — broker SIGTERM and kill -9, PostgreSQL kill -9, ingest
worker kill -9 — while readings flow (real services)."""

from __future__ import annotations

import ssl
from pathlib import Path

import psycopg
import pytest
from cryptography import x509

from bench.chaos import FAULTS, RENEWAL, run_chaos, tls_url
from core.settings import Settings
from wastepilot.localservices import broker
from wastepilot.localservices import state as localstate

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
    lossy = [f for f in res.faults if f["lost"]]
    assert res.lost == 0, (res.line(), res.lost_keys, lossy)  # which reading, which fault
    assert res.doubled == 0, res.line()
    assert res.no_subscribers == 0, res.faults
    assert res.stored_once == res.acknowledged


def test_a_broker_certificate_renewal_under_tls_publishing_loses_nothing_and_drops_nobody(
    db: psycopg.Connection[tuple[object, ...]],
    db_url: str,
    prefix: str,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """The publisher on the broker's TLS listener (the local CA pinned) while the broker's
    certificate is renewed (at least twice) and taken by SIGHUP: every reading acknowledged
    and stored once, the publisher never disconnected, and the new certificate served."""
    if settings.mqtt_url or settings.database_url:
        pytest.skip("the services are external: this test renews the local broker's certificate")
    tls = broker.tls_files(settings, localstate.paths_for(settings))
    assert tls is not None and tls[2] is not None
    before = x509.load_pem_x509_certificate(tls[0].read_bytes()).serial_number
    res = run_chaos(
        settings, db_url, tls_url(settings), prefix, readings=4_000, rate=500,
        gap_s=(2.0, 3.0), faults=(RENEWAL,), logdir=tmp_path, out=lambda _line: None,
    )  # fmt: skip
    assert [f["fault"] for f in res.faults] == [RENEWAL] * len(res.faults)
    assert len(res.faults) >= 2, res.faults
    assert res.published == 4_000 and res.acknowledged == res.published, res.line()
    assert (res.lost, res.doubled, res.disconnects) == (0, 0, 0), res.line()
    assert res.stored_once == res.acknowledged
    served = ssl.get_server_certificate(("127.0.0.1", settings.mqtt_tls_port))
    after = x509.load_pem_x509_certificate(served.encode()).serial_number
    assert after != before
