"""`wastepilot services up` on a ready machine: how long it takes beside the CLI's own start.

The README says that on a machine that has everything, `services up` returns in well under a
second; the test checks it installs and changes nothing there (tests/wastepilot/
test_services.py); the time is measured here, against `wastepilot --help` (Python starting
and the CLI importing) timed in the same run. The last line is one JSON object.

Run: `.venv/bin/python bench/services.py` (after `wastepilot services up`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def timed(args: list[str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "wastepilot", *args], capture_output=True, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    timed(["services", "up"], 1)  # whatever was missing is there now
    start = timed(["--help"], args.repeats)
    up = timed(["services", "up"], args.repeats)
    results = {
        "cli_start_median_s": round(statistics.median(start), 3),
        "services_up_median_s": round(statistics.median(up), 3),
        "services_up_max_s": round(max(up), 3),
        "ratio_to_cli_start": round(statistics.median(up) / statistics.median(start), 2),
    }
    print(f"wastepilot --help      median {results['cli_start_median_s']} s")
    print(
        f"wastepilot services up median {results['services_up_median_s']} s, "
        f"max {results['services_up_max_s']} s ({results['ratio_to_cli_start']}x)"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
