"""Web page load times with a year of data for 1,000 households, in a real browser.

Uses the database of bench/queries.py (run that first: it loads the simulated year), adds the
demo bid-support programme and two users, serves the app with uvicorn and loads each page in
headless Chromium, timing navigation to the load event (HTML, CSS, scripts and, on the
dashboard, the charts drawn). Target: every page under 1 s. The last line is one JSON object.

Run: `.venv/bin/python bench/pages.py` (after `wastepilot services up` and
`wastepilot services browser`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import log
from bids.demo import seed_demo
from bids.records import load_reference_councils
from core import auth
from core.migrate import migrate

DB = "wastepilot_bench_queries"
PASSWORD = "bench password 1234"  # noqa: S105  (a throwaway bench user)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    url = common.settings().db_owner_url().rsplit("/", 1)[0] + "/" + DB
    migrate(url)  # the bench database may predate the newest migrations
    with psycopg.connect(url) as conn:
        n = conn.execute("SELECT count(*) FROM households").fetchone()
        if not n or not n[0]:
            raise SystemExit("no data: run bench/queries.py first")
        load_reference_councils(conn)
        seed_demo(conn)
        for name, role in (("bench-officer", "officer"), ("bench-analyst", "analyst")):
            if not conn.execute("SELECT 1 FROM users WHERE username = %s", (name,)).fetchone():
                auth.add_user(conn, name, role, PASSWORD)  # type: ignore[arg-type]
        wid = conn.execute("SELECT min(id) FROM workshops").fetchone()[0]  # type: ignore[index]
        ref = conn.execute("SELECT min(ref) FROM households").fetchone()[0]  # type: ignore[index]
        log(f"== {n[0]} households, a year of readings; demo programme with 5 workshops")

    with common.served_app(url) as base:
        _tour(base, wid, ref, args.repeats)


def _tour(base: str, wid: int, ref: str, repeats: int) -> None:
    """Sign in as each role in Chromium and time each page's load."""
    from playwright.sync_api import sync_playwright

    pages = {
        "officer": ["/officers/workshops", f"/officers/workshops/{wid}", f"/officers/workshops/{wid}/import", "/officers/take-up"],
        "analyst": ["/analysts", "/analysts?bucket=1w&days=365", "/analysts?bucket=1h&days=7", f"/analysts/households/{ref}"],
    }  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        for role, paths in pages.items():
            page = browser.new_page()
            page.goto(f"{base}/sign-in")
            page.fill("#username", f"bench-{role}")
            page.fill("#password", PASSWORD)
            page.click("button:has-text('Sign in')")
            page.wait_for_load_state()
            for path in paths:
                samples = []
                for _ in range(repeats + 1):
                    t0 = time.perf_counter()
                    page.goto(base + path, wait_until="load")
                    if path.startswith("/analysts?") or path == "/analysts":
                        page.wait_for_function("() => window.usageChart !== undefined")
                    samples.append((time.perf_counter() - t0) * 1000)
                samples = sorted(samples[1:])  # the first load warms the caches
                p50 = statistics.median(samples)
                p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
                results[path] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
                log(f"  {path:45s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")
        browser.close()
    worst = max(r["p95_ms"] for r in results.values())
    log(f"== slowest page p95 {worst:.1f} ms (target < 1000 ms)")
    print(json.dumps({"slowest_page_p95_ms": worst, "pages": results}))


if __name__ == "__main__":
    main()
