"""Incremental vs full sync on one org (embedded mode, oktasim).

A full sync into a file; `--changes` random changes (POST /__sim/churn); an incremental sync of
the file; a full sync of the changed org into a fresh file. Prints requests and seconds of each,
the ratios, whether the incremental view equals the full one (every column), where each compared
run's time went (planning, its longest lists, page fetches and writes, finalize) and the load.

    .venv/bin/python bench/incremental_bench.py --scale 1 --window 2 --concurrency 16 --changes 50
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sync_bench import TOKEN, start_sim  # noqa: E402


class Phases:
    """Where a run's time goes, from the engine's events: planning (System Log read and the view
    look-ups), each list from its first to its last page, page fetches and store writes summed,
    and finalize."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.at: dict[str, float] = {}
        self.plan = self.finalize = 0.0
        self.lists: dict[str, list[float]] = {}  # kind:parent -> [first page end, last page end, pages]
        self.fetch = self.write = 0.0

    def __call__(self, kind: str, data: dict) -> None:
        now = time.monotonic() - self.t0
        with self.lock:
            self.at.setdefault(kind, now)
            if kind == "run_started":
                self.plan = float(data.get("plan_seconds") or 0)
            elif kind == "run_succeeded":
                self.at["run_succeeded"] = now
                self.finalize = float(data.get("finalize_seconds") or 0)
            elif kind == "page":
                key = f"{data.get('stream')}:{data.get('parent') or ''}"
                span = self.lists.setdefault(key, [now, now, 0])
                span[1], span[2] = now, span[2] + 1
                self.fetch += float(data.get("fetch_seconds") or 0)
                self.write += float(data.get("write_seconds") or 0)

    def report(self, top: int = 5) -> str:
        started = self.at.get("run_started", 0.0)
        longest = sorted(self.lists.items(), key=lambda kv: kv[1][1] - kv[1][0], reverse=True)[:top]
        lines = [f"  planning (log read, look-ups) {self.plan:.2f}s; run started at {started:.2f}s, "
                 f"lists done at {self.at.get('run_finalizing', 0):.2f}s, finalize {self.finalize:.2f}s, "
                 f"succeeded at {self.at.get('run_succeeded', 0):.2f}s",
                 f"  {sum(s[2] for s in self.lists.values()):.0f} pages in {len(self.lists)} lists; "
                 f"page fetches {self.fetch:.1f}s, page writes {self.write:.1f}s (summed over threads)"]
        lines += [f"  list {k or '?'}: {int(s[2])} pages, {s[0]:.2f}s -> {s[1]:.2f}s" for k, s in longest]
        return "\n".join(lines)


def sync(url: str, file: Path, concurrency: int, full: bool = False):
    from worker.connector import SyncOptions
    from worker.engine.embedded import run_embedded

    phases = Phases()
    t0 = time.monotonic()
    result = run_embedded(url, {"api_token": TOKEN}, SyncOptions(), file=str(file), concurrency=concurrency,
                          full=full, on_event=phases)
    if result.state != "succeeded":
        raise SystemExit(f"sync failed: {result.error}")
    return time.monotonic() - t0, result, phases


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="org size relative to 20k users/2k groups/300 apps")
    p.add_argument("--window", type=float, default=2.0)
    p.add_argument("--latency", default="60")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--changes", type=int, default=50)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--pause", type=float, default=1.0,
                   help="seconds between the changes and the incremental run (default 1); give the window "
                        "(e.g. 60) to start it in a fresh rate-limit window, as a scheduled run would, not in "
                        "the one the full sync just spent")
    a = p.parse_args()
    from tests.engine.test_incremental import view

    users, groups, apps = int(20000 * a.scale), int(2000 * a.scale), max(3, int(300 * a.scale))
    proc, url = start_sim(users, groups, apps, a.seed, a.window, a.latency)
    try:
        with tempfile.TemporaryDirectory() as d:
            inc, fresh = Path(d) / "inc.db", Path(d) / "full.db"
            t_full, full, _ = sync(url, inc, a.concurrency)
            changed = httpx.post(f"{url}/__sim/churn", json={"changes": a.changes, "seed": a.seed},
                                 timeout=60).json()["applied"]
            time.sleep(a.pause)
            load = os.getloadavg()[0]
            t_inc, incr, p_inc = sync(url, inc, a.concurrency)
            t_full2, full2, p_full = sync(url, fresh, a.concurrency)
            load = max(load, os.getloadavg()[0])
            equal = view(inc) == view(fresh)
    finally:
        proc.kill()
    req_full, req_inc = full2.counts["requests"], incr.counts["requests"]
    print(f"org {users}/{groups}/{apps}, window {a.window:g}s, concurrency {a.concurrency}, {changed} changes")
    print(f"full (before):  {full.counts['requests']} requests, {t_full:.1f}s")
    print(f"incremental:    {req_inc} requests, {t_inc:.1f}s ({incr.kind}: {incr.reason})")
    print(p_inc.report())
    print(f"full (after):   {req_full} requests, {t_full2:.1f}s")
    print(p_full.report(top=2))
    print(f"ratios:         requests {req_inc / req_full:.1%}, time {t_inc / t_full2:.1%}; equal to full: {equal}")
    print(f"load average (1 min, highest seen around the compared runs): {load:.2f}"
          f"{' - indicative only' if load > 2 else ''}")


if __name__ == "__main__":
    main()
