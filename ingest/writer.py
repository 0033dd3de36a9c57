"""Writing a batch of checked messages in one transaction: readings, dead letters, statuses.

The writer owns one connection (its temp staging table lives there). A lost connection is
reported as DatabaseUnavailable and the batch is retried whole by the caller; the insert is
idempotent, so a retry after an unknown commit outcome never doubles a reading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import psycopg
from psycopg.rows import class_row

from core.wire import Reason
from ingest import queries
from ingest.validate import Checked, DeviceState, Reject, check_registry, reading_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _DeviceRow:
    id: str
    decommissioned_at: datetime | None


class DatabaseUnavailable(Exception):
    """The database could not be reached or dropped the connection; retry later."""


class Received(NamedTuple):
    """One MQTT message after validation, with when it arrived (a tuple: one per message)."""

    topic: str
    checked: Checked
    received_at: datetime
    payload: bytes = b""


@dataclass(slots=True)
class BatchResult:
    inserted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    statuses: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class Writer:
    """Stores batches; one instance per ingest worker thread."""

    def __init__(
        self, url: str, *, dead_letter_max_bytes: int, registry_ttl_s: float = 5.0
    ) -> None:
        self._url = url
        self._max_dl = dead_letter_max_bytes
        self._registry_ttl = registry_ttl_s
        self._registry: dict[str, tuple[DeviceState, float]] = {}
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            try:
                conn = psycopg.connect(
                    self._url, connect_timeout=5, application_name="wastepilot-ingest"
                )
                conn.execute(queries.CREATE_STAGING)
                conn.commit()
            except psycopg.OperationalError as exc:
                raise DatabaseUnavailable(str(exc).strip()) from exc
            self._conn = conn
        return self._conn

    def _device_states(
        self, conn: psycopg.Connection[tuple[object, ...]], ids: list[str]
    ) -> dict[str, DeviceState]:
        """Registry entries of ``ids``; known devices are remembered for ``registry_ttl_s``
        (a query per batch saved), unknown ones are asked for every time."""
        now = time.monotonic()
        cache = self._registry
        stale = [i for i in ids if i not in cache or now - cache[i][1] > self._registry_ttl]
        if stale:
            with conn.cursor(row_factory=class_row(_DeviceRow)) as cur:
                for dev in cur.execute(queries.DEVICES_BY_ID, (stale,)):
                    cache[dev.id] = (DeviceState(dev.decommissioned_at), now)
            for i in stale:
                if i in cache and cache[i][1] != now:
                    del cache[i]  # no longer registered
        return {i: cache[i][0] for i in ids if i in cache}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def ping(self) -> bool:
        """Whether the database answers (used for readiness while idle)."""
        try:
            conn = self._connection()
            conn.execute("SELECT 1")
            conn.rollback()
        except (DatabaseUnavailable, psycopg.OperationalError):
            self.close()
            return False
        return True

    def write(
        self,
        batch: Sequence[Received],
        after: Callable[[psycopg.Connection[tuple[object, ...]]], None] | None = None,
    ) -> BatchResult:
        """Store one batch in one transaction. Raises DatabaseUnavailable on connection trouble.

        Any other database error (a value the schema refuses) must not stall ingest: the batch
        is split and each message is written alone; one that still fails is dead-lettered.
        """
        try:
            return self._write(batch, after)
        except psycopg.OperationalError as exc:
            self.close()
            raise DatabaseUnavailable(str(exc).strip()) from exc
        except psycopg.Error as exc:
            if len(batch) == 1:
                return self._write_failed(batch[0], exc)
            log.warning(
                "batch of %d refused (%s); writing its messages one by one", len(batch), exc
            )
            total = BatchResult(reasons={})
            for item in batch:
                res = self.write([item])
                total.inserted += res.inserted
                total.duplicates += res.duplicates
                total.dead_letters += res.dead_letters
                total.statuses += res.statuses
                for k, v in res.reasons.items():
                    total.reasons[k] = total.reasons.get(k, 0) + v
            if after is not None:
                conn = self._connection()
                with conn.transaction():
                    after(conn)
            return total

    def _write_failed(self, item: Received, exc: psycopg.Error) -> BatchResult:
        """Dead-letter a message the database refused: its rejects as they were, and each of its
        readings as a storage error; if even that fails, the raw message as one row."""
        detail = f"the database refused it: {str(exc).strip()[:300]}"
        rows = list(item.checked.rejects) + [
            Reject(item.topic, r.device_id, Reason.STORAGE_ERROR, detail, reading_bytes(r))
            for r in item.checked.readings
        ]
        conn = self._connection()
        try:
            with conn.transaction():
                self._copy_dead_letters(conn, [(item.received_at, rej) for rej in rows])
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            log.exception("could not dead-letter a refused message; keeping it raw")
            rows = [Reject(item.topic, None, Reason.STORAGE_ERROR, detail, item.payload)]
            with conn.transaction():
                self._copy_dead_letters(conn, [(item.received_at, rows[0])])
        reasons: dict[str, int] = {}
        for rej in rows:
            reasons[rej.reason.value] = reasons.get(rej.reason.value, 0) + 1
        return BatchResult(dead_letters=len(rows), reasons=reasons)

    def _write(
        self,
        batch: Sequence[Received],
        after: Callable[[psycopg.Connection[tuple[object, ...]]], None] | None,
    ) -> BatchResult:
        conn = self._connection()
        result = BatchResult(reasons={})
        dead: list[tuple[datetime, Reject]] = []
        for item in batch:
            if item.checked.rejects:
                dead.extend((item.received_at, rej) for rej in item.checked.rejects)
        with conn.transaction():
            ids = sorted(
                {item.checked.readings[0].device_id for item in batch if item.checked.readings}
                | {item.checked.status.device_id for item in batch if item.checked.status}
            )
            devices = self._device_states(conn, ids)
            staged = 0
            with conn.cursor() as cur:
                with cur.copy(queries.COPY_STAGING) as copy:
                    copy.set_types(queries.STAGING_TYPES)
                    write = copy.write_row
                    for item in batch:
                        readings = item.checked.readings
                        if not readings:
                            continue
                        at = item.received_at
                        state = devices.get(readings[0].device_id)
                        if state is not None and state.decommissioned_at is None:
                            good = readings  # the common case, without a call
                        else:
                            good, unregistered = check_registry(item.topic, readings, devices)
                            dead.extend((at, rej) for rej in unregistered)
                        staged += len(good)
                        for r in good:
                            write((r.ts, r.device_id, r.seq, r.kind, r.run_s, r.energy_wh,
                                   r.water_l, r.peak_a, r.fault, at))  # fmt: skip
                if staged:
                    row = cur.execute(queries.INSERT_FROM_STAGING).fetchone()
                    result.inserted = int(row[0]) if row else 0  # type: ignore[call-overload]
                    result.duplicates = staged - result.inserted
            for item in batch:
                st = item.checked.status
                if st is None:
                    continue
                if st.device_id not in devices:
                    dead.append(
                        (
                            item.received_at,
                            Reject(
                                item.topic,
                                st.device_id,
                                Reason.UNKNOWN_DEVICE,
                                f"device {st.device_id} is not registered",
                                st.model_dump_json(exclude_none=True).encode(),
                            ),
                        )
                    )
                    continue
                conn.execute(
                    queries.UPSERT_STATUS,
                    {
                        "device_id": st.device_id,
                        "online": st.state == "online",
                        "status_at": st.ts or item.received_at,
                        "firmware": st.firmware,
                        "uptime_s": st.uptime_s,
                        "rssi_dbm": st.rssi_dbm,
                    },
                )
                result.statuses += 1
            if dead:
                self._copy_dead_letters(conn, dead)
            if after is not None:
                after(conn)
        result.dead_letters = len(dead)
        reasons: dict[str, int] = {}
        for _, rej in dead:
            reasons[rej.reason.value] = reasons.get(rej.reason.value, 0) + 1
        result.reasons = reasons
        return result

    def _copy_dead_letters(
        self, conn: psycopg.Connection[tuple[object, ...]], dead: list[tuple[datetime, Reject]]
    ) -> None:
        with conn.cursor() as cur, cur.copy(queries.COPY_DEAD_LETTERS) as copy:
            copy.set_types(queries.DEAD_LETTER_TYPES)
            for received_at, rej in dead:
                payload = rej.payload[: self._max_dl]
                copy.write_row(
                    (
                        received_at,
                        rej.topic,
                        rej.device_id,
                        rej.reason.value,
                        rej.detail.replace("\x00", ""),
                        rej.index,
                        payload,
                        len(rej.payload) > self._max_dl,
                    )
                )
