"""Per-device rules of a batch (pure): a device's counter is its idempotency key, and a device
may store at most ``per_min`` new readings in a minute of their arrival.

The writer reads each device's state under a row lock (``device_status``: last stored seq, the
rate window), asks the database which of the batch's *suspects* (a seq at or below the device's
last stored seq) are already stored with the same timestamp, and hands all that to
:func:`plan`. The plan says which rows to stage (new readings within the allowance, and
duplicates, which the idempotent insert skips and counts), which new readings were over the
allowance (refused, counted in one summary dead letter per device), which reuse a seq already
used in the batch with another timestamp, and which admitted suspects the database must still
be asked about (is the seq stored with another timestamp?). Asking only about admitted rows
bounds that costlier question by the rate limit; an in-order device has no suspects at all.

See docs/ingest.md ("Device edge").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ingest.columns import DEVICE, RECEIVED, SEQ, TS
from ingest.protocol import ReadingRow
from ingest.validate import DeviceState


@dataclass(frozen=True, slots=True)
class Window:
    """A device's new readings counted in the minute of their arrival (``received_at``)."""

    minute: datetime | None
    count: int


@dataclass(slots=True)
class Plan:
    stage: list[int] = field(default_factory=list)  # row indices to COPY, in arrival order
    refused: dict[str, list[int]] = field(default_factory=dict)  # device -> rows over the rate
    reused: list[tuple[int, datetime]] = field(default_factory=list)  # row, the ts kept
    probe: list[int] = field(default_factory=list)  # admitted suspects: seq stored elsewhere?
    windows: dict[str, Window] = field(default_factory=dict)  # each staged device's window
    new: int = 0  # rows staged as new readings (not duplicates)


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def suspects(rows: Sequence[ReadingRow], states: Mapping[str, DeviceState]) -> list[int]:
    """Rows that may already be stored: a seq at or below the device's last stored seq."""
    out = []
    for i, row in enumerate(rows):
        st = states.get(row[DEVICE])
        if st is not None and st.last_seq is not None and row[SEQ] <= st.last_seq:
            out.append(i)
    return out


def plan(
    rows: Sequence[ReadingRow],
    states: Mapping[str, DeviceState],
    stored: set[int],
    per_min: int,
) -> Plan:
    """What to do with each row. ``stored``: the suspects already stored with the same key."""
    p = Plan()
    seen: dict[tuple[str, int], datetime] = {}  # (device, seq) -> ts of its first new row
    keys: set[tuple[str, int, datetime]] = set()
    windows = p.windows
    suspect = set(suspects(rows, states))
    for i, row in enumerate(rows):
        ts, device, seq = row[TS], row[DEVICE], row[SEQ]
        key = (device, seq, ts)
        if i in stored or key in keys:  # a re-sent or redelivered reading: skipped by the insert
            p.stage.append(i)
            windows.setdefault(device, _window(states.get(device)))
            continue
        first = seen.get((device, seq))
        if first is not None:  # the same seq with another ts earlier in this batch
            p.reused.append((i, first))
            continue
        win = windows.get(device) or _window(states.get(device))
        minute = minute_of(row[RECEIVED])
        if win.minute is None or minute > win.minute:
            win = Window(minute, 0)
        if win.count >= per_min:
            p.refused.setdefault(device, []).append(i)
            windows[device] = win
            continue
        windows[device] = Window(win.minute, win.count + 1)
        seen[(device, seq)] = ts
        keys.add(key)
        p.stage.append(i)
        p.new += 1
        if i in suspect:
            p.probe.append(i)
    return p


def _window(st: DeviceState | None) -> Window:
    if st is None:
        return Window(None, 0)
    return Window(st.rate_minute, st.rate_count)
