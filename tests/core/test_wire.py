"""The wire schema: valid and invalid payloads (pure)."""

from __future__ import annotations

import math

import pytest

from core.wire import (
    Reason,
    WireError,
    decode_payload,
    parse_reading,
    parse_readings,
    parse_status,
)
from tests.helpers import DROP, dumps, reading


def test_valid_run_reading_parses_with_its_values() -> None:
    r = parse_reading(reading(seq=4711, run_s=11.5))
    assert (r.device_id, r.seq, r.kind, r.run_s, r.fault) == ("FWD-000001", 4711, "run", 11.5, None)
    assert r.ts.tzinfo is not None


def test_fault_reading_needs_its_fault() -> None:
    r = parse_reading(reading(kind="fault", fault="jam"))
    assert r.fault == "jam"
    with pytest.raises(WireError) as err:
        parse_reading(reading(kind="fault"))
    assert err.value.reason is Reason.MISSING_FIELD


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2}, Reason.UNKNOWN_VERSION),
        ({"seq": DROP}, Reason.MISSING_FIELD),
        ({"ts": DROP}, Reason.MISSING_FIELD),
        ({"run_s": DROP}, Reason.MISSING_FIELD),
        ({"seq": "12"}, Reason.WRONG_TYPE),
        ({"seq": 1.5}, Reason.WRONG_TYPE),
        ({"seq": True}, Reason.WRONG_TYPE),
        ({"run_s": "fast"}, Reason.WRONG_TYPE),
        ({"ts": "yesterday"}, Reason.INVALID_VALUE),
        ({"ts": 1795542459}, Reason.WRONG_TYPE),  # no Unix times: the contract says ISO 8601
        ({"ts": "2026-11-24T18:02:11"}, Reason.INVALID_VALUE),  # no offset
        ({"seq": -1}, Reason.OUT_OF_RANGE),
        ({"water_l": -0.5}, Reason.OUT_OF_RANGE),
        ({"kind": "grind"}, Reason.INVALID_VALUE),
        ({"device_id": "bad id/#"}, Reason.INVALID_VALUE),
        ({"fault": "jam"}, Reason.INVALID_VALUE),  # a run carries no fault
    ],
)
def test_invalid_readings_get_their_reason(change: dict[str, object], reason: Reason) -> None:
    with pytest.raises(WireError) as err:
        parse_reading(reading(**change))
    assert err.value.reason is reason, err.value.detail


def test_infinity_and_nan_are_not_readings() -> None:
    good = dumps(reading())
    # JSON has no NaN or infinity; an overflowing number is the way infinity arrives
    huge = good.replace(b'"run_s":11.5', b'"run_s":1e999')
    assert huge != good
    with pytest.raises(WireError) as err:
        parse_readings(huge, 1000)
    assert err.value.reason is Reason.MALFORMED_JSON
    with pytest.raises(WireError) as err:
        parse_readings(good.replace(b'"run_s":11.5', b'"run_s":NaN'), 1000)
    assert err.value.reason is Reason.MALFORMED_JSON
    assert math.isfinite(parse_readings(good, 1000)[0][0][1].run_s or 0)


def test_decode_single_object_and_array() -> None:
    assert len(decode_payload(dumps(reading()), 1000)) == 1
    assert len(decode_payload(dumps([reading(seq=i) for i in range(3)]), 1000)) == 3


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", Reason.MALFORMED_JSON),
        (b"NaN", Reason.MALFORMED_JSON),
        (b"", Reason.MALFORMED_JSON),
        (b"42", Reason.NOT_A_READING),
        (b'"text"', Reason.NOT_A_READING),
        (b"[]", Reason.EMPTY),
    ],
)
def test_undecodable_payloads(payload: bytes, reason: Reason) -> None:
    with pytest.raises(WireError) as err:
        decode_payload(payload, 1000)
    assert err.value.reason is reason


def test_array_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(WireError) as err:
        decode_payload(dumps([reading(seq=i) for i in range(11)]), 10)
    assert err.value.reason is Reason.TOO_MANY_READINGS


def test_status_plain_text_and_json() -> None:
    assert parse_status(b"offline", "FWD-1").state == "offline"
    st = parse_status(
        dumps(
            {
                "v": 1,
                "device_id": "FWD-1",
                "state": "online",
                "firmware": "1.2",
                "uptime_s": 30,
                "rssi_dbm": -60,
            }
        ),
        "FWD-1",
    )
    assert (st.state, st.firmware, st.uptime_s) == ("online", "1.2", 30)
    with pytest.raises(WireError):
        parse_status(b"sleeping", "FWD-1")
