"""Analyst query benchmark at two sizes in one run: the pilot's benchmark (1,000 households, a
year) and a bigger one (e.g. 10,000 households, two years), each in its own database.

Each size is loaded once (simulator model -> binary COPY from two processes, the rollups built
month by month, device status and the device-health job's anomalies) and reused while it
matches. Then, on each size, it times what an analyst's reads cost:
- the usage series behind the API (a household's year by day and a day by 15 minutes, a
  cohort's week by hour, the pilot's year by week), from rollups, and once from raw readings
  (as a check - both must agree - and for scale);
- the current pilot KPIs for 30, 90 and 365 days, and 90 days for one cohort;
- through HTTP (the app served by uvicorn, a signed-in analyst): the dashboard (30 days), a
  household's page, the anomaly list, and a cohort's year exported as CSV (streamed, rows/s).

Run: `.venv/bin/python bench/queries.py` (1,000 x 365 only, ~2 min the first time) or
`.venv/bin/python bench/queries.py --households 10000 --years 2` (~30 min the first time),
after `wastepilot services up`. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2 as httpx
import psycopg
from psycopg import sql
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.anomalies import check_devices
from analytics.kpis import pilot_kpis
from analytics.rollups import WATERMARK, rebuild
from analytics.usage import Bucket, usage_series
from bench import common
from bench.common import log
from core import auth
from core.db import connect
from core.migrate import migrate
from core.registry import Device, Household, add_devices, add_households
from core.settings import Settings
from simulator.model import HouseholdSpec, household_day, make_fleet
from simulator.params import Params

LONDON = ZoneInfo("Europe/London")
DB = "wastepilot_bench_queries"  # the 1,000 x 365 baseline's (bench/pages.py uses it too)
BASELINE = (1000, 365)


def database(admin_url: str, name: str) -> str:
    """A benchmark database (created once, migrated), as its owner."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    migrate(url)
    return url


@functools.cache
def _fleet(lo: int, hi: int, seed: int) -> list[HouseholdSpec]:
    return make_fleet(hi - lo, seed, Params(), first=lo + 1)


def _copy_week(
    task: tuple[str, int, int, int, date, date, dict[str, int]],
) -> tuple[int, dict[str, int]]:
    """Simulate households [lo, hi) over the days [d0, d1) and COPY their readings in time
    order, as ingest stores them (a worker; `seqs` carries each device's last seq on)."""
    url, lo, hi, seed, d0, d1, seqs = task
    p = Params()
    rows = []
    for h in _fleet(lo, hi, seed):
        seq = seqs.get(h.device_id, 0)
        d = d0
        while d < d1:
            for e in household_day(h, d, seed, p):
                seq += 1
                rows.append((e.at, h.device_id, seq, e.kind, e.run_s, e.energy_wh, e.water_l,
                             e.peak_a, e.fault, e.at))  # fmt: skip
            d += timedelta(days=1)
        seqs[h.device_id] = seq
    rows.sort(key=lambda r: r[0])
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(
            "COPY readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, fault, "
            "received_at) FROM STDIN"
        ) as copy,
    ):
        for r in rows:
            copy.write_row(r)
    return len(rows), seqs


def _days(first: date, last: date, step: int) -> Iterator[date]:
    d = first
    while d < last:
        yield d
        d += timedelta(days=step)


