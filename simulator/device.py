"""What a device sends (pure): readings with its own seq and clock skew, offline backlogs sent
as arrays when it is back, occasional re-sends, heartbeats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from core.wire import WIRE_VERSION, format_ts
from simulator.model import Event, HouseholdSpec
from simulator.params import Params

MAX_ARRAY = 1000


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One MQTT message a device sends at ``due`` (true time)."""

    due: datetime
    device_id: str
    channel: Literal["readings", "status"]
    body: Any  # a reading dict, a list of them, or a status dict
    resend: bool = False

    @property
    def readings(self) -> int:
        if self.channel != "readings":
            return 0
        return len(self.body) if isinstance(self.body, list) else 1


@dataclass(slots=True)
class DeviceState:
    """A device's persistent counter and its offline backlog."""

    next_seq: int = 1
    backlog: list[dict[str, Any]] = field(default_factory=list)


def reading_dict(h: HouseholdSpec, seq: int, e: Event) -> dict[str, Any]:
    """The contract's JSON object for one event, stamped by the device's (skewed) clock."""
    d: dict[str, Any] = {
        "v": WIRE_VERSION,
        "device_id": h.device_id,
        "seq": seq,
        "ts": format_ts(e.at + timedelta(seconds=h.skew_s)),
        "kind": e.kind,
        "run_s": round(e.run_s, 2),
        "energy_wh": round(e.energy_wh, 3),
        "water_l": round(e.water_l, 3),
        "peak_a": round(e.peak_a, 2),
    }
    if e.fault:
        d["fault"] = e.fault
    return d


def device_messages(
    h: HouseholdSpec,
    events: list[Event],
    state: DeviceState,
    rng: np.random.Generator,
    p: Params,
    offline: tuple[datetime, datetime] | None = None,
    lost: frozenset[datetime] = frozenset(),
) -> list[OutMessage]:
    """Messages for ``events`` (time-ordered), advancing ``state``. A reading made while offline
    waits in the backlog and leaves with the others as arrays when the spell ends; the events
    made at the ``lost`` instants are numbered but never sent (a gap in the device's seq)."""
    out: list[OutMessage] = []
    for e in events:
        r = reading_dict(h, state.next_seq, e)
        state.next_seq += 1
        if e.at in lost:
            continue
        done = e.at + timedelta(seconds=e.run_s)
        if offline and offline[0] <= done < offline[1]:
            state.backlog.append(r)
            continue
        if offline and done >= offline[1] and state.backlog:
            out.extend(flush_backlog(h, state, offline[1]))
        out.append(OutMessage(done, h.device_id, "readings", r))
        if rng.random() < p.resend_rate:
            # the device missed the PUBACK and sends the same reading again
            out.append(
                OutMessage(done + timedelta(seconds=5), h.device_id, "readings", r, resend=True)
            )
    if offline and state.backlog:
        out.extend(flush_backlog(h, state, offline[1]))
    return out


def flush_backlog(h: HouseholdSpec, state: DeviceState, at: datetime) -> list[OutMessage]:
    """The backlog as arrays of at most 1,000 readings, sent at ``at``."""
    out = [
        OutMessage(at, h.device_id, "readings", state.backlog[i : i + MAX_ARRAY])
        for i in range(0, len(state.backlog), MAX_ARRAY)
    ]
    state.backlog = []
    return out


def status_dict(
    h: HouseholdSpec,
    state: Literal["online", "offline"],
    at: datetime | None,
    uptime_s: int | None = None,
) -> dict[str, Any]:
    d: dict[str, Any] = {"v": WIRE_VERSION, "device_id": h.device_id, "state": state}
    if at is not None:
        d["ts"] = format_ts(at)
    if state == "online":
        d["firmware"] = "sim-1.0"
        if uptime_s is not None:
            d["uptime_s"] = uptime_s
        d["rssi_dbm"] = -55 - (h.index % 30)
    return d
