"""The API under attack: how much slower a signed-in person's reads get, as a ratio to the same
reads on a quiet API, measured in one run.

Serves `wastepilot api` as deployed (its own process, default settings) on a fresh database,
then times a signed-in officer's `GET /api/v1/workshops`, one after another:
- quiet: nothing else happening (the baseline);
- sheet bombs: while the five workbooks of bench/attacks.py (declared 17 billion cells,
  shared strings that unpack to 60 MB, ...) are posted to the attendance import at once,
  round after round; also how long each bomb took to be refused;
- sign-in flood: while 16 clients (in another process) post wrong passwords for made-up
  accounts.

The tests assert what happens under the same attacks (every read answered, none waiting for
ever: tests/api/test_hardening.py); the speeds are here (docs/benchmarks.md). The last line
is one JSON object.

Run: `.venv/bin/python bench/api.py` (after `wastepilot services up`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import attacks, common
from bench.common import log
from core import auth, clock
from core.db import connect
from core.settings import Settings
from wastepilot.prepare import prepare_database

DB = "wastepilot_bench_api"
PASSWORD = "bench password 1234"  # noqa: S105  (a throwaway bench user)


def serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    """`wastepilot api` on a free port, answering; (process, base URL)."""
    port = common.free_port()
    env = {**os.environ, "WASTEPILOT_DATABASE_URL": url, "WASTEPILOT_API_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wastepilot", "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx2.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("`wastepilot api` did not answer within 60 s")


def figures(got: list[tuple[int, float]]) -> dict[str, Any]:
    seconds = [s for _, s in got]
    return {
        "n": len(got),
        "errors": sum(1 for code, _ in got if code != 200),
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(attacks.p95(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def _flood(base: str, clients: int, seconds: float) -> None:
    with attacks.sign_in_flood(base, clients):
        time.sleep(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=300, help="reads in the quiet baseline")
    ap.add_argument("--bomb-rounds", type=int, default=5)
    ap.add_argument("--flood-seconds", type=float, default=20)
    args = ap.parse_args()

    url = common.fresh_database(common.settings().db_url(), DB)
    prepare_database(Settings(database_url=url))
    with connect(url) as conn:
        auth.add_user(conn, "bench-officer", "officer", PASSWORD)
        _, token = auth.create_token(conn, "bench-officer", name="bench")
        conn.commit()
    headers = {"Authorization": f"Bearer {token}"}
    proc, base = serve(url)
    results: dict[str, Any] = {}
    try:
        listing = f"{base}/api/v1/workshops"
        r = httpx2.post(
            listing,
            json={
                "title": "Bid workshop",
                "venue": "Civic Hall",
                "town": "Leeds",
                "region": "Yorkshire and The Humber",
                "starts_at": (clock.now() + timedelta(days=14)).isoformat(),
                "ends_at": (clock.now() + timedelta(days=14, hours=5)).isoformat(),
                "capacity": 40,
            },
            headers=headers,
        )
        r.raise_for_status()
        import_url = f"{listing}/{r.json()['id']}/attendance-import"
        attacks.timed_gets(listing, headers, 20)  # warm up
        quiet = attacks.timed_gets(listing, headers, args.reads)
        results["quiet"] = figures(quiet)
        log(f"quiet            {results['quiet']}")

        refused: list[float] = []
        with attacks.reading_meanwhile(listing, headers) as during:
            for _ in range(args.bomb_rounds):
                answers = attacks.post_bombs(import_url, headers)
                assert all(400 <= code < 500 for code, _, _ in answers.values()), answers
                refused += [seconds for _, seconds, _ in answers.values()]
        results["sheet_bombs"] = figures(during) | {
            "bomb_answered_max_ms": round(max(refused) * 1000, 1)
        }
        log(f"sheet bombs      {results['sheet_bombs']}")

        flood = multiprocessing.get_context("spawn").Process(
            target=_flood, args=(base, 16, args.flood_seconds)
        )
        flood.start()
        time.sleep(1)  # the flood under way
        during = []
        while flood.is_alive() and len(during) < 10_000:
            during += attacks.timed_gets(listing, headers, 20)
        flood.join()
        results["sign_in_flood"] = figures(during)
        log(f"sign-in flood    {results['sign_in_flood']}")
    finally:
        proc.terminate()
        proc.wait(30)

    quiet_p95 = results["quiet"]["p95_ms"]
    for name in ("sheet_bombs", "sign_in_flood"):
        results[name]["p95_ratio_to_quiet"] = round(results[name]["p95_ms"] / quiet_p95, 2)
        log(f"{name}: p95 {results[name]['p95_ratio_to_quiet']}x the quiet p95")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
