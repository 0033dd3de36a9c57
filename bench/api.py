"""The API under attack: how much slower a signed-in person's reads get, as a ratio to the same
reads on a quiet API, measured in one run.

Serves `wastepilot api` as deployed (its own process, default settings) on a fresh database,
then times a signed-in officer's `GET /api/v1/workshops`, one after another:
- quiet: nothing else happening (the baseline);
- sheet bombs: while the five workbooks of bench/attacks.py (declared 17 billion cells,
  shared strings that unpack to 60 MB, ...) are posted to the attendance import at once,
  round after round; also how long each bomb took to be refused;
- sign-in flood: while 16 clients (in another process) post wrong passwords for made-up
  accounts;
- idle connections and a flood: while 5,000 connections never finish a request and 80 clients
  (in another process) flood the sign-in;
- signed-in load: 200 people at once for 60 s, each looping over pages (session cookie) and API
  reads (bearer token), with 50 more people signing in at the same moment half-way (each from
  an address of its own): the reads' p95 while the
  sign-ins are checked against their p95 the rest of the time, and how many answers were 503.

The tests assert what happens under the same attacks (every read answered, none waiting for
ever: tests/api/test_hardening.py); the speeds are here (docs/benchmarks.md). The last line
is one JSON object.

Run: `.venv/bin/python bench/api.py` (after `wastepilot services up`).
"""

from __future__ import annotations

import argparse
import asyncio
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
from core.registry import Household, add_households
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


def load(url: str, base: str, token: str, seconds: float) -> dict[str, Any]:
    """200 people for ``seconds`` with 50 sign-ins half-way (bench/attacks.py)."""
    ref = "HH-BENCH-1"
    people = [(f"bench-person-{i}", PASSWORD) for i in range(50)]
    with connect(url) as conn:
        add_households(conn, [Household(ref)])
        for name, password in people:
            auth.add_user(conn, name, "analyst", password)
        session = auth.create_token(conn, "bench-admin", name="bench session")[1]
        conn.commit()
    answers, (start, end) = asyncio.run(
        attacks.signed_in_load(
            base,
            session=session,
            token=token,
            pages=["/analysts", "/officers/workshops", f"/analysts/households/{ref}"],
            reads=["/api/v1/households", f"/api/v1/households/{ref}", "/api/v1/kpis"],
            clients=200,
            seconds=seconds,
            sign_ins=people,
        )
    )
    reads = [a for a in answers if a.kind == "read" and a.status == 200]
    burst = [a.seconds for a in reads if start <= a.started <= end]
    rest = [a.seconds for a in reads if not start <= a.started <= end]
    out: dict[str, Any] = {
        "answers": len(answers),
        "per_second": round(len(answers) / seconds, 1),
        "busy_503": sum(1 for a in answers if a.status == 503),
        "other_errors": sum(1 for a in answers if a.status not in (200, 503)),
        "max_s": round(max(a.seconds for a in answers), 2),
        "reads_p95_ms": round(attacks.p95(rest) * 1000, 1) if rest else None,
        "reads_p95_during_sign_ins_ms": round(attacks.p95(burst) * 1000, 1) if burst else None,
        "sign_ins": {str(code): n for code, n in _counts(answers, "sign-in").items()},
    }
    if burst and rest:
        out["p95_ratio_during_sign_ins"] = round(attacks.p95(burst) / attacks.p95(rest), 2)
    return out


def _counts(answers: list[attacks.Answer], kind: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for a in answers:
        if a.kind == kind:
            counts[a.status] = counts.get(a.status, 0) + 1
    return counts


def reads_during_flood(
    base: str, listing: str, headers: dict[str, str], clients: int, args: argparse.Namespace
) -> dict[str, Any]:
    """The reads' figures while ``clients`` flood the sign-in from another process."""
    flood = multiprocessing.get_context("spawn").Process(
        target=_flood, args=(base, clients, args.flood_seconds)
    )
    flood.start()
    time.sleep(1)  # the flood under way
    during: list[tuple[int, float]] = []
    while flood.is_alive() and len(during) < 10_000:
        during += attacks.timed_gets(listing, headers, 20)
    flood.join()
    return figures(during)


def _flood(base: str, clients: int, seconds: float) -> None:
    with attacks.sign_in_flood(base, clients):
        time.sleep(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=300, help="reads in the quiet baseline")
    ap.add_argument("--bomb-rounds", type=int, default=5)
    ap.add_argument("--flood-seconds", type=float, default=20)
    ap.add_argument("--idle", type=int, default=5_000, help="idle connections")
    ap.add_argument("--load-seconds", type=float, default=60)
    args = ap.parse_args()

    url = common.fresh_database(common.settings().db_owner_url(), DB)
    prepare_database(Settings(database_url=url))
    with connect(url) as conn:
        auth.add_user(conn, "bench-officer", "officer", PASSWORD)
        auth.add_user(conn, "bench-admin", "admin", PASSWORD)
        _, token = auth.create_token(conn, "bench-admin", name="bench")
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

        results["sign_in_flood"] = reads_during_flood(base, listing, headers, 16, args)
        log(f"sign-in flood    {results['sign_in_flood']}")

        attacks.open_files_needed(args.idle + 500)
        with attacks.idle_connections(base, args.idle):
            results["idle_and_flood"] = reads_during_flood(base, listing, headers, 80, args)
        log(f"idle + flood     {results['idle_and_flood']}")

        results["signed_in_load"] = load(url, base, token, args.load_seconds)
        log(f"signed-in load   {results['signed_in_load']}")
    finally:
        proc.terminate()
        proc.wait(30)

    quiet_p95 = results["quiet"]["p95_ms"]
    for name in ("sheet_bombs", "sign_in_flood", "idle_and_flood"):
        results[name]["p95_ratio_to_quiet"] = round(results[name]["p95_ms"] / quiet_p95, 2)
        log(f"{name}: p95 {results[name]['p95_ratio_to_quiet']}x the quiet p95")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
