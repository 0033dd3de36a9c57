"""Archive tier benchmark (issue 32): bytes a raw reading costs hot (PostgreSQL, the Apache
edition: no compression) and archived (Parquet), and how fast a month is archived and restored
against reading the same month out of the database in the same run.

Loads a simulated period (the simulator's model, binary COPY, as bench/queries.py does) into
its own database, then archives its oldest whole month (written, verified against the
database's own checksum, deleted), checks the usage series of every household over that month
give the same answers as before, and restores it. The last line is one JSON object.

Run: `.venv/bin/python bench/archive.py` (after `wastepilot services up`); `--households N`,
`--days D`. Target: archived ≤ 30 bytes a reading.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics import archive
from analytics.usage import Bucket, usage_series
from bench import common
from bench.common import log
from bench.queries import database, load

DB = "wastepilot_bench_archive"


def answers(conn: psycopg.Connection[Any], refs: list[str], lo: datetime, hi: datetime) -> Any:
    return [usage_series(conn, "household", r, b, lo, hi) for r in refs
            for b in (Bucket.H1, Bucket.D1)]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=1000)
    ap.add_argument("--days", type=int, default=75)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    url = database(common.settings().db_owner_url(), DB)
    log(f"== {args.households} households, {args.days} days")
    first, _ = load(url, args.households, args.days, args.seed, reload=False)
    month = date(first.year + first.month // 12, first.month % 12 + 1, 1)  # first whole month
    lo, hi = archive.month_range(month)
    out: dict[str, Any] = {"households": args.households, "days": args.days,
                           "month": f"{month:%Y-%m}"}  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn, tempfile.TemporaryDirectory() as d:
        s = common.settings().model_copy(update={"archive_dir": Path(d)})
        conn.execute("ANALYZE readings")
        total = conn.execute(
            "SELECT count(*), hypertable_size('readings') FROM readings"
        ).fetchone()
        assert total is not None
        out["hot_bytes_per_reading"] = round(int(total[1]) / int(total[0]), 1)
        rows = archive.database_tally(conn, lo, hi).rows
        refs = [str(r[0]) for r in conn.execute("SELECT ref FROM households ORDER BY ref")]
        before = answers(conn, refs, lo - timedelta(days=2), hi + timedelta(days=2))
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
            "COPY (SELECT * FROM readings WHERE ts >= %s AND ts < %s ORDER BY device_id, ts, seq)"
            " TO STDOUT", (lo, hi)) as copy:  # fmt: skip
            for _ in copy:
                pass
        baseline = time.perf_counter() - t0
        t0 = time.perf_counter()
        log(f"  archiving {month:%Y-%m}: {rows:,} readings")
        archive.archive_month(conn, s, month)
        took = time.perf_counter() - t0
        listed = next(r for r in archive.listing(conn) if r["month"] == month)
        after = answers(conn, refs, lo - timedelta(days=2), hi + timedelta(days=2))
        t0 = time.perf_counter()
        archive.restore_month(conn, s, month)
        restore = time.perf_counter() - t0
        back = archive.database_tally(conn, lo, hi)
    out |= {
        "readings": rows,
        "archived_bytes": int(listed["bytes"]),
        "archived_bytes_per_reading": round(int(listed["bytes"]) / rows, 2),
        "archive_s": round(took, 2),
        "archive_readings_per_s": round(rows / took),
        "read_out_s (baseline)": round(baseline, 2),
        "archive_vs_read_out": round(took / baseline, 1),
        "restore_s": round(restore, 2),
        "restore_readings_per_s": round(rows / restore),
        "same_answers_after_archiving": before == after,
        "restored_all": back.rows == rows,
        "hot_vs_archived": round(out["hot_bytes_per_reading"] * rows / int(listed["bytes"]), 1),
        "target_archived_bytes_per_reading": 30,
    }
    for k, v in out.items():
        log(f"  {k}: {v}")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