def months(first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) local-midnight spans of at most a calendar month covering [first, last)."""
    d = first
    while d < last:
        nxt = min(last, (d.replace(day=1) + timedelta(days=32)).replace(day=1))
        yield datetime.combine(d, dtime(), LONDON), datetime.combine(nxt, dtime(), LONDON)
        d = nxt


def load(url: str, households: int, days: int, seed: int, reload: bool) -> tuple[date, date]:
    """The simulated period [first, last) of local days, loaded unless already there."""
    last = datetime.now(UTC).astimezone(LONDON).date()
    first = last - timedelta(days=days)
    marker = f"{households}x{days}@{first}/{seed}/time-ordered"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT received_until FROM rollup_watermarks WHERE name = %s", (marker,)
        ).fetchone()
        if row and not reload:
            log(f"== reusing the loaded data ({marker})")
            return first, last
        conn.execute(
            "TRUNCATE readings, devices, device_status, households, usage_hourly, usage_daily, "
            "rollup_watermarks, anomalies CASCADE"
        )
        fleet = make_fleet(households, seed, Params())
        add_households(conn, [Household(h.ref, cohort=h.cohort, joined_on=first) for h in fleet])
        add_devices(conn, [Device(h.device_id, h.ref) for h in fleet])
    t0 = time.perf_counter()
    n = 0
    # a week at a time in time order (the physical order ingest gives the readings, which the
    # BRIN index on received_at relies on), the households in two halves, one a process
    halves = [(0, households // 2), (households // 2, households)]
    seqs: list[dict[str, int]] = [{}, {}]
    weeks = [(d, min(last, d + timedelta(days=7))) for d in _days(first, last, 7)]
    with (
        Progress() as bar,
        multiprocessing.get_context("fork").Pool(2) as pool,
    ):
        task = bar.add_task("simulating and loading readings, a week at a time", total=len(weeks))
        for d0, d1 in weeks:
            done = pool.map(
                _copy_week,
                [(url, lo, hi, seed, d0, d1, seqs[k]) for k, (lo, hi) in enumerate(halves)],
            )
            n += sum(k for k, _ in done)
            seqs = [s for _, s in done]
            bar.advance(task)
    log(f"  {n:,} readings in {time.perf_counter() - t0:.1f} s")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE readings")
        # every reading is received (received_at = its ts, all before today): the rollups are
        # built month by month up to this watermark, as `wastepilot rollups rebuild` does
        conn.execute(
            "INSERT INTO rollup_watermarks (name, received_until) VALUES (%s, now()) "
            "ON CONFLICT (name) DO UPDATE SET received_until = now()",
            (WATERMARK,),
        )
        t0 = time.perf_counter()
        hours = days_ = 0
        spans = list(months(first, last))
        with Progress() as bar:
            task = bar.add_task("building the rollups a month at a time", total=len(spans))
            for start, end in spans:
                r = rebuild(conn, start, end)
                hours, days_ = hours + r.hours, days_ + r.days
                bar.advance(task)
        log(f"  rollups built in {time.perf_counter() - t0:.1f} s: {hours:,} household-hours, "
            f"{days_:,} household-days")  # fmt: skip
        conn.execute(
            "INSERT INTO device_status (device_id, online, status_at, last_seen, last_seq) "
            "SELECT device_id, true, max(ts), max(ts), max(seq) FROM readings GROUP BY device_id"
        )
        t0 = time.perf_counter()
        found = check_devices(conn, Settings(database_url=url))
        log(f"  device-health job: {found:,} anomalies in {time.perf_counter() - t0:.1f} s")
        conn.execute("ANALYZE")
        conn.execute(
            "INSERT INTO rollup_watermarks (name, received_until) VALUES (%s, now())", (marker,)
        )
    return first, last


def today_so_far(url: str, households: int, seed: int, last: date) -> int:
    """Today's readings up to now, stored now: received since the rollups' watermark, as a
    running pilot always has some (the dashboard's and the household page's periods reach
    today). Replaces the last run's; returns how many."""
    now = datetime.now(UTC)
    p = Params()
    with connect(url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM readings WHERE ts >= %s", (datetime.combine(last, dtime(), LONDON),)
        )
        seqs = dict(conn.execute("SELECT device_id, last_seq FROM device_status").fetchall())
        n = 0
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY readings (ts, device_id, seq, kind, run_s, energy_wh, water_l, peak_a, fault) "
                "FROM STDIN"
            ) as copy,
        ):
            for h in make_fleet(households, seed, p):
                seq = seqs.get(h.device_id) or 0
                for e in household_day(h, last, seed, p):
                    if e.at < now:
                        seq += 1
                        copy.write_row((e.at, h.device_id, seq, e.kind, e.run_s, e.energy_wh,
                                        e.water_l, e.peak_a, e.fault))  # fmt: skip
                        n += 1
    return n


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


