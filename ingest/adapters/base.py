"""What an adapter makes of one maker message: samples at the device's time, and a status."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from core.errors import WireError
from core.wire import Reason, StatusMessage


class PowerSample(NamedTuple):
    """A plug's power at the device's time (table power_samples)."""

    device_id: str
    ts: datetime
    power_w: float
    current_a: float | None


class CounterSample(NamedTuple):
    """A plug's cumulative energy counter in Wh at the device's time (table energy_counters)."""

    device_id: str
    ts: datetime
    total_wh: float


class MeterRead(NamedTuple):
    """A water meter's register in litres at the meter's time (table meter_reads)."""

    device_id: str
    ts: datetime
    meter_id: str
    total_l: float


@dataclass(slots=True)
class Decoded:
    """One maker message's contribution. An empty one is a message accepted and not stored
    (a relay's ON/OFF, a full status without the device's time: docs/devices/)."""

    power: list[PowerSample] = field(default_factory=list)
    counters: list[CounterSample] = field(default_factory=list)
    meter: list[MeterRead] = field(default_factory=list)
    status: StatusMessage | None = None


def fail(reason: Reason, detail: str) -> WireError:
    return WireError(reason, detail)


def number(obj: dict[str, Any], key: str, where: str) -> float:
    """A finite, non-negative JSON number (not a bool) at ``obj[key]``, which must be there."""
    value = maybe_number(obj, key, where)
    if value is None:
        raise fail(Reason.MISSING_FIELD, f"{where}.{key} is required")
    return value


def maybe_number(obj: dict[str, Any], key: str, where: str) -> float | None:
    """A finite, non-negative JSON number (not a bool) at ``obj[key]``, or None if absent."""
    if obj.get(key) is None:
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(Reason.WRONG_TYPE, f"{where}.{key} must be a number, got {value!r:.40}")
    if not math.isfinite(value):
        raise fail(Reason.INVALID_VALUE, f"{where}.{key}: NaN and infinity are not readings")
    if value < 0:
        raise fail(Reason.OUT_OF_RANGE, f"{where}.{key}={value} is negative")
    return float(value)


def json_object(payload: bytes) -> dict[str, Any]:
    """A payload that must be one JSON object."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise fail(Reason.MALFORMED_JSON, f"not JSON: {exc}") from None
    return obj(data, "message")


def last_will(device_id: str, payload: bytes, online: bytes, offline: bytes) -> Decoded:
    """A maker's retained online/offline message (the connection's last will) as a status."""
    text = payload.strip()
    if text not in (online, offline):
        raise fail(
            Reason.INVALID_VALUE, f"the last will is {online.decode()} or {offline.decode()}"
        )
    state = "online" if text == online else "offline"
    return Decoded(status=StatusMessage(device_id=device_id, state=state))


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(Reason.WRONG_TYPE, f"{where} must be an object, got {type(value).__name__}")
    return value


def unix_time(value: Any, where: str) -> datetime:
    """A Unix timestamp (seconds, fractions allowed) as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(Reason.WRONG_TYPE, f"{where} must be a Unix timestamp, got {value!r:.40}")
    if not 0 < value < 32503680000:  # before year 3000
        raise fail(Reason.OUT_OF_RANGE, f"{where}={value} is not a plausible Unix time")
    return datetime.fromtimestamp(value, UTC)
