"""Malformed messages on demand, one of each dead-letter reason a device can cause, so that
ingest's rejection paths can be exercised end to end. Each comes with the reason ingest must
record for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from core.wire import Reason, format_ts
from simulator.model import HouseholdSpec


@dataclass(frozen=True, slots=True)
class Malformed:
    device_id: str  # the topic's device
    payload: bytes
    reason: Reason


def malformed_messages(
    h: HouseholdSpec, at: datetime, *, unknown_device: str, max_payload_bytes: int = 256 * 1024
) -> list[Malformed]:
    """One message per reason, on ``h``'s topic (and one on an unregistered device's)."""

    def good(**over: object) -> dict[str, object]:
        r: dict[str, object] = {
            "v": 1,
            "device_id": h.device_id,
            "seq": 999_000_000,
            "ts": format_ts(at),
            "kind": "run",
            "run_s": 12.0,
            "energy_wh": 2.5,
            "water_l": 1.1,
            "peak_a": 5.0,
        }
        r.update(over)
        return {k: v for k, v in r.items() if v is not None}

    def j(obj: object) -> bytes:
        return orjson.dumps(obj)

    d = h.device_id
    return [
        Malformed(d, b'{"v":1,"device_id":', Reason.MALFORMED_JSON),
        Malformed(d, b"42", Reason.NOT_A_READING),
        Malformed(d, b"[]", Reason.EMPTY),
        Malformed(d, j([good(seq=999_000_001 + i) for i in range(1001)]), Reason.TOO_MANY_READINGS),
        Malformed(d, j(good(note="x" * max_payload_bytes)), Reason.OVERSIZED_PAYLOAD),
        Malformed(d, j(good(v=2)), Reason.UNKNOWN_VERSION),
        Malformed(d, j(good(seq=None)), Reason.MISSING_FIELD),
        Malformed(d, j(good(seq="4711")), Reason.WRONG_TYPE),
        Malformed(d, j(good(kind="grind")), Reason.INVALID_VALUE),
        Malformed(d, j(good(run_s=-3.0)), Reason.OUT_OF_RANGE),
        Malformed(d, j(good(ts=format_ts(at + timedelta(days=2)))), Reason.TS_IN_FUTURE),
        Malformed(d, j(good(ts="2001-01-01T00:00:00.000Z")), Reason.TS_BEFORE_PILOT),
        Malformed(d, j(good(device_id=unknown_device)), Reason.DEVICE_MISMATCH),
        Malformed(unknown_device, j(good(device_id=unknown_device)), Reason.UNKNOWN_DEVICE),
    ]
