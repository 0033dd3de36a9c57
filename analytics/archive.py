"""The archive tier of raw readings (issue 32): months of raw readings older than
``WASTEPILOT_ARCHIVE_AFTER_MONTHS`` move from PostgreSQL to Parquet files (one a month, under
``WASTEPILOT_ARCHIVE_DIR/readings/month=YYYY-MM/``), and an archived month can be brought back.
The rollups stay in PostgreSQL and keep answering for those months.

Archiving a month is a sequence that loses and doubles nothing if it is killed at any point
(tests/analytics/test_archive.py kills it at each step):

1. **rolled up** — the month's rollups are rebuilt from its readings first (as retention does),
   so they hold everything before the readings leave;
2. **writing** — the month's row in ``archived_months`` says so; the readings are streamed in
   (device, time) order into ``part.parquet.tmp``, flushed to disk;
3. **written** — the file is renamed into place and the directory flushed; read back, its row
   count and checksum of (device_id, ts, seq) must equal the database's own for the month
   (computed by PostgreSQL, not from what was written); the row says ``written``;
4. **archived** — one transaction deletes the month's readings and marks it ``archived``, and
   commits only if the rows it deleted are the file's (their count and checksum, from the
   DELETE itself): a reading stored in the month since the check stays, and nothing is
   deleted. Killed before the commit, every reading is still in the database and the next run
   starts again at step 3's check; after it, every reading is in the verified file;
5. the chunks the month emptied are dropped (again at the next run if killed before).

Restoring reverses it: the file's rows are copied back (``ON CONFLICT DO NOTHING``) and the
month's row deleted in one transaction; the file goes after the commit.

The checksum is the sum over rows of the first 60 bits of ``md5(device_id:ts_us:seq)`` — the
same in SQL and in Python, order-free, so the database and the file are compared row set to
row set.

Reading: rollups answer whole hours and days as before; the usage series' part-hour edges and
15-minute buckets, which read raw readings, read an archived month's file for the same windows
(``archived_usage``). The archive is off unless ``WASTEPILOT_ARCHIVE_AFTER_MONTHS`` is set
(docs/operations.md, "Archive").
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from analytics import queries as q
from analytics.rollups import rebuild
from core import clock
from core.errors import Conflict, NotFound
from core.settings import Settings

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]
Step = Callable[[str], None]  # told each step's name as it completes (the tests kill there)
COLUMNS = ("device_id", "ts", "seq", "kind", "run_s", "energy_wh", "water_l", "peak_a",
           "fault", "received_at")  # fmt: skip
ROW_GROUP = 250_000


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("device_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("seq", pa.int64()),
        ("kind", pa.string()), ("run_s", pa.float32()), ("energy_wh", pa.float32()),
        ("water_l", pa.float32()), ("peak_a", pa.float32()), ("fault", pa.string()),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ])  # fmt: skip


def month_range(month: date) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in UTC."""
    lo = datetime(month.year, month.month, 1, tzinfo=UTC)
    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return lo, datetime(nxt.year, nxt.month, 1, tzinfo=UTC)


def parse_month(text: str) -> date:
    """``2025-01`` -> 2025-01-01; a clear error otherwise."""
    try:
        return datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC).date()
    except ValueError:
        raise ValueError(f"{text!r} is not a month: write it as YYYY-MM, e.g. 2025-01") from None


def relative_path(month: date) -> str:
    return f"readings/month={month:%Y-%m}/part.parquet"


def row_hash(device_id: str, ts_us: int, seq: int) -> int:
    return int(hashlib.md5(f"{device_id}:{ts_us}:{seq}".encode()).hexdigest()[:15], 16)  # noqa: S324


@dataclass(frozen=True, slots=True)
class Tally:
    rows: int
    checksum: int


def database_tally(conn: Conn, lo: datetime, hi: datetime) -> Tally:
    row = conn.execute(q.ARCHIVE_DB_TALLY, (lo, hi)).fetchone()
    assert row is not None  # noqa: S101  (an aggregate)
    return Tally(int(row[0]), int(row[1] or 0))


def file_tally(path: Path) -> Tally:
    """Row count and checksum of a Parquet file, read back from disk."""
    import pyarrow.parquet as pq

    rows = checksum = 0
    f = pq.ParquetFile(path)
    for batch in f.iter_batches(columns=["device_id", "ts", "seq"], batch_size=ROW_GROUP):
        ids = batch.column(0).to_pylist()
        ts = batch.column(1).cast("int64").to_pylist()
        seqs = batch.column(2).to_pylist()
        rows += len(ids)
        checksum += sum(row_hash(d, t, s) for d, t, s in zip(ids, ts, seqs, strict=True))
    return Tally(rows, checksum)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _batches(conn: Conn, lo: datetime, hi: datetime) -> Iterator[Any]:
    """The month's readings in (device, time) order, as Arrow record batches."""
    import pyarrow as pa

    schema = _schema()
    with conn.transaction(), conn.cursor(name="archive_month") as cur:
        cur.itersize = ROW_GROUP
        cur.execute(q.ARCHIVE_READINGS, (lo, hi))
        while rows := cur.fetchmany(ROW_GROUP):
            cols = list(zip(*rows, strict=True))
            yield pa.record_batch([pa.array(c, type=schema.field(i).type)
                                   for i, c in enumerate(cols)], schema=schema)  # fmt: skip


