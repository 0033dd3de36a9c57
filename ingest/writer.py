"""Writing a batch of validated shipments in one transaction: readings, dead letters, statuses.

The writer owns one connection (its temp staging table lives there). A lost connection is
reported as DatabaseUnavailable and the batch is retried whole by the caller; the insert is
idempotent, so a retry after an unknown commit outcome never doubles a reading.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, LiteralString

import psycopg

from core.errors import DatabaseUnavailable
from core.topics import KIND_FAMILY, readings_topic
from core.wire import Reason
from ingest import edge, queries
from ingest.columns import DEVICE, RECEIVED, SEQ, TS, Row
from ingest.deadletters import DeadLetterBudget
from ingest.protocol import (
    BatchResult,
    DeadLetter,
    MakerSamples,
    ReadingRow,
    StatusUpdate,
    Validated,
)
from ingest.validate import DeviceState, Reject, check_registry, reading_bytes

log = logging.getLogger(__name__)


class Writer:
    """Stores batches; one instance per ingest worker thread."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        dead_letter_max_bytes: int,
        dead_letters_per_min: int = 100,
        readings_per_min: int = 6000,
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._budget = DeadLetterBudget(dead_letters_per_min)
        self._max_dl = dead_letter_max_bytes
        self._per_min = readings_per_min
        self._windows: dict[str, edge.Window] = {}
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            try:
                conn = psycopg.connect(
                    self._url, connect_timeout=5, application_name="wastepilot-ingest"
                )
                conn.execute(queries.CREATE_STAGING)
                for statement in queries.CREATE_SAMPLE_STAGING:
                    conn.execute(statement)
                conn.commit()
            except psycopg.OperationalError as exc:
                raise DatabaseUnavailable(str(exc).strip()) from exc
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def ping(self) -> bool:
        """Whether the database answers (used for readiness while idle)."""
        try:
            conn = self._connection()
            conn.execute(queries.PING)
            conn.rollback()
        except (DatabaseUnavailable, psycopg.OperationalError):
            self.close()
            return False
        return True

    def write(
        self,
        batch: Sequence[Validated],
        after: Callable[[psycopg.Connection[tuple[object, ...]]], None] | None = None,
    ) -> BatchResult:
        """Store one batch in one transaction. Raises DatabaseUnavailable on connection trouble.

        Any other database error (a value the schema refuses) must not stall ingest: the batch
        is split and each reading, dead letter and status is written alone; one that still
        fails is dead-lettered.
        """
        try:
            return self._write(batch, after)
        except psycopg.OperationalError as exc:
            self.close()
            raise DatabaseUnavailable(str(exc).strip()) from exc
        except psycopg.Error as exc:
            pieces = [p for v in batch for p in v.pieces()]
            if len(pieces) == 1:
                return self._write_failed(pieces[0], exc)
            log.warning("batch of %d refused (%s); writing it piece by piece", len(pieces), exc)
            total = BatchResult()
            for piece in pieces:
                total.add(self.write([piece]))
            if after is not None:
                conn = self._connection()
                with conn.transaction():
                    after(conn)
            return total

    def _write_failed(self, piece: Validated, exc: psycopg.Error) -> BatchResult:
        """Dead-letter the one thing the database refused: a reading or a status as a storage
        error, a dead letter as it was; if even that fails, as a bare storage-error row."""
        detail = f"the database refused it: {str(exc).strip()[:300]}"
        dead = list(piece.dead)
        for row in piece.rows:
            dead.append(DeadLetter(row[RECEIVED], self._reject(row, Reason.STORAGE_ERROR, detail)))
        for st in piece.statuses:
            raw = st.status.model_dump_json(exclude_none=True).encode()
            reject = Reject(st.topic, st.status.device_id, Reason.STORAGE_ERROR, detail, raw)
            dead.append(DeadLetter(st.received_at, reject))
        for m in piece.samples:
            reject = Reject(m.topic, m.device_id, Reason.STORAGE_ERROR, detail, m.payload)
            dead.append(DeadLetter(m.received_at, reject))
        conn = self._connection()
        try:
            with conn.transaction():
                self._copy_dead_letters(conn, dead)
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            log.exception("could not dead-letter a refused message; keeping a bare row")
            first = dead[0]
            bare = Reject(
                first.reject.topic, None, Reason.STORAGE_ERROR, detail, first.reject.payload
            )
            dead = [DeadLetter(first.received_at, bare)]
            with conn.transaction():
                self._copy_dead_letters(conn, dead)
        return _result_of(dead)

    def _reject(self, row: ReadingRow, reason: Reason, detail: str) -> Reject:
        device = row[DEVICE]
        topic = readings_topic(self._prefix, device)
        return Reject(topic, device, reason, detail, reading_bytes(Row._make(row[:RECEIVED])))

    def _write(
        self,
        batch: Sequence[Validated],
        after: Callable[[psycopg.Connection[tuple[object, ...]]], None] | None,
    ) -> BatchResult:
        conn = self._connection()
        dead = [d for v in batch for d in v.dead]
        rows = [r for v in batch for r in v.rows]
        statuses = [s for v in batch for s in v.statuses]
        samples = [m for v in batch for m in v.samples]
        inserted = duplicates = stored_statuses = stored_samples = staged = 0
        with conn.transaction():
            conn.execute(queries.LOCK_TOMBSTONES)
            devices, erased_ids = self._batch_state(conn, rows, statuses, dead, samples)
            rows, statuses, dead, erased = _drop_erased(erased_ids, rows, statuses, dead)
            if samples:
                ours = [m for m in samples if m.device_id not in erased_ids]
                erased += len(samples) - len(ours)
                stored_samples, staged = self._store_samples(conn, ours, devices, dead)
            good: list[ReadingRow] = []
            for row in rows:
                verdict = check_registry(row[DEVICE], row[TS], devices)
                if verdict is None:
                    good.append(row)
                else:
                    dead.append(DeadLetter(row[RECEIVED], self._reject(row, *verdict)))
            rows, refused = self._device_edge(conn, good, devices, dead)
            if rows:
                windows = self._windows
                with conn.cursor() as cur:
                    with cur.copy(queries.COPY_STAGING) as copy:
                        copy.set_types(queries.STAGING_TYPES)
                        write = copy.write_row
                        for row in rows:
                            write(row)
                    got = cur.execute(
                        queries.INSERT_FROM_STAGING,
                        {
                            "ids": list(windows),
                            "minutes": [w.minute for w in windows.values()],
                            "counts": [w.count for w in windows.values()],
                        },
                    ).fetchone()
                    inserted = int(got[0]) if got else 0  # type: ignore[call-overload]
                    duplicates = len(rows) - inserted
            for st in statuses:
                if self._store_status(conn, st, devices, dead):
                    stored_statuses += 1
            left_out: dict[str, int] = {}
            if dead:
                dead, left_out = self._budget.admit(dead)
                self._copy_dead_letters(conn, dead)
            if after is not None:
                after(conn)
        result = _result_of(dead)
        if erased:
            left_out[Reason.ERASED_DEVICE.value] = erased
        if refused:  # the metric counts refused readings, not their summary rows
            kept = result.reasons.get(Reason.RATE_LIMITED.value, 0)
            left_out[Reason.RATE_LIMITED.value] = left_out.get(Reason.RATE_LIMITED.value, 0)
            left_out[Reason.RATE_LIMITED.value] += refused - kept
        for reason, n in left_out.items():  # counted in the metrics all the same
            result.reasons[reason] = result.reasons.get(reason, 0) + n
        result.inserted, result.duplicates, result.statuses = inserted, duplicates, stored_statuses
        result.samples, result.sample_duplicates = stored_samples, staged - stored_samples
        return result

    @staticmethod
    def _batch_state(
        conn: psycopg.Connection[tuple[object, ...]],
        rows: list[ReadingRow],
        statuses: list[StatusUpdate],
        dead: list[DeadLetter],
        samples: list[MakerSamples],
    ) -> tuple[dict[str, DeviceState], set[str]]:
        """The registered devices the batch names (with their seq and rate state, locked) and
        the erased ones. A dead letter names a device by its topic, registered or not."""
        named = {r[1] for r in rows} | {s.status.device_id for s in statuses}
        named.update(m.device_id for m in samples)
        for d in dead:
            named.update(d.reject.topic.split("/"))
            if d.reject.device_id:
                named.add(d.reject.device_id)
        devices: dict[str, DeviceState] = {}
        erased: set[str] = set()
        got = conn.execute(queries.BATCH_STATE, {"ids": sorted(named)})
        for dev, registered, until, is_erased, last_seq, minute, count, kind in got:
            if is_erased:
                erased.add(str(dev))
            elif registered:
                devices[str(dev)] = DeviceState(until, last_seq, minute, count, kind)  # type: ignore[arg-type]
        return devices, erased

    @staticmethod
    def _store_samples(
        conn: psycopg.Connection[tuple[object, ...]],
        samples: list[MakerSamples],
        devices: dict[str, DeviceState],
        dead: list[DeadLetter],
    ) -> tuple[int, int]:
        """Store maker devices' samples once each (their tables' keys); a message of a device
        the registry does not know, or knows as another kind, is a dead letter whole, and
        samples stamped after a decommissioning are refused. Returns the samples newly stored
        and those offered."""
        staged: dict[str, list[tuple[Any, ...]]] = {t: [] for t in queries.SAMPLE_TABLES}
        seen_ids: list[str] = []
        seen_ts: list[Any] = []
        for m in samples:
            state = devices.get(m.device_id)
            verdict: tuple[Reason, str] | None = None
            if state is None:
                verdict = Reason.UNKNOWN_DEVICE, f"device {m.device_id} is not registered"
            elif KIND_FAMILY.get(state.kind) != m.family:
                verdict = (
                    Reason.DEVICE_MISMATCH,
                    f"device {m.device_id} is registered as {state.kind}, not {m.family}",
                )
            if verdict is not None:
                dead.append(
                    DeadLetter(m.received_at, Reject(m.topic, m.device_id, *verdict, m.payload))
                )
                continue
            assert state is not None  # noqa: S101
            until = state.decommissioned_at
            parts: dict[str, Sequence[tuple[Any, ...]]] = {
                "power_samples": m.power,
                "energy_counters": m.counters,
                "meter_reads": m.meter,
            }
            refused = 0
            for table, items in parts.items():
                for item in items:
                    if until is not None and item[1] >= until:  # (device_id, ts, ...)
                        refused += 1
                        continue
                    staged[table].append((*item, m.received_at))
                    seen_ids.append(m.device_id)
                    seen_ts.append(item[1])
            if refused:
                assert until is not None  # noqa: S101
                detail = f"device {m.device_id} was decommissioned at {until.isoformat()}"
                reject = Reject(
                    m.topic, m.device_id, Reason.DECOMMISSIONED_DEVICE, detail, m.payload
                )
                dead.append(DeadLetter(m.received_at, reject))
        stored = 0
        with conn.cursor() as cur:
            for table, items in staged.items():
                if not items:
                    continue
                with cur.copy(queries.COPY_SAMPLES[table]) as copy:
                    copy.set_types(queries.SAMPLE_TABLES[table][1])
                    for item in items:
                        copy.write_row(item)
                got = cur.execute(queries.INSERT_SAMPLES[table]).fetchone()
                stored += int(got[0]) if got else 0  # type: ignore[call-overload]
            if seen_ids:
                cur.execute(queries.SAMPLES_SEEN, (seen_ids, seen_ts))
        return stored, len(seen_ids)

    def _device_edge(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        rows: list[ReadingRow],
        devices: dict[str, DeviceState],
        dead: list[DeadLetter],
    ) -> tuple[list[ReadingRow], int]:
        """The rows to stage after the device edge's rules (ingest/edge.py), with dead letters
        for a reused seq (one each, payload kept) and for readings over the rate (one summary
        row per device, no payload). Returns the rows and how many readings the rate refused."""
        self._windows = {}
        if not rows:
            return rows, 0
        maybe = edge.suspects(rows, devices)
        stored = {int(r[0]) for r in self._among(conn, queries.STORED_AMONG, rows, maybe)}
        p = edge.plan(rows, devices, stored, self._per_min)
        reused = list(p.reused)
        elsewhere = dict(self._among(conn, queries.SEQ_STORED_ELSEWHERE, rows, p.probe))
        if elsewhere:
            reused += elsewhere.items()
            p.stage = [i for i in p.stage if i not in elsewhere]
            for i in elsewhere:  # not stored after all: the window counts stored readings
                w = p.windows[rows[i][DEVICE]]
                p.windows[rows[i][DEVICE]] = edge.Window(w.minute, w.count - 1)
        for i, kept_ts in reused:
            row = rows[i]
            detail = (
                f"seq {row[SEQ]} of {row[DEVICE]} was already used by a reading stamped "
                f"{kept_ts.isoformat()}; this one is stamped {row[TS].isoformat()}"
            )
            dead.append(DeadLetter(row[RECEIVED], self._reject(row, Reason.SEQ_REUSED, detail)))
        refused = 0
        for device, over in p.refused.items():
            refused += len(over)
            first, last = rows[over[0]], rows[over[-1]]
            detail = (
                f"{len(over)} readings of {device} refused: over its limit of {self._per_min} "
                f"new readings a minute (seq {first[SEQ]} to {last[SEQ]}, stamped "
                f"{first[TS].isoformat()} to {last[TS].isoformat()})"
            )
            topic = readings_topic(self._prefix, device)
            summary = Reject(topic, device, Reason.RATE_LIMITED, detail, b"")
            dead.append(DeadLetter(first[RECEIVED], summary))
        self._windows = p.windows
        return [rows[i] for i in p.stage], refused

    @staticmethod
    def _among(
        conn: psycopg.Connection[tuple[object, ...]],
        query: LiteralString,
        rows: list[ReadingRow],
        which: list[int],
    ) -> list[tuple[Any, ...]]:
        """``query`` over the rows ``which`` (index, device, seq, ts); nothing asked if none."""
        if not which:
            return []
        args = (
            which,
            [rows[i][DEVICE] for i in which],
            [rows[i][SEQ] for i in which],
            [rows[i][TS] for i in which],
        )
        return conn.execute(query, args).fetchall()

    @staticmethod
    def _store_status(
        conn: psycopg.Connection[tuple[object, ...]],
        update: StatusUpdate,
        devices: dict[str, DeviceState],
        dead: list[DeadLetter],
    ) -> bool:
        st = update.status
        if st.device_id not in devices:
            raw = st.model_dump_json(exclude_none=True).encode()
            detail = f"device {st.device_id} is not registered"
            reject = Reject(update.topic, st.device_id, Reason.UNKNOWN_DEVICE, detail, raw)
            dead.append(DeadLetter(update.received_at, reject))
            return False
        conn.execute(
            queries.UPSERT_STATUS,
            {
                "device_id": st.device_id,
                "online": st.state == "online",
                "status_at": st.ts or update.received_at,
                "firmware": st.firmware,
                "uptime_s": st.uptime_s,
                "rssi_dbm": st.rssi_dbm,
            },
        )
        return True

    def _copy_dead_letters(
        self, conn: psycopg.Connection[tuple[object, ...]], dead: list[DeadLetter]
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


def _drop_erased(
    erased: set[str],
    rows: list[ReadingRow],
    statuses: list[StatusUpdate],
    dead: list[DeadLetter],
) -> tuple[list[ReadingRow], list[StatusUpdate], list[DeadLetter], int]:
    """The batch without anything of an erased household's devices (their tombstones are held
    in SHARE mode for the rest of the transaction), and how much was dropped. A dead letter
    counts as the device's when its topic names it, registered or not."""
    if not erased:
        return rows, statuses, dead, 0
    before = len(rows) + len(statuses) + len(dead)
    rows = [r for r in rows if r[1] not in erased]
    statuses = [s for s in statuses if s.status.device_id not in erased]
    dead = [
        d
        for d in dead
        if d.reject.device_id not in erased and erased.isdisjoint(d.reject.topic.split("/"))
    ]
    return rows, statuses, dead, before - len(rows) - len(statuses) - len(dead)


def _result_of(dead: list[DeadLetter]) -> BatchResult:
    reasons: dict[str, int] = {}
    for _, rej in dead:
        reasons[rej.reason.value] = reasons.get(rej.reason.value, 0) + 1
    return BatchResult(dead_letters=len(dead), reasons=reasons)
