"""Analyst query benchmark: rollups against raw readings, in one run, on one simulated year of
1,000 households.

Loads the year once (simulator model -> binary COPY into its own database, then the rollups'
first build), then times, each from rollups and from raw readings:
- one household's daily series for a year;
- pilot KPIs for 90 days;
- a cohort's hourly series for a week.

Run: `.venv/bin/python bench/queries.py` (after `wastepilot services up`); `--households N` and
`--days D` for a smaller run; the data stays in database `wastepilot_bench_queries` and is
reused when it matches. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.kpis import pilot_kpis
from analytics.rollups import refresh
from analytics.usage import Bucket, usage_series
from bench import common
from bench.common import log
from core.migrate import migrate
from core.registry import Device, Household, add_devices, add_households
from simulator.model import household_day, make_fleet
from simulator.params import Params

LONDON = ZoneInfo("Europe/London")
DB = "wastepilot_bench_queries"


def database(admin_url: str, name: str = DB) -> str:
    """The benchmark's own database (created once, migrated), as its owner."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    migrate(url)
    return url


def load(url: str, households: int, days: int, seed: int, reload: bool) -> tuple[date, date]:
    """The simulated period [first, last) of local days, loaded unless already there."""
    last = datetime.now(UTC).astimezone(LONDON).date()
    first = last - timedelta(days=days)
    p = Params()
    fleet = make_fleet(households, seed, p)
    with psycopg.connect(url, autocommit=True) as conn:
        marker = f"{households}x{days}@{first}/{seed}"
        row = conn.execute(
            "SELECT received_until FROM rollup_watermarks WHERE name = %s", (marker,)
        ).fetchone()
        if row and not reload:
            log(f"== reusing the loaded data ({marker})")
            return first, last
        conn.execute(
            "TRUNCATE readings, devices, households, usage_hourly, usage_daily, rollup_watermarks CASCADE"
        )
        add_households(conn, [Household(h.ref, cohort=h.cohort, joined_on=first) for h in fleet])
        add_devices(conn, [Device(h.device_id, h.ref) for h in fleet])
        t0 = time.perf_counter()
        n = 0
        with Progress() as bar, conn.cursor() as cur:
            task = bar.add_task("simulating and loading readings", total=len(fleet))
            with cur.copy(
                "COPY readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, fault, "
                "received_at) FROM STDIN"
            ) as copy:
                for h in fleet:
                    seq = 0
                    d = first
                    while d < last:
                        for e in household_day(h, d, seed, p):
                            seq += 1
                            copy.write_row((e.at, h.device_id, seq, e.kind, e.run_s, e.energy_wh,
                                            e.water_l, e.peak_a, e.fault, e.at))  # fmt: skip
                            n += 1
                        d += timedelta(days=1)
                    bar.advance(task)
        log(f"  {n:,} readings in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        r = refresh(conn, timedelta(days=7))
        log(
            f"  rollups built in {time.perf_counter() - t0:.1f} s: {r.hours:,} household-hours, {r.days:,} household-days"
        )
        conn.execute("ANALYZE")
        conn.execute(
            "INSERT INTO rollup_watermarks (name, received_until) VALUES (%s, now())", (marker,)
        )
    return first, last


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    fn()  # warm the caches: steady state is what analysts see
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[
        min(len(samples) - 1, round(0.95 * (len(samples) - 1)))
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=30, help="timed runs from rollups")
    ap.add_argument(
        "--reload", action="store_true", help="load and build again (after code changes)"
    )
    ap.add_argument("--raw-repeats", type=int, default=5, help="timed runs from raw readings")
    args = ap.parse_args()

    url = database(common.settings().db_owner_url())
    log(f"== one simulated period: {args.households} households, {args.days} days")
    first, last = load(url, args.households, args.days, args.seed, args.reload)
    t_first = datetime.combine(first, dtime(), LONDON)
    t_last = datetime.combine(last, dtime(), LONDON)
    results: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        ref = conn.execute("SELECT min(ref) FROM households").fetchone()[0]  # type: ignore[index]
        cohort = conn.execute("SELECT min(cohort) FROM households").fetchone()[0]  # type: ignore[index]
        week0 = t_last - timedelta(days=7)
        k0, k1 = last - timedelta(days=90), last
        cases: dict[str, tuple[Callable[[bool], Any], str]] = {
            "household_year": (
                lambda roll: usage_series(
                    conn, "household", ref, Bucket.D1, t_first, t_last, use_rollups=roll
                ),
                f"household {ref}: daily series for {args.days} days",
            ),
            "kpis_90d": (
                # what the API serves (rollups + readings received since) against raw readings;
                # the instant they were computed at aside
                lambda roll: replace(
                    pilot_kpis(conn, k0, k1, source="current" if roll else "raw"), as_of=None
                ),
                "pilot KPIs for 90 days",
            ),
            "cohort_week": (
                lambda roll: usage_series(
                    conn, "cohort", cohort, Bucket.H1, week0, t_last, use_rollups=roll
                ),
                f"cohort {cohort}: hourly series for a week",
            ),
        }
        # the two sources must agree before their speeds mean anything
        for name, (fn, _) in cases.items():
            assert fn(True) == fn(False), f"{name}: rollups and raw readings disagree"
        for name, (fn, label) in cases.items():
            p50, p95 = timed(lambda fn=fn: fn(True), args.repeats)
            r50, r95 = timed(lambda fn=fn: fn(False), args.raw_repeats)
            log(f"== {label}")
            log(f"  rollups p50 {p50:.1f} ms, p95 {p95:.1f} ms; raw p50 {r50:.1f} ms, p95 {r95:.1f} ms; "
                f"rollups {r50 / p50:.1f}x faster (p50)")  # fmt: skip
            results[f"{name}_p50_ms"] = round(p50, 1)
            results[f"{name}_p95_ms"] = round(p95, 1)
            results[f"{name}_raw_p50_ms"] = round(r50, 1)
            results[f"{name}_raw_p95_ms"] = round(r95, 1)
            results[f"{name}_rollup_vs_raw"] = round(r50 / p50, 1)
    log("== targets")
    log(f"  household year series p95 {results['household_year_p95_ms']} ms (target <= 50 ms)")
    log(f"  90-day pilot KPIs p95 {results['kpis_90d_p95_ms']} ms (target <= 250 ms)")
    log(f"  pilot KPIs rollups vs raw {results['kpis_90d_rollup_vs_raw']}x (target >= 10x)")
    results["kpis_rollup_vs_raw"] = results["kpis_90d_rollup_vs_raw"]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