def write_file(conn: Conn, lo: datetime, hi: datetime, path: Path) -> int:
    """Write the readings of [lo, hi) to ``path`` (through a .tmp file, flushed and renamed);
    returns the file's size in bytes."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    # dictionaries for the repeated strings, deltas for the ordered integers, zstd over all
    with pq.ParquetWriter(
        tmp, _schema(), compression="zstd", compression_level=9,
        use_dictionary=["device_id", "kind", "fault"],
        column_encoding={"ts": "DELTA_BINARY_PACKED", "seq": "DELTA_BINARY_PACKED",
                         "received_at": "DELTA_BINARY_PACKED"},
        write_statistics=["device_id", "ts"],
    ) as writer:  # fmt: skip
        for batch in _batches(conn, lo, hi):
            writer.write_batch(batch, row_group_size=ROW_GROUP)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return path.stat().st_size


def _state(conn: Conn, month: date) -> str | None:
    row = conn.execute(q.ARCHIVE_STATE, (month,)).fetchone()
    return None if row is None else str(row[0])


def archive_month(conn: Conn, s: Settings, month: date, step: Step = lambda _: None) -> str:
    """Archive one month's raw readings (the steps of the module's docstring); idempotent —
    run again after a kill, it carries on. Returns what it did."""
    root = archive_dir(s)
    lo, hi = month_range(month)
    path = root / relative_path(month)
    state = _state(conn, month)
    if state == "archived":
        _drop_empty_chunks(conn, lo, hi)
        return "archived already"
    if state == "restoring":
        raise Conflict(f"{month:%Y-%m} is being restored: finish `wastepilot archive restore`")
    if state is None or state == "writing":
        rebuild(conn, lo, hi)  # the rollups keep the month
        step("rolled up")
        with conn.transaction():
            conn.execute(q.ARCHIVE_BEGIN, (month, str(path), clock.now()))
        step("writing")
        size = write_file(conn, lo, hi, path)
        step("written")
    else:  # written: the file was complete; check it again before anything is deleted
        size = path.stat().st_size if path.exists() else 0
    want = database_tally(conn, lo, hi)
    got = file_tally(path) if path.exists() else Tally(-1, 0)
    if got != want:
        with conn.transaction():
            conn.execute(q.ARCHIVE_RESET, (month,))
        raise Conflict(
            f"the archive file of {month:%Y-%m} does not match the database ({got.rows} rows "
            f"in the file, {want.rows} here): nothing was deleted; run it again"
        )
    with conn.transaction():
        conn.execute(q.ARCHIVE_WRITTEN, (want.rows, want.checksum, size, month))
    step("verified")
    archived = False
    with conn.transaction() as tx:
        row = conn.execute(q.ARCHIVE_DELETE_READINGS, (lo, hi)).fetchone()
        gone = Tally(int(row[0]), int(row[1] or 0)) if row else Tally(0, 0)
        if gone != got:  # a reading of the month was stored since the check: not in the file
            raise psycopg.Rollback(tx)
        conn.execute(q.ARCHIVE_DONE, (clock.now(), month))
        archived = True
    if not archived:
        with conn.transaction():
            conn.execute(q.ARCHIVE_RESET, (month,))
        raise Conflict(
            f"readings of {month:%Y-%m} were stored while it was being archived: nothing was "
            "deleted; run it again"
        )
    step("archived")
    _drop_empty_chunks(conn, lo, hi)
    step("chunks dropped")
    log.info("archived %s: %d readings, %d bytes", f"{month:%Y-%m}", want.rows, size)
    return f"archived {want.rows} readings ({size} bytes)"


def _drop_empty_chunks(conn: Conn, lo: datetime, hi: datetime) -> None:
    with conn.transaction():
        conn.execute(q.ARCHIVE_DROP_CHUNKS, (lo, hi))


def restore_month(conn: Conn, s: Settings, month: date, step: Step = lambda _: None) -> str:
    """Bring an archived month's readings back into the database; idempotent."""
    import pyarrow.parquet as pq

    root = archive_dir(s)
    path = root / relative_path(month)
    state = _state(conn, month)
    if state is None:
        if path.exists():  # restored, killed before the file went
            path.unlink()
        raise NotFound(f"{month:%Y-%m} is not archived")
    if state in ("writing", "written"):  # never archived: its readings are all here
        with conn.transaction():
            conn.execute(q.ARCHIVE_FORGET, (month,))
        path.unlink(missing_ok=True)
        return f"{month:%Y-%m} was not archived yet: its readings are in the database"
    with conn.transaction():
        conn.execute(q.ARCHIVE_RESTORING, (month,))
    step("restoring")
    with conn.transaction():
        conn.execute(q.ARCHIVE_RESTORE_TABLE)
        with conn.cursor().copy(q.ARCHIVE_RESTORE_COPY) as copy:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=ROW_GROUP):
                for row in zip(*(batch.column(i).to_pylist() for i in range(len(COLUMNS))),
                               strict=True):  # fmt: skip
                    copy.write_row(row)
        step("copied")
        restored = conn.execute(q.ARCHIVE_RESTORE_INSERT).rowcount
        conn.execute(q.ARCHIVE_FORGET, (month,))
    step("restored")
    path.unlink(missing_ok=True)
    log.info("restored %s: %d readings", f"{month:%Y-%m}", restored)
    return f"restored {restored} readings"


