"""Incremental vs full sync on one org (embedded mode, oktasim).

A full sync into a file; `--changes` random changes (POST /__sim/churn); an incremental sync of
the file; a full sync of the changed org into a fresh file. Prints requests and seconds of each,
the ratios, and whether the incremental view equals the full one (every column).

    .venv/bin/python bench/incremental_bench.py --scale 1 --window 2 --concurrency 16 --changes 50
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sync_bench import TOKEN, start_sim  # noqa: E402


def sync(url: str, file: Path, concurrency: int, full: bool = False):
    from worker.connector import SyncOptions
    from worker.engine.embedded import run_embedded

    t0 = time.monotonic()
    result = run_embedded(url, {"api_token": TOKEN}, SyncOptions(), file=str(file), concurrency=concurrency,
                          full=full)
    if result.state != "succeeded":
        raise SystemExit(f"sync failed: {result.error}")
    return time.monotonic() - t0, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="org size relative to 20k users/2k groups/300 apps")
    p.add_argument("--window", type=float, default=2.0)
    p.add_argument("--latency", default="60")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--changes", type=int, default=50)
    p.add_argument("--seed", type=int, default=5)
    a = p.parse_args()
    from tests.engine.test_incremental import view

    users, groups, apps = int(20000 * a.scale), int(2000 * a.scale), max(3, int(300 * a.scale))
    proc, url = start_sim(users, groups, apps, a.seed, a.window, a.latency)
    try:
        with tempfile.TemporaryDirectory() as d:
            inc, fresh = Path(d) / "inc.db", Path(d) / "full.db"
            t_full, full = sync(url, inc, a.concurrency)
            changed = httpx.post(f"{url}/__sim/churn", json={"changes": a.changes, "seed": a.seed},
                                 timeout=60).json()["applied"]
            time.sleep(1)
            t_inc, incr = sync(url, inc, a.concurrency)
            t_full2, full2 = sync(url, fresh, a.concurrency)
            equal = view(inc) == view(fresh)
    finally:
        proc.kill()
    req_full, req_inc = full2.counts["requests"], incr.counts["requests"]
    print(f"org {users}/{groups}/{apps}, window {a.window:g}s, concurrency {a.concurrency}, {changed} changes")
    print(f"full (before):  {full.counts['requests']} requests, {t_full:.1f}s")
    print(f"incremental:    {req_inc} requests, {t_inc:.1f}s ({incr.kind}: {incr.reason})")
    print(f"full (after):   {req_full} requests, {t_full2:.1f}s")
    print(f"ratios:         requests {req_inc / req_full:.1%}, time {t_inc / t_full2:.1%}; equal to full: {equal}")


if __name__ == "__main__":
    main()
