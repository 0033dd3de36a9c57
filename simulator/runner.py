"""Running a simulated fleet: backfill (history, as fast as the pipeline takes it) and live
(real time or sped up). Device seq counters persist between runs in the state folder."""

from __future__ import annotations

import heapq
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from core import clock
from core.topics import KIND_FAMILY, maker_root, readings_topic, status_topic
from simulator.device import DeviceState, OutMessage, device_messages, status_dict
from simulator.faults import Malformed
from simulator.makers import DayPlan, day_messages
from simulator.makers import Kind as MakerKind
from simulator.model import (
    HouseholdSpec,
    household_day,
    local_days,
    lost_readings,
    offline_spell,
    rng_for,
)
from simulator.params import Params
from simulator.publisher import Sink

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Summary:
    messages: int = 0
    readings: int = 0
    resends: int = 0
    faults: int = 0
    bytes: int = 0
    statuses: int = 0
    not_confirmed: int = 0
    seconds: float = 0.0
    expected_keys: set[tuple[str, int]] = field(default_factory=set)
    malformed: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


class SeqStore:
    """Each device's next seq, kept in a JSON file so a restarted simulator goes on counting."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.states: dict[str, DeviceState] = {}
        if path and path.exists():
            for dev, nxt in json.loads(path.read_text()).items():
                self.states[dev] = DeviceState(next_seq=int(nxt))

    def get(self, device_id: str) -> DeviceState:
        return self.states.setdefault(device_id, DeviceState())

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({d: s.next_seq for d, s in sorted(self.states.items())}))
        tmp.replace(self.path)


def period_messages(
    fleet: list[HouseholdSpec], start: datetime, end: datetime, seed: int, p: Params, seqs: SeqStore
) -> Iterator[OutMessage]:
    """Every message the fleet sends for events in [start, end), in due-time order, day by day."""
    for day in local_days(start, end):
        msgs: list[OutMessage] = []
        for h in fleet:
            whole_day = household_day(h, day, seed, p)
            events = [e for e in whole_day if start <= e.at < end]
            rng = rng_for(seed, 3, h.index, day.toordinal())
            spell = offline_spell(h, day, seed, p)
            lost = frozenset(
                whole_day[i].at for i in lost_readings(h, day, seed, p, len(whole_day))
            )
            msgs.extend(device_messages(h, events, seqs.get(h.device_id), rng, p, spell, lost))
        msgs.sort(key=lambda m: (m.due, m.device_id))
        yield from msgs


def encode(m: OutMessage) -> bytes:
    return orjson.dumps(m.body)


def _account(summary: Summary, m: OutMessage, payload: bytes) -> None:
    summary.messages += 1
    summary.bytes += len(payload)
    if m.channel == "status":
        summary.statuses += 1
        return
    body = m.body if isinstance(m.body, list) else [m.body]
    if m.resend:
        summary.resends += len(body)
        return
    summary.readings += len(body)
    for r in body:
        summary.expected_keys.add((r["device_id"], r["seq"]))
        if r["kind"] == "fault":
            summary.faults += 1


def send_malformed(sink: Sink, prefix: str, messages: list[Malformed], summary: Summary) -> None:
    """Publish deliberately bad messages (``--malformed``), counting them by expected reason."""
    for m in messages:
        sink.send(readings_topic(prefix, m.device_id), m.payload)
        summary.malformed[m.reason.value] = summary.malformed.get(m.reason.value, 0) + 1
        summary.messages += 1
        summary.bytes += len(m.payload)


def backfill(
    sink: Sink,
    prefix: str,
    fleet: list[HouseholdSpec],
    start: datetime,
    end: datetime,
    seed: int,
    p: Params,
    seqs: SeqStore,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    malformed: list[Malformed] | None = None,
) -> Summary:
    """Publish the history of [start, end) as fast as the sink takes it (and, when asked,
    the malformed messages first)."""
    summary = Summary()
    t0 = time.perf_counter()
    if malformed:
        send_malformed(sink, prefix, malformed, summary)
    days = local_days(start, end)
    done_days = 0
    current_day = None
    for m in period_messages(fleet, start, end, seed, p, seqs):
        if stop is not None and stop.is_set():
            break
        payload = encode(m)
        topic = (
            readings_topic(prefix, m.device_id)
            if m.channel == "readings"
            else status_topic(prefix, m.device_id)
        )
        sink.send(topic, payload, retain=m.channel == "status")
        _account(summary, m, payload)
        day = m.due.date()
        if progress and day != current_day:
            current_day = day
            done_days = min(done_days + 1, len(days))
            progress(done_days, len(days))
    summary.not_confirmed = sink.close()
    summary.seconds = time.perf_counter() - t0
    seqs.save()
    return summary


def live(
    sink: Sink,
    prefix: str,
    fleet: list[HouseholdSpec],
    speed: float,
    seed: int,
    p: Params,
    seqs: SeqStore,
    stop: threading.Event,
    start: datetime | None = None,
    on_message: Callable[[OutMessage], None] | None = None,
) -> Summary:
    """Publish as simulated time passes: ``speed`` simulated seconds per real second.

    Heartbeats go out every ``p.heartbeat_s`` simulated seconds; Ctrl-C (``stop``) ends it,
    keeping each device's seq for the next run.
    """
    summary = Summary()
    sim_start = start or clock.now()
    real_start = time.monotonic()

    def sim_now() -> datetime:
        return sim_start + timedelta(seconds=(time.monotonic() - real_start) * speed)

    for h in fleet:
        payload = orjson.dumps(status_dict(h, "online", sim_start, 0))
        sink.send(status_topic(prefix, h.device_id), payload, retain=True)
        summary.statuses += 1
    heap: list[tuple[datetime, int, OutMessage]] = []
    counter = 0
    horizon = sim_start
    next_heartbeat = sim_start + timedelta(seconds=p.heartbeat_s)
    t0 = time.perf_counter()
    while not stop.is_set():
        now = sim_now()
        # generate ahead in six-hour steps: a step computes each household's whole day, so
        # short steps would repeat that work and delay publishing at high speed factors
        while horizon < now + timedelta(hours=1):
            nxt = horizon + timedelta(hours=6)
            for m in period_messages(fleet, horizon, nxt, seed, p, seqs):
                heapq.heappush(heap, (m.due, counter, m))
                counter += 1
            horizon = nxt
        while heap and heap[0][0] <= now:
            _, _, m = heapq.heappop(heap)
            payload = encode(m)
            sink.send(readings_topic(prefix, m.device_id), payload)
            _account(summary, m, payload)
            if on_message:
                on_message(m)
        if now >= next_heartbeat:
            for h in fleet:
                up = int((now - sim_start).total_seconds())
                sink.send(
                    status_topic(prefix, h.device_id),
                    orjson.dumps(status_dict(h, "online", now, up)),
                    retain=True,
                )
                summary.statuses += 1
            next_heartbeat += timedelta(seconds=p.heartbeat_s)
        wait = 0.5
        if heap:
            wait = min(wait, max(0.0, (heap[0][0] - sim_now()).total_seconds() / speed))
        stop.wait(wait)
    # messages not yet due stay unsent: their seq numbers are given back so none go missing
    if heap:
        first_unsent: dict[str, int] = {}
        for _, _, m in heap:
            body = m.body if isinstance(m.body, list) else [m.body]
            if m.channel == "readings" and not m.resend:
                seq0 = min(int(r["seq"]) for r in body)
                first_unsent[m.device_id] = min(first_unsent.get(m.device_id, seq0), seq0)
        for dev, seq in first_unsent.items():
            seqs.get(dev).next_seq = seq
    summary.not_confirmed = sink.close()
    summary.seconds = time.perf_counter() - t0
    seqs.save()
    return summary


# the model each maker kind's simulated device is registered as
MAKER_MODELS = {"shelly-gen2": "Shelly Plus Plug S", "tasmota": "Athom plug (Tasmota)",
                "wmbus": "Sensus iPerl"}  # fmt: skip


def maker_device_id(kind: str, index: int) -> str:
    """A household's device of a maker's kind (beside its v1 meter FWD-...)."""
    return {"shelly-gen2": "SHL", "tasmota": "TAS", "wmbus": "WMB"}[kind] + f"-{index:06d}"


def backfill_makers(
    sink: Sink,
    prefix: str,
    fleet: list[HouseholdSpec],
    kind: MakerKind,
    start: datetime,
    end: datetime,
    seed: int,
    p: Params,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> Summary:
    """Publish [start, end) of each household's device of a maker's ``kind`` in its maker's
    format (simulator/makers.py), day by day (UTC), as fast as the sink takes it."""
    family = KIND_FAMILY[kind]
    assert family is not None  # noqa: S101  (a maker's kind)
    summary = Summary()
    t0 = time.perf_counter()
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = max(1, math.ceil((end - first).total_seconds() / 86400))
    # each device's counter (Wh) or register (L) runs on from one day to the next
    counters: dict[int, float] = {}
    for n in range(days):
        day = first + timedelta(days=n)
        for h in fleet:
            if stop is not None and stop.is_set():
                break
            events = [e for e in household_day(h, day.date(), seed, p)
                      if day <= e.at < day + timedelta(days=1)]  # fmt: skip
            start_at = counters.get(h.index, DayPlan().counter_start_wh)
            msgs, truth = day_messages(
                kind, h, events, day, seed, DayPlan(counter_start_wh=start_at)
            )
            counters[h.index] = start_at + (truth.litres if kind == "wmbus" else truth.energy_wh)
            root = maker_root(prefix, family, maker_device_id(kind, h.index))
            for m in msgs:
                if not start <= m.at < end:
                    continue
                sink.send(f"{root}/{m.subtopic}", m.payload, retain=m.retain)
                summary.messages += 1
                summary.bytes += len(m.payload)
        if progress:
            progress(n + 1, days)
    summary.not_confirmed = sink.close()
    summary.seconds = time.perf_counter() - t0
    return summary