def archive_dir(s: Settings) -> Path:
    return s.archive_dir if s.archive_dir is not None else s.state_dir / "archive"


def due_months(conn: Conn, s: Settings) -> list[date]:
    """Months of readings old enough to archive and not archived yet, oldest first."""
    if s.archive_after_months is None:
        return []
    today = clock.now().astimezone(UTC).date()
    back = today.year * 12 + today.month - 1 - s.archive_after_months
    horizon = date(back // 12, back % 12 + 1, 1)  # months before this one are due
    start = datetime(horizon.year, horizon.month, 1, tzinfo=UTC)
    rows = conn.execute(q.ARCHIVE_CANDIDATES, {"horizon": start}).fetchall()
    return [r[0] for r in rows]


def archive_due(conn: Conn, s: Settings) -> int:
    """The ``archive`` job: archive every month that is due; returns how many."""
    done = 0
    for month in due_months(conn, s):
        archive_month(conn, s, month)
        done += 1
    return done


def archived_until(conn: Conn) -> datetime | None:
    """The end of the newest month whose readings are (being) archived: rollups before it are
    never rebuilt from the readings left in the database."""
    row = conn.execute(q.ARCHIVED_UNTIL).fetchone()
    if row is None or row[0] is None:
        return None
    return month_range(row[0])[1]


def listing(conn: Conn) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.ARCHIVE_LIST).fetchall()


def erase_devices(conn: Conn, ids: list[str]) -> int:
    """A household's erasure reaches the archive: every archived month's file is rewritten
    without these devices' readings (through a .tmp file and a rename), its tally updated in
    the same step. Returns the readings erased from files."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not ids:
        return 0
    erased = 0
    for month, where in conn.execute(q.ARCHIVE_OF_STATE).fetchall():
        path = Path(str(where))
        if not path.exists():
            continue
        table = pq.read_table(path)
        keep = table.filter(pc.invert(pc.is_in(table.column("device_id"), pa_array(ids))))
        if keep.num_rows == table.num_rows:
            continue
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(keep, tmp, compression="zstd", compression_level=9,
                       use_dictionary=["device_id", "kind", "fault"],
                       column_encoding={"ts": "DELTA_BINARY_PACKED",
                                        "seq": "DELTA_BINARY_PACKED",
                                        "received_at": "DELTA_BINARY_PACKED"},
                       row_group_size=ROW_GROUP)  # fmt: skip
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        got = file_tally(path)
        conn.execute(q.ARCHIVE_REWRITTEN, (got.rows, got.checksum, path.stat().st_size, month))
        erased += table.num_rows - keep.num_rows
    return erased


def archived_usage(
    conn: Conn, scope: str, key: str | None, windows: list[tuple[datetime, datetime]]
) -> dict[str, list[Any]]:
    """The raw readings of archived months inside ``windows`` for the scope's devices, as the
    columns the usage series adds to what the database holds (``a_ts``, ``a_kind``, ...):
    the part-hour edges and 15-minute buckets that read raw readings read these too, so a
    series gives the same answer before and after its months are archived."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    out: dict[str, list[Any]] = {k: [] for k in ("a_ts", "a_kind", "a_run", "a_energy",
                                                 "a_water")}  # fmt: skip
    months = conn.execute(q.ARCHIVE_OF_STATE).fetchall()
    wanted = [(lo, hi) for lo, hi in windows if lo < hi]
    if not months or not wanted:
        return out
    ids = None
    if scope != "pilot":
        params = {"scope": scope, "key": key}
        ids = [str(r[0]) for r in conn.execute(q.SCOPE_DEVICES, params).fetchall()]
        if not ids:
            return out
    ts_type = pa.timestamp("us", tz="UTC")
    for month, where in months:
        m_lo, m_hi = month_range(month)
        for lo, hi in wanted:
            a, b = max(lo, m_lo), min(hi, m_hi)
            if a >= b or not Path(str(where)).exists():
                continue
            ts = ds.field("ts")
            cond = (ts >= pa.scalar(a, ts_type)) & (ts < pa.scalar(b, ts_type))
            if ids is not None:
                cond &= ds.field("device_id").isin(ids)
            t = ds.dataset(str(where), format="parquet").to_table(
                columns=["ts", "kind", "run_s", "energy_wh", "water_l"], filter=cond
            )
            out["a_ts"] += t.column("ts").to_pylist()
            out["a_kind"] += t.column("kind").to_pylist()
            out["a_run"] += t.column("run_s").to_pylist()
            out["a_energy"] += t.column("energy_wh").to_pylist()
            out["a_water"] += t.column("water_l").to_pylist()
    return out


def pa_array(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, type=pa.string())
