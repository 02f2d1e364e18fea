"""Rate limiter cost and utilization.

cost: Redis round trips and microseconds per acquire and per release (RedisLimiter, counted by a
      connection that counts what it sends), and the in-process MemoryLimiter for comparison.
load: P processes share one tenant's bucket through RedisLimiter against a real oktasim with short
      windows; reports the share of the allowed rate (share x X-Rate-Limit-Limit) used, per window and
      over elapsed time, the 429s, and limiter round trips per request sent.

    .venv/bin/python bench/limiter_bench.py --redis-url redis://127.0.0.1:6379/11 cost load
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import re
import subprocess
import sys
import time
import uuid
from email.utils import formatdate

import httpx
import redis

from worker.okta.ratelimit import LimiterConfig, MemoryLimiter, Permit, RedisLimiter

SIM_TOKEN = "00sim-super-admin-token-0000000000000000000"


class CountingConnection(redis.Connection):
    """Counts writes to the socket: one per command, one per pipeline (each is one round trip)."""

    sent = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sent += 1
        return super().send_packed_command(command, check_health)


def counting_client(url: str) -> redis.Redis:
    pool = redis.ConnectionPool.from_url(url, connection_class=CountingConnection)
    return redis.Redis(connection_pool=pool)


def bench_cost(url: str, n: int) -> None:
    cfg = LimiterConfig(shares={"sync": 1.0}, initial_limit=10**9, max_in_flight=10**6)
    headers = {"X-Rate-Limit-Limit": str(10**9), "X-Rate-Limit-Remaining": str(10**9 - 1),
               "X-Rate-Limit-Reset": str(int(time.time()) + 60), "Date": formatdate(usegmt=True)}
    client = counting_client(url)
    client.ping()
    t = time.perf_counter()
    for _ in range(n):
        client.ping()
    ping_us = (time.perf_counter() - t) / n * 1e6  # baseline: one bare round trip on this machine now
    print(f"cost[baseline]: Redis PING {ping_us:.0f} us per round trip")
    for name, limiter in (("redis", RedisLimiter(client, cfg, prefix=f"bench:{uuid.uuid4().hex[:8]}")),
                          ("memory", MemoryLimiter(cfg))):
        p = limiter.acquire("acme", "GET", "/api/v1/users")  # warm-up (loads the script once)
        limiter.release(p, 200, headers)
        CountingConnection.sent = 0
        permits, acq_s, rel_s = 0, 0.0, 0.0
        for _ in range(n):
            t = time.perf_counter()
            got = limiter.acquire("acme", "GET", "/api/v1/users")
            acq_s += time.perf_counter() - t
            if isinstance(got, Permit):
                permits += 1
                t = time.perf_counter()
                limiter.release(got, 200, headers)
                rel_s += time.perf_counter() - t
        trips = CountingConnection.sent
        print(f"cost[{name}]: {n} acquire ({permits} permits) + {permits} release: "
              f"{trips / n:.2f} round trips per acquire+release, "
              f"acquire {acq_s / n * 1e6:.0f} us ({acq_s / n * 1e6 / ping_us:.1f}x PING), "
              f"release {rel_s / max(permits, 1) * 1e6:.0f} us ({rel_s / max(permits, 1) * 1e6 / ping_us:.1f}x PING)")
    client.close()


def drive(sim_url: str, redis_url: str, prefix: str, start, stop_at: float, out) -> None:
    r = counting_client(redis_url)
    limiter = RedisLimiter(r, LimiterConfig(), prefix=prefix)
    seen: list[tuple[int, int, float]] = []
    acquires = 0
    with httpx.Client(base_url=sim_url, headers={"Authorization": f"SSWS {SIM_TOKEN}"}, timeout=10) as client:
        start.wait()
        CountingConnection.sent = 0
        while time.time() < stop_at:
            got = limiter.acquire("acme", "GET", "/api/v1/users")
            acquires += 1
            if not isinstance(got, Permit):
                time.sleep(min(got.seconds, max(stop_at - time.time(), 0)))
                continue
            sent = time.time()
            try:
                resp = client.get("/api/v1/users", params={"limit": 1})
            except httpx.HTTPError:
                limiter.release(got, None, {})
                continue
            limiter.release(got, resp.status_code, resp.headers)
            seen.append((int(resp.headers["X-Rate-Limit-Reset"]), resp.status_code, sent))
    out.put((seen, acquires, CountingConnection.sent))


def bench_load(redis_url: str, processes: int, window: float, windows: int, scale: float) -> None:
    sim = subprocess.Popen([sys.executable, "-m", "oktasim", "--port", "0", "--users", "20",
                            "--window-seconds", str(window), "--rate-limit-scale", str(scale)],
                           stdout=subprocess.PIPE, text=True)
    try:
        url = re.match(r"oktasim listening on (\S+)", sim.stdout.readline()).group(1)
        limit = httpx.get(f"{url}/__sim/stats").json()["buckets"]["/api/v1/users"]["limit"]
        ctx = multiprocessing.get_context("fork")
        start, out = ctx.Event(), ctx.Queue()
        prefix = f"bench:{uuid.uuid4().hex[:8]}"
        stop_at = time.time() + 1.0 + windows * window * 1.5
        procs = [ctx.Process(target=drive, args=(url, redis_url, prefix, start, stop_at, out))
                 for _ in range(processes)]
        for p in procs:
            p.start()
        time.sleep(1.0)
        start.set()
        parts = [out.get(timeout=windows * window * 2 + 30) for _ in procs]
        for p in procs:
            p.join(10)
        stats = httpx.get(f"{url}/__sim/stats").json()["buckets"]["/api/v1/users"]
    finally:
        sim.terminate()
        sim.wait(5)
    results = [r for seen, _, _ in parts for r in seen]
    acquires = sum(a for _, a, _ in parts)
    trips = sum(t for _, _, t in parts)
    allowed = int(LimiterConfig().shares["sync"] * limit)
    ok = collections.Counter(reset for reset, status, _ in results if status == 200)
    full = sorted(ok)[:windows]  # windows open with the first request, so the first one is whole
    used = [ok[w] for w in full]
    t0 = min(t for _, _, t in results)
    later = [t for reset, _, t in results if reset > full[-1]]
    elapsed = (min(later) if later else max(t for _, _, t in results)) - t0
    throttled = sum(1 for _, s, _ in results if s == 429)
    print(f"load: {processes} processes, window {window:g}s, limit {limit}/window, sync share "
          f"{LimiterConfig().shares['sync']:g} -> {allowed} allowed per window")
    print(f"load: per window {used}: {sum(used) / (allowed * len(used)):.1%} of allowed; over elapsed time "
          f"{sum(used) / (allowed * elapsed / window):.1%} ({elapsed:.2f}s for {len(used)} windows)")
    print(f"load: 429s {throttled} of {len(results)} requests (oktasim counted {stats['throttled']} throttled "
          f"of {stats['requests']}); limiter calls per request sent {acquires / len(results):.2f} acquire "
          f"(Waits included), {trips / len(results):.2f} Redis round trips")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="*", default=["cost", "load"], choices=["cost", "load"])
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/11",
                    help="a Redis db no other job flushes while this runs (default db 11)")
    ap.add_argument("--n", type=int, default=5000, help="acquire calls in the cost part")
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--window", type=float, default=5.0, help="oktasim --window-seconds")
    ap.add_argument("--windows", type=int, default=6, help="windows to measure")
    ap.add_argument("--scale", type=float, default=0.2, help="oktasim --rate-limit-scale")
    args = ap.parse_args()
    if "cost" in args.parts:
        bench_cost(args.redis_url, args.n)
    if "load" in args.parts:
        bench_load(args.redis_url, args.processes, args.window, args.windows, args.scale)


if __name__ == "__main__":
    main()
