"""Streamed exports of per-household usage from the rollups: CSV or Parquet, written a few
thousand rows at a time from a server-side cursor, so a year of a thousand households never
sits in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import psycopg

from analytics import queries as q

Granularity = Literal["1h", "1d"]
CHUNK_ROWS = 5_000
COLUMNS = ("household", "bucket", "uses", "run_s", "energy_wh", "water_l", "faults")


def _chunks(
    conn: psycopg.Connection[Any], granularity: Granularity, params: dict[str, Any]
) -> Iterator[list[tuple[Any, ...]]]:
    with conn.transaction(), conn.cursor(name="usage_export") as cur:
        cur.itersize = CHUNK_ROWS
        cur.execute(q.EXPORT_HOURLY if granularity == "1h" else q.EXPORT_DAILY, params)
        while rows := cur.fetchmany(CHUNK_ROWS):
            yield rows


def usage_csv(
    conn: psycopg.Connection[Any], granularity: Granularity, params: dict[str, Any]
) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for rows in _chunks(conn, granularity, params):
        for r in rows:
            w.writerow((r[0], r[1].isoformat(), r[2], round(r[3], 2), round(r[4], 3),
                        round(r[5], 3), r[6]))  # fmt: skip
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()


class _Sink(io.RawIOBase):
    """A file that pyarrow writes into and the response drains after each row group."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.parts.append(data)
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def drain(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def usage_parquet(
    conn: psycopg.Connection[Any], granularity: Granularity, params: dict[str, Any]
) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("household", pa.string()),
            ("bucket", pa.timestamp("us", tz="UTC")),
            ("uses", pa.int32()),
            ("run_s", pa.float64()),
            ("energy_wh", pa.float64()),
            ("water_l", pa.float64()),
            ("faults", pa.int32()),
        ]
    )
    sink = _Sink()
    try:
        with pq.ParquetWriter(sink, schema) as writer:
            for rows in _chunks(conn, granularity, params):
                cols = list(zip(*rows, strict=True))
                writer.write_table(pa.Table.from_arrays([pa.array(c) for c in cols], schema=schema))
                yield sink.drain()
        yield sink.drain()
    finally:
        # an unclosed sink left to the interpreter's exit makes pyarrow abort the process
        sink.close()


def export_params(
    start: datetime, end: datetime, cohort: str | None, household: str | None
) -> dict[str, Any]:
    return {"start": start, "end": end, "cohort": cohort, "household": household}
