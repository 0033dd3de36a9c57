"""Tasmota metering plugs (Sonoff Pow, Nous A1T, Athom, ...), docs/devices/tasmota.md.

The device's ``Topic`` is its device id and its ``FullTopic``
``<prefix>/tasmota/%topic%/%prefix%/``, so it publishes under ``<prefix>/tasmota/<device id>/``:

- ``tele/SENSOR``: ``{"Time": ..., "ENERGY": {"Total": kWh, "Power": W, "Current": A, ...}}``
  every ``TelePeriod`` and on a ``PowerDelta`` change. ``Time`` is the device's clock: with
  ``SetOption52 1`` it carries its UTC offset; without one it is read as UK time. ``Power`` is a
  power sample, ``Total`` (kWh) a counter sample, both at ``Time``.
- ``tele/STATE``: a heartbeat (``UptimeSec``, ``Wifi.Signal`` dBm): the device's status.
- ``tele/LWT``: ``Online``/``Offline``, retained, the connection's last will: the status.
- ``stat/...`` (relay state, command results) and ``tele/INFO1..3``, ``tele/HASS_STATE``:
  accepted, not stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.clock import LONDON
from core.wire import Reason, StatusMessage
from ingest.adapters.base import (
    CounterSample,
    Decoded,
    PowerSample,
    fail,
    json_object,
    last_will,
    maybe_number,
    number,
    obj,
)

FAMILY = "tasmota"
KIND = "tasmota"
_IGNORED_TELE = ("INFO1", "INFO2", "INFO3", "HASS_STATE", "RESULT", "UPTIME", "MARGINS")


def decode(device_id: str, subtopic: str, payload: bytes) -> Decoded:
    if subtopic == "tele/LWT":
        return last_will(device_id, payload, b"Online", b"Offline")
    if subtopic == "tele/SENSOR":
        return _sensor(device_id, json_object(payload))
    if subtopic == "tele/STATE":
        heartbeat = json_object(payload)
        uptime = maybe_number(heartbeat, "UptimeSec", "STATE")
        wifi = heartbeat.get("Wifi")
        signal = wifi.get("Signal") if isinstance(wifi, dict) else None
        rssi = signal if isinstance(signal, int) and -150 <= signal <= 0 else None
        return Decoded(
            status=StatusMessage(
                device_id=device_id,
                state="online",
                uptime_s=None if uptime is None else int(uptime),
                rssi_dbm=rssi,
            )
        )
    if subtopic.startswith("stat/") or subtopic.removeprefix("tele/") in _IGNORED_TELE:
        return Decoded()
    raise fail(Reason.BAD_TOPIC, f"not a Tasmota topic this pilot reads: {subtopic!r}")


def device_time(value: Any) -> datetime:
    """Tasmota's ``Time``: ISO 8601, local time, with its offset when ``SetOption52 1``."""
    if not isinstance(value, str):
        raise fail(Reason.WRONG_TYPE, f"Time must be text, got {type(value).__name__}")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise fail(Reason.INVALID_VALUE, f"Time {value[:40]!r} is not ISO 8601") from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=LONDON)


def _sensor(device_id: str, msg: dict[str, Any]) -> Decoded:
    if "Time" not in msg:
        raise fail(Reason.MISSING_FIELD, "Time is required")
    ts = device_time(msg["Time"])
    if "ENERGY" not in msg:
        return Decoded()  # another sensor's report (a temperature): not the pilot's
    energy = obj(msg["ENERGY"], "ENERGY")
    raw_power = energy.get("Power")
    if isinstance(raw_power, list):  # a multi-channel device: the first channel is the plug's
        energy = {**energy, "Power": raw_power[0] if raw_power else None}
    power = number(energy, "Power", "ENERGY")
    current = energy.get("Current")
    if isinstance(current, list):
        energy = {**energy, "Current": current[0] if current else None}
    amps = maybe_number(energy, "Current", "ENERGY")
    total = number(energy, "Total", "ENERGY")
    return Decoded(
        power=[PowerSample(device_id, ts, power, amps)],
        counters=[CounterSample(device_id, ts, total * 1000.0)],
    )
