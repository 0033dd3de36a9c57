"""Message checks against the configured limits (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.settings import Settings
from core.wire import Reason
from ingest.validate import DeviceState, Limits, check_message, check_registry
from tests.helpers import dumps, reading

PREFIX = "wastepilot/v1"
TOPIC = f"{PREFIX}/devices/FWD-000001/readings"


@pytest.fixture
def limits() -> Limits:
    return Limits.from_settings(Settings(), prefix=PREFIX)


def test_good_single_and_array(limits: Limits) -> None:
    assert len(check_message(TOPIC, dumps(reading()), limits).readings) == 1
    out = check_message(TOPIC, dumps([reading(seq=i) for i in range(1, 6)]), limits)
    assert [r.seq for r in out.readings] == [1, 2, 3, 4, 5]
    assert out.rejects == []


def test_partially_bad_array_keeps_the_good_readings(limits: Limits) -> None:
    items = [reading(seq=1), reading(seq="two"), reading(seq=3), {"nonsense": True}, 7]
    out = check_message(TOPIC, dumps(items), limits)
    assert [r.seq for r in out.readings] == [1, 3]
    assert [(r.index, r.reason) for r in out.rejects] == [
        (1, Reason.WRONG_TYPE),
        (3, Reason.MISSING_FIELD),
        (4, Reason.NOT_A_READING),
    ]
    # each rejected element keeps its own JSON, so a replay can re-read it alone
    assert b'"two"' in out.rejects[0].payload


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, reading(device_id="FWD-000002"), Reason.DEVICE_MISMATCH),
        (TOPIC, reading(run_s=601.0), Reason.OUT_OF_RANGE),
        (TOPIC, reading(peak_a=41.0), Reason.OUT_OF_RANGE),
        (TOPIC, reading(at=datetime.now(UTC) + timedelta(hours=1)), Reason.TS_IN_FUTURE),
        (TOPIC, reading(at=datetime(2020, 1, 1, tzinfo=UTC)), Reason.TS_BEFORE_PILOT),
        (f"{PREFIX}/devices/FWD-000001/other", reading(), Reason.BAD_TOPIC),
        (f"{PREFIX}/elsewhere", reading(), Reason.BAD_TOPIC),
        (f"{PREFIX}/devices/FWD-000001/status", {"state": "dancing"}, Reason.MISSING_FIELD),
    ],
)
def test_rejections(limits: Limits, topic: str, payload: dict[str, object], reason: Reason) -> None:
    out = check_message(topic, dumps(payload), limits)
    assert out.readings == []
    assert [r.reason for r in out.rejects] == [reason]


def test_oversized_payload(limits: Limits) -> None:
    big = dumps([reading(seq=1, note="x" * limits.max_payload_bytes)])
    assert len(big) > limits.max_payload_bytes
    out = check_message(TOPIC, big, limits)
    assert [r.reason for r in out.rejects] == [Reason.OVERSIZED_PAYLOAD]


def test_status_on_its_topic(limits: Limits) -> None:
    out = check_message(f"{PREFIX}/devices/FWD-000001/status", b"online", limits)
    assert out.status is not None and out.status.state == "online"
    mismatch = dumps({"v": 1, "device_id": "FWD-000009", "state": "online"})
    out = check_message(f"{PREFIX}/devices/FWD-000001/status", mismatch, limits)
    assert [r.reason for r in out.rejects] == [Reason.DEVICE_MISMATCH]


def test_registry_check_refuses_unknown_and_decommissioned_devices() -> None:
    now = datetime.now(UTC)
    devices = {"A1": DeviceState(None), "C3": DeviceState(now - timedelta(hours=1))}
    assert check_registry("A1", now, devices) is None
    unknown = check_registry("B2", now, devices)
    assert unknown is not None and unknown[0] == Reason.UNKNOWN_DEVICE
    # readings from before the decommissioning are still the household's data
    assert check_registry("C3", now - timedelta(hours=2), devices) is None
    late = check_registry("C3", now - timedelta(minutes=30), devices)
    assert late is not None and late[0] == Reason.DECOMMISSIONED_DEVICE
    assert check_registry("C3", now - timedelta(hours=1), devices) is not None  # at the instant


def test_the_future_is_judged_by_the_pilot_clock(limits: Limits, awkward_now: datetime) -> None:
    """At each awkward instant (core.clock), a reading a minute old is stored and one an hour
    ahead is refused, whatever the real date."""
    assert check_message(
        TOPIC, dumps(reading(at=awkward_now - timedelta(minutes=1))), limits
    ).readings
    ahead = check_message(TOPIC, dumps(reading(at=awkward_now + timedelta(hours=1))), limits)
    assert [r.reason for r in ahead.rejects] == [Reason.TS_IN_FUTURE]
