"""Checking messages against the contract and the configured limits (pure functions).

``check_message`` turns one MQTT message into the readings to store and the rejects to
dead-letter; ``check_registry`` then drops readings of unknown or decommissioned devices.
Nothing here does I/O.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from core import clock
from core.errors import WireError
from core.settings import Settings
from core.topics import parse_maker_topic, parse_topic
from core.wire import (
    WIRE_VERSION,
    Reading,
    Reason,
    StatusMessage,
    parse_readings,
    parse_status,
)
from ingest.adapters import ADAPTERS
from ingest.adapters.base import Decoded
from ingest.columns import FIELDS, Row


@dataclass(frozen=True, slots=True)
class Limits:
    """The configurable bounds of a valid reading (see Settings.ingest_*)."""

    prefix: str
    pilot_start: datetime
    max_future: timedelta
    max_payload_bytes: int
    max_readings: int
    max_run_s: float
    max_energy_wh: float
    max_water_l: float
    max_peak_a: float
    readings_per_min: int = 6000  # new readings a device may store a minute (ingest/edge.py)

    @classmethod
    def from_settings(cls, s: Settings, prefix: str | None = None) -> Limits:
        return cls(
            prefix=prefix or s.topic_prefix,
            pilot_start=s.pilot_start,
            max_future=timedelta(seconds=s.ingest_max_future_s),
            max_payload_bytes=s.ingest_max_payload_bytes,
            max_readings=s.ingest_max_readings_per_message,
            max_run_s=s.ingest_max_run_s,
            max_energy_wh=s.ingest_max_energy_wh,
            max_water_l=s.ingest_max_water_l,
            max_peak_a=s.ingest_max_peak_a,
            readings_per_min=s.ingest_device_readings_per_min,
        )


@dataclass(frozen=True, slots=True)
class Reject:
    """One dead letter: a whole message (index None) or one element of an array."""

    topic: str
    device_id: str | None
    reason: Reason
    detail: str
    payload: bytes
    index: int | None = None


@dataclass(slots=True)
class Checked:
    """What one message yielded."""

    readings: list[Row] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    status: StatusMessage | None = None
    # a maker-format message's samples (ingest/adapters/), with its family and device
    samples: Decoded | None = None
    family: str = ""
    device: str = ""


def _bounds(r: Reading, lim: Limits, now: datetime) -> tuple[Reason, str] | None:
    # plain comparisons first: this runs for every reading
    run_s, wh, litres, amps = r.run_s, r.energy_wh, r.water_l, r.peak_a
    if (
        (run_s is not None and run_s > lim.max_run_s)
        or (wh is not None and wh > lim.max_energy_wh)
        or (litres is not None and litres > lim.max_water_l)
        or (amps is not None and amps > lim.max_peak_a)
    ):
        for name, top in (
            ("run_s", lim.max_run_s),
            ("energy_wh", lim.max_energy_wh),
            ("water_l", lim.max_water_l),
            ("peak_a", lim.max_peak_a),
        ):
            value = getattr(r, name)
            if value is not None and value > top:
                return Reason.OUT_OF_RANGE, f"{name}={value} is above the limit {top}"
    if r.ts > now + lim.max_future:
        return (
            Reason.TS_IN_FUTURE,
            f"ts {r.ts.isoformat()} is ahead of the ingest clock {now.isoformat()}",
        )
    if r.ts < lim.pilot_start:
        return (
            Reason.TS_BEFORE_PILOT,
            f"ts {r.ts.isoformat()} is before the pilot ({lim.pilot_start.date()})",
        )
    return None


def check_message(topic: str, payload: bytes, lim: Limits, now: datetime | None = None) -> Checked:
    """Validate one MQTT message: every element is either a reading or a reject, never lost."""
    now = now or clock.now()
    out = Checked()
    addr = parse_topic(lim.prefix, topic)
    if addr is None and (maker := parse_maker_topic(lim.prefix, topic)) is not None:
        return _check_maker(topic, payload, lim, now, maker.family, maker.device_id, maker.subtopic)
    if addr is None:
        out.rejects.append(
            Reject(topic, None, Reason.BAD_TOPIC, "not a device readings/status topic", payload)
        )
        return out
    if len(payload) > lim.max_payload_bytes:
        out.rejects.append(
            Reject(
                topic,
                addr.device_id,
                Reason.OVERSIZED_PAYLOAD,
                f"{len(payload)} bytes, the limit is {lim.max_payload_bytes}",
                payload,
            )
        )
        return out
    if addr.channel == "status":
        try:
            status = parse_status(payload, addr.device_id)
        except WireError as exc:
            out.rejects.append(Reject(topic, addr.device_id, exc.reason, exc.detail, payload))
            return out
        if status.device_id != addr.device_id:
            out.rejects.append(
                Reject(
                    topic,
                    addr.device_id,
                    Reason.DEVICE_MISMATCH,
                    f"payload device {status.device_id} on its topic",
                    payload,
                )
            )
        else:
            out.status = status
        return out
    try:
        good, bad = parse_readings(payload, lim.max_readings)
    except WireError as exc:
        out.rejects.append(Reject(topic, addr.device_id, exc.reason, exc.detail, payload))
        return out
    for err, item in bad:
        raw = payload if err.index is None else orjson.dumps(item)
        out.rejects.append(Reject(topic, addr.device_id, err.reason, err.detail, raw, err.index))
    device = addr.device_id
    for index, reading in good:
        row = Row._make(_values(reading))
        problem: tuple[Reason, str] | None
        if reading.device_id != device:
            problem = (
                Reason.DEVICE_MISMATCH,
                f"payload device_id {reading.device_id} differs from the topic's {device}",
            )
        else:
            problem = _bounds(reading, lim, now)
        if problem is None:
            out.readings.append(row)
        else:
            raw = payload if index is None else reading_bytes(row)
            out.rejects.append(Reject(topic, device, problem[0], problem[1], raw, index))
    return out


def _check_maker(
    topic: str,
    payload: bytes,
    lim: Limits,
    now: datetime,
    family: str,
    device: str,
    subtopic: str,
) -> Checked:
    """A message in a maker's format: its adapter's samples, or one reject with the reason. A
    sample stamped outside the pilot's window rejects the message (its device's clock is
    wrong: nothing of it is trusted)."""
    out = Checked(family=family, device=device)
    if len(payload) > lim.max_payload_bytes:
        detail = f"{len(payload)} bytes, the limit is {lim.max_payload_bytes}"
        out.rejects.append(Reject(topic, device, Reason.OVERSIZED_PAYLOAD, detail, payload))
        return out
    try:
        decoded = ADAPTERS[family].decode(device, subtopic, payload)
    except WireError as exc:
        out.rejects.append(Reject(topic, device, exc.reason, exc.detail, payload))
        return out
    for ts in (
        [s.ts for s in decoded.power]
        + [s.ts for s in decoded.counters]
        + [s.ts for s in decoded.meter]
    ):
        if ts > now + lim.max_future:
            detail = f"device time {ts.isoformat()} is ahead of the ingest clock {now.isoformat()}"
            out.rejects.append(Reject(topic, device, Reason.TS_IN_FUTURE, detail, payload))
            return out
        if ts < lim.pilot_start:
            detail = f"device time {ts.isoformat()} is before the pilot ({lim.pilot_start.date()})"
            out.rejects.append(Reject(topic, device, Reason.TS_BEFORE_PILOT, detail, payload))
            return out
    out.status = decoded.status
    out.samples = decoded
    return out


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What ingest needs to know of a registered device: its registry entry, and from
    ``device_status`` the last stored seq and its rate window (ingest/edge.py)."""

    decommissioned_at: datetime | None
    last_seq: int | None = None
    rate_minute: datetime | None = None
    rate_count: int = 0
    kind: str = "wastepilot-v1"


# a Reading's values in Row's order, by name (one C call)
_values = operator.attrgetter(*FIELDS)


def reading_bytes(r: Row) -> bytes:
    """A reading as contract JSON again (for dead letters of readings that parsed)."""
    body = {"v": WIRE_VERSION} | {k: v for k, v in zip(FIELDS, r, strict=True) if v is not None}
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def check_registry(
    device_id: str, ts: datetime, devices: Mapping[str, DeviceState]
) -> tuple[Reason, str] | None:
    """Why a reading of ``device_id`` stamped ``ts`` cannot be stored (None: it can): the device
    is not registered, or was decommissioned before ``ts``."""
    dev = devices.get(device_id)
    if dev is None:
        return Reason.UNKNOWN_DEVICE, f"device {device_id} is not registered"
    until = dev.decommissioned_at
    if until is None or ts < until:
        return None
    return (
        Reason.DECOMMISSIONED_DEVICE,
        f"device {device_id} was decommissioned at {until.isoformat()}",
    )
