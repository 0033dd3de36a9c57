"""The only things that cross an ingest worker's pipes, and how a shipment becomes COPY rows.

    MQTT process  --Shipment-->  validator  --Validated-->  writer  --Outcome-->  MQTT process

A Shipment is what the network loop read: (topic, payload, received_at) tuples in arrival
order. The validator turns it into a Validated: readings as rows in the staging table's column
order (ready for COPY, no object to rebuild on the other side), dead letters with their raw
payloads (the only payloads that travel on), and status updates. Plain tuples throughout:
objects pickle several times slower (a single-reading message crossed both pipes as tuples of
284 bytes and needed 3.1 us of unpickling and rebuilding in the writer; as a COPY row, 97 bytes
and 0.4 us).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from core.wire import StatusMessage
from ingest.adapters.base import CounterSample, MeterRead, PowerSample
from ingest.columns import StagedRow
from ingest.validate import Limits, Reject, check_message

# One reading as COPY writes it: a Row's values, then received_at (ingest/columns.py)
ReadingRow = StagedRow


class StatusUpdate(NamedTuple):
    topic: str
    received_at: datetime
    status: StatusMessage


class MakerSamples(NamedTuple):
    """A maker-format message's samples (ingest/adapters/base.py), with the message itself: a
    device the registry refuses dead-letters it whole."""

    topic: str
    payload: bytes
    received_at: datetime
    device_id: str
    family: str
    power: list[PowerSample]
    counters: list[CounterSample]
    meter: list[MeterRead]


class DeadLetter(NamedTuple):
    received_at: datetime
    reject: Reject


@dataclass(frozen=True, slots=True)
class Shipment:
    """Messages read by the network loop, in arrival order: (topic, payload, received_at in
    epoch seconds)."""

    id: int
    messages: list[tuple[str, bytes, float]]


@dataclass(slots=True)
class Validated:
    """A shipment after the validator. ``units`` counts towards the batch size: each message
    counts its readings and rejects, and at least one."""

    shipment: int
    rows: list[ReadingRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    samples: list[MakerSamples] = field(default_factory=list)
    units: int = 0

    @classmethod
    def check(
        cls,
        shipment: int,
        messages: list[tuple[str, bytes, float]],
        limits: Limits,
        now: datetime,
    ) -> Validated:
        out = cls(shipment)
        rows, dead, statuses = out.rows, out.dead, out.statuses
        units = 0
        for topic, payload, at in messages:
            checked = check_message(topic, payload, limits, now)
            received = datetime.fromtimestamp(at, UTC)
            for r in checked.readings:
                rows.append((*r, received))
            if checked.rejects:
                dead.extend(DeadLetter(received, rej) for rej in checked.rejects)
            if checked.status is not None:
                statuses.append(StatusUpdate(topic, received, checked.status))
            got = checked.samples
            n = 0
            if got is not None and (got.power or got.counters or got.meter):
                n = len(got.power) + len(got.counters) + len(got.meter)
                out.samples.append(
                    MakerSamples(
                        topic, payload, received, checked.device, checked.family,
                        got.power, got.counters, got.meter,
                    )
                )  # fmt: skip
            units += max(1, len(checked.readings) + len(checked.rejects) + n)
        out.units = units
        return out

    def pieces(self) -> list[Validated]:
        """Each reading, dead letter and status on its own (to find the one a database refuses)."""
        return (
            [Validated(self.shipment, rows=[r], units=1) for r in self.rows]
            + [Validated(self.shipment, dead=[d], units=1) for d in self.dead]
            + [Validated(self.shipment, statuses=[s], units=1) for s in self.statuses]
            + [Validated(self.shipment, samples=[s], units=1) for s in self.samples]
        )


@dataclass(slots=True)
class BatchResult:
    inserted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    statuses: int = 0
    samples: int = 0  # maker devices' samples newly stored
    sample_duplicates: int = 0  # ... and those stored already
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: BatchResult) -> None:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        self.statuses += other.statuses
        self.samples += other.samples
        self.sample_duplicates += other.sample_duplicates
        for k, v in other.reasons.items():
            self.reasons[k] = self.reasons.get(k, 0) + v


@dataclass(slots=True)
class Outcome:
    """A committed batch (``shipments`` non-empty), or news about the database."""

    shipments: list[int] = field(default_factory=list)
    result: BatchResult | None = None
    commit_s: float = 0.0
    lag_s: float | None = None  # receive time minus device time, one sample per batch
    database_up: bool = True
    retry: bool = False  # a write failed and will be retried
    reading_ts: list[float] = field(default_factory=list)  # only with PipelineSpec.details


class Stop(NamedTuple):
    """Write what is held, report it, then exit (``abandon``: exit without writing)."""

    abandon: bool = False
