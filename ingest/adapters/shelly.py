"""Shelly Gen2/Gen3 metering plugs (Plus Plug S, PM Mini, Plus 1PM, ...), docs/devices/shelly.md.

The device's MQTT topic prefix is set to ``<prefix>/shelly/<device id>``; under it:

- ``events/rpc``: ``NotifyStatus`` (only the changed keys) and ``NotifyFullStatus`` frames,
  ``{"src", "dst", "method", "params": {"ts": <Unix time>, "switch:0": {...}}}``. ``params.ts``
  is the device's own clock (SNTP), the only precise device time Shelly sends: every sample is
  taken from these. A component's ``apower`` (W, with ``current`` A) is a power sample at ``ts``;
  its ``aenergy.total`` (Wh since the last reboot) a counter sample at ``ts``. ``NotifyEvent``
  frames are accepted and not stored.
- ``status/<component>``: the full status of one component, e.g. ``status/switch:0``. It carries
  no device time but ``aenergy.minute_ts`` (a minute), so it is checked and not stored: the same
  values arrive in ``events/rpc`` with their ``ts``.
- ``online``: ``true``/``false``, retained, the connection's last will: the device's status.
"""

from __future__ import annotations

from typing import Any

from core.wire import Reason
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
    unix_time,
)

FAMILY = "shelly"
KIND = "shelly-gen2"
# the metering components of the plugs the pilot uses (a Plus 1PM's switch, a PM Mini's pm1)
METERING = ("switch:", "pm1:")


def decode(device_id: str, subtopic: str, payload: bytes) -> Decoded:
    if subtopic == "online":
        return last_will(device_id, payload, b"true", b"false")
    if subtopic == "events/rpc":
        return _frame(device_id, json_object(payload))
    if subtopic.startswith("status/"):
        component = subtopic.removeprefix("status/")
        if component.startswith(METERING):
            _component(device_id, None, json_object(payload), component, Decoded())
        return Decoded()  # no device time to place its values at: checked, not stored
    raise fail(Reason.BAD_TOPIC, f"not a Shelly topic this pilot reads: {subtopic!r}")


def _frame(device_id: str, frame: dict[str, Any]) -> Decoded:
    method = frame.get("method")
    if not isinstance(method, str):
        raise fail(Reason.MISSING_FIELD, "an RPC notification needs a method")
    out = Decoded()
    if method == "NotifyEvent":
        return out
    if method not in ("NotifyStatus", "NotifyFullStatus"):
        raise fail(Reason.INVALID_VALUE, f"unknown notification method {method!r:.40}")
    params = obj(frame.get("params"), "params")
    if "ts" not in params:
        raise fail(Reason.MISSING_FIELD, "params.ts is required")
    ts = unix_time(params["ts"], "params.ts")
    for key, value in params.items():
        if key.startswith(METERING):
            _component(device_id, ts, value, key, out)
    return out


def _component(device_id: str, ts: Any, value: Any, name: str, out: Decoded) -> None:
    comp = obj(value, name)
    power = maybe_number(comp, "apower", name)
    current = maybe_number(comp, "current", name)
    energy = comp.get("aenergy")
    total = number(obj(energy, f"{name}.aenergy"), "total", f"{name}.aenergy") if energy else None
    if ts is None:
        return
    if power is not None:
        out.power.append(PowerSample(device_id, ts, power, current))
    if total is not None:
        out.counters.append(CounterSample(device_id, ts, total))