@contextmanager
def served(url: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The app on the benchmark database: an API client (read token) and a page client (the
    same token as the session cookie), both of an analyst."""
    from api.auth import SESSION_COOKIE

    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM users WHERE username = 'bench-analyst'").fetchone():
            auth.add_user(conn, "bench-analyst", "analyst", "bench password 1234")
        _, token = auth.create_token(conn, "bench-analyst", scope="read", days=1, name="bench")
    with (
        common.served_app(url) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300) as api,
        httpx.Client(base_url=base, cookies={SESSION_COOKIE: token}, timeout=300) as pages,
    ):  # fmt: skip
        yield api, pages


def get(client: httpx.Client, path: str) -> Callable[[], Any]:
    def fn() -> Any:
        r = client.get(path)
        if r.status_code != 200:
            raise SystemExit(f"GET {path}: {r.status_code} {r.text[:300]}")
        return len(r.content)

    return fn


def export_rate(api: httpx.Client, path: str, repeats: int) -> tuple[int, float]:
    """Rows of a streamed CSV export and the best rows/s of `repeats` runs."""
    best = 0.0
    rows = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        rows = 0
        with api.stream("GET", path) as r:
            if r.status_code != 200:
                raise SystemExit(f"GET {path}: {r.status_code}")
            for chunk in r.iter_bytes():
                rows += chunk.count(b"\n")
        rows -= 1  # the header
        best = max(best, rows / (time.perf_counter() - t0))
    return rows, best


@dataclass(frozen=True)
class Scale:
    households: int
    days: int

    @property
    def name(self) -> str:
        return f"{self.households}x{self.days}"

    @property
    def db(self) -> str:
        return DB if (self.households, self.days) == BASELINE else f"{DB}_{self.name}"


def measure(scale: Scale, args: argparse.Namespace) -> dict[str, Any]:
    url = database(common.settings().db_owner_url(), scale.db)
    log(f"== {scale.households:,} households, {scale.days} days (database {scale.db})")
    _, last = load(url, scale.households, scale.days, args.seed, args.reload)
    fresh = today_so_far(url, scale.households, args.seed, last)
    log(f"  {fresh:,} of today's readings so far, received since the rollups' watermark")
    t_last = datetime.combine(last, dtime(), LONDON)
    year0 = t_last - timedelta(days=365)
    out: dict[str, Any] = {}
    with connect(url, autocommit=True) as conn:  # as the services connect (core/db.py)
        out["readings"] = conn.execute("SELECT count(*) FROM readings").fetchone()[0]  # type: ignore[index]
        sizes = conn.execute(
            "SELECT hypertable_size('readings'), pg_total_relation_size('usage_hourly'), "
            "pg_total_relation_size('usage_daily')"
        ).fetchone()
        assert sizes is not None
        out["readings_bytes"], out["hourly_bytes"], out["daily_bytes"] = sizes
        ref = conn.execute("SELECT min(ref) FROM households").fetchone()[0]  # type: ignore[index]
        cohort = conn.execute("SELECT min(cohort) FROM households").fetchone()[0]  # type: ignore[index]
        day0 = t_last - timedelta(days=1)
        week0 = t_last - timedelta(days=7)

        def series(scope: str, key: str | None, b: Bucket, t0: datetime) -> Callable[[bool], Any]:
            return lambda roll: usage_series(conn, scope, key, b, t0, t_last, use_rollups=roll)

        def kpis(days: int, cohort: str | None = None) -> Callable[[bool], Any]:
            return lambda roll: replace(
                pilot_kpis(conn, last - timedelta(days=days), last, cohort=cohort,
                           source="current" if roll else "raw"),
                as_of=None,
            )  # fmt: skip

        cases: dict[str, Callable[[bool], Any]] = {
            "household_year": series("household", ref, Bucket.D1, year0),
            "household_day_15m": series("household", ref, Bucket.M15, day0),
            "cohort_week": series("cohort", cohort, Bucket.H1, week0),
            "pilot_year_weekly": series("pilot", None, Bucket.W1, year0),
            "kpis_30d": kpis(30),
            "kpis_90d": kpis(90),
            "kpis_365d": kpis(365),
            "kpis_90d_cohort": kpis(90, cohort),
        }
        for name, fn in cases.items():
            t0 = time.perf_counter()
            raw = fn(False)  # the raw readings' answer, once (a year of KPIs takes a while)
            raw_ms = (time.perf_counter() - t0) * 1000
            # the two sources must agree before their speeds mean anything
            assert fn(True) == raw, f"{name}: rollups and raw readings disagree"
            p50, p95 = timed(lambda fn=fn: fn(True), args.repeats)
            log(f"  {name:20s} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms   raw {raw_ms:9.1f} ms")
            out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = round(p50, 1), round(p95, 1)
            out[f"{name}_raw_ms"] = round(raw_ms, 1)
    with served(url) as (api, pages):
        year = f"start={year0.isoformat()}&end={t_last.isoformat()}".replace("+", "%2B")
        http = {
            "dashboard_30d": get(pages, "/analysts"),
            "household_page": get(pages, f"/analysts/households/{ref}"),
            "anomaly_list": get(api, "/api/v1/anomalies"),
            "api_household_year": get(api, f"/api/v1/households/{ref}/usage?bucket=1d&{year}"),
            "api_kpis_90d": get(api, f"/api/v1/kpis?start={last - timedelta(days=90)}&end={last}"),
        }
        for name, fn in http.items():
            p50, p95 = timed(fn, args.repeats)
            log(f"  {name:20s} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms   (HTTP)")
            out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = round(p50, 1), round(p95, 1)
        for bucket in ("1d", "1h"):
            rows, rate = export_rate(
                api, f"/api/v1/exports/usage.csv?bucket={bucket}&cohort={cohort}&{year}", 3
            )
            log(f"  export cohort {cohort} year by {bucket}: {rows:,} rows, {rate:,.0f} rows/s")
            out[f"export_year_{bucket}_rows"] = rows
            out[f"export_year_{bucket}_rows_per_s"] = round(rate)
    return out


TARGETS = {  # the issue's, for the bigger size (p95 ms; export rows/s)
    "household_year_p95_ms": 20,
    "kpis_90d_p95_ms": 150,
    "dashboard_30d_p95_ms": 500,
    "household_page_p95_ms": 300,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=BASELINE[0])
    ap.add_argument("--days", type=int, default=BASELINE[1])
    ap.add_argument("--years", type=float, help="instead of --days: 365 days a year")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=30, help="timed runs of each read")
    ap.add_argument(
        "--reload", action="store_true", help="load and build again (after code changes)"
    )
    args = ap.parse_args()
    days = round(365 * args.years) if args.years else args.days
    scales = [Scale(*BASELINE)]
    if (args.households, days) != BASELINE:
        scales.append(Scale(args.households, days))
    results = {s.name: measure(s, args) for s in scales}
    if len(scales) == 2:
        base, big = (results[s.name] for s in scales)
        log(f"== {scales[1].name} beside {scales[0].name}")
        for key in big:
            if key.endswith(("_p95_ms", "_per_s", "readings", "_bytes")):
                ratio = big[key] / base[key] if base[key] else float("nan")
                target = TARGETS.get(key)
                mark = (
                    ""
                    if target is None
                    else f"  target <= {target}: " + ("met" if big[key] <= target else "NOT MET")
                )
                log(f"  {key:34s} {base[key]:>14,} {big[key]:>14,}  x{ratio:5.1f}{mark}")
        rate = big["export_year_1d_rows_per_s"]
        log(f"  export of a cohort's year: {rate:,} rows/s (target >= 100,000: "
            f"{'met' if rate >= 100_000 else 'NOT MET'})")  # fmt: skip
    print(json.dumps(results))


if __name__ == "__main__":
    main()
