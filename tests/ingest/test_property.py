"""Property: whatever arrives, ingest keeps running, and every element of every message is either
stored or dead-lettered with a reason (real broker, real database, generated payloads)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.registry import Device, add_devices
from core.topics import readings_topic
from ingest.worker import IngestWorker
from tests.helpers import Publisher, reading, wait_for

pytestmark = pytest.mark.services
Conn = psycopg.Connection[tuple[object, ...]]
MAX_ITEMS = 20
MAX_BYTES = 8192
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def _not_iso(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is None
    except ValueError:
        return True


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what JSON encoders emit
NOT_INT = st.one_of(
    st.text(max_size=5),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(INT64, max_size=2),
    st.integers(min_value=-(2**63), max_value=-1),
)
NOT_MEASURE = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.floats(max_value=-0.001),
    st.floats(min_value=1e6),
    st.lists(st.floats(), max_size=1),
    st.dictionaries(st.text(max_size=2), INT64, max_size=1),
)
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "v": st.one_of(INT64.filter(lambda v: v != 1), st.text(max_size=3), st.none()),
    "seq": NOT_INT,
    "ts": st.one_of(
        st.text(max_size=30).filter(_not_iso),
        INT64,
        st.none(),
        st.sampled_from(
            ["2030-01-01T00:00:00Z", "2019-12-31T23:59:59+00:00", "2026-11-24T10:00:00"]
        ),
    ),
    "kind": st.text(max_size=8).filter(lambda k: k not in ("run", "fault")),
    "run_s": NOT_MEASURE,
    "energy_wh": NOT_MEASURE,
    "water_l": NOT_MEASURE,
    "device_id": st.sampled_from(["OTHER-1", "x/y", "", "#"]),
}


@st.composite
def element(draw: st.DrawFn, device: str, index: int) -> tuple[Any, bool]:
    """(JSON-able element, whether it is a valid reading)."""
    good = reading(
        device_id=device,
        seq=index + 1,
        at=BASE + timedelta(seconds=index),
        run_s=draw(st.floats(0, 600)),
        water_l=draw(st.floats(0, 200)),
    )
    how = draw(st.sampled_from(["good", "good", "drop", "replace", "not_object"]))
    if how == "good":
        return good, True
    if how == "not_object":
        return draw(
            st.one_of(INT64, st.text(max_size=5), st.none(), st.lists(st.none(), max_size=2))
        ), False
    field = draw(
        st.sampled_from(
            sorted(BAD_VALUES)
            if how == "replace"
            else ["v", "seq", "ts", "kind", "run_s", "energy_wh", "water_l", "device_id"]
        )
    )
    bad = dict(good)
    if how == "drop":
        del bad[field]
    else:
        bad[field] = draw(BAD_VALUES[field])
    return bad, False


@st.composite
def message(draw: st.DrawFn, device: str) -> tuple[bytes, int, set[int]]:
    """(payload, elements to account for, seqs that must be stored)."""
    shape = draw(st.sampled_from(["single", "array", "array", "junk", "too_many", "oversized"]))
    if shape == "junk":
        raw = draw(st.binary(max_size=40).filter(lambda b: b.strip()[:1] not in (b"[", b"{")))
        return raw, 1, set()
    if shape == "too_many":
        return (
            orjson.dumps([reading(device_id=device, seq=i + 1) for i in range(MAX_ITEMS + 1)]),
            1,
            set(),
        )
    if shape == "oversized":
        return orjson.dumps(reading(device_id=device, pad="x" * MAX_BYTES)), 1, set()
    n = 1 if shape == "single" else draw(st.integers(1, MAX_ITEMS))
    items = [draw(element(device, i)) for i in range(n)]
    body: Any = items[0][0] if shape == "single" else [it for it, _ in items]
    payload = orjson.dumps(body)
    if shape == "single" and not isinstance(body, dict):
        # a list is an array message: each of its (non-object) elements is one dead letter
        return payload, (len(body) if isinstance(body, list) and body else 1), set()
    return payload, n, {i + 1 for i, (_, ok) in enumerate(items) if ok}


@pytest.fixture
def worker(start_worker: Callable[..., IngestWorker], prefix: str) -> IngestWorker:
    """One worker for all of hypothesis's examples: fixtures are set up once per test
    function, not once per example."""
    return start_worker(limits=_limits(prefix))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_every_element_is_stored_or_dead_lettered(
    data: st.DataObject,
    db: Conn,
    worker: IngestWorker,
    mqtt_test_url: str,
    prefix: str,
) -> None:
    run = uuid.uuid4().hex[:6]
    count = data.draw(st.integers(40, 120))
    devices = [f"P{run}-{i}" for i in range(count)]
    add_devices(db, [Device(d, f"H{run}") for d in devices])
    msgs = [data.draw(message(d)) for d in devices]
    pub = Publisher(mqtt_test_url, f"prop-{run}")
    for d, (payload, _, _) in zip(devices, msgs, strict=True):
        pub.publish(readings_topic(prefix, d), payload)
    pub.close()
    want_units = sum(units for _, units, _ in msgs)

    def accounted() -> int:
        row = db.execute(
            "SELECT (SELECT count(*) FROM readings WHERE device_id LIKE %(p)s)"
            " + (SELECT count(*) FROM dead_letters WHERE device_id LIKE %(p)s)",
            {"p": f"P{run}-%"},
        ).fetchone()
        return int(row[0]) if row else -1  # type: ignore[call-overload]

    wait_for(lambda: accounted() >= want_units, 20, f"{want_units} elements accounted for")
    for d, (_, units, good) in zip(devices, msgs, strict=True):
        seqs = {
            int(r[0]) for r in db.execute("SELECT seq FROM readings WHERE device_id = %s", (d,))
        }  # type: ignore[call-overload]
        assert seqs == good, d
        dead = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE reason = '' OR detail = '') "
            "FROM dead_letters WHERE device_id = %s",
            (d,),
        ).fetchone()
        assert dead is not None
        assert int(dead[0]) == units - len(good), d  # type: ignore[call-overload]
        assert dead[1] == 0
    assert worker.ready()[0], "ingest is not healthy after the run"


def _limits(prefix: str) -> Any:
    from dataclasses import replace

    from core.settings import Settings
    from ingest.validate import Limits

    return replace(
        Limits.from_settings(Settings(), prefix=prefix),
        max_readings=MAX_ITEMS,
        max_payload_bytes=MAX_BYTES,
    )
