"""Acceptance: 8 processes share one tenant's bucket through the Redis limiter against a real
oktasim with short windows; they cause at most a handful of 429s and use at least 90 % of the rate
their share allows, window by window (the windows named by X-Rate-Limit-Reset)."""

from __future__ import annotations

import collections
import multiprocessing
import time
import uuid

import httpx
import pytest
import redis

from tests.support.sim import SIM_TOKEN
from worker.okta.ratelimit import LimiterConfig, Permit, RedisLimiter

WINDOW = 3.0          # seconds per simulated rate-limit window
SCALE = 0.2           # /api/v1/users: 600/min x 0.2 = 120 per window, 60 for one token (Okta's 50 %)
PROCESSES = 8
WINDOWS = 3


def drive(sim_url: str, redis_url: str, prefix: str, start, stop_at: float, windows: int, out) -> None:
    """One worker process: ask the limiter, send, report back; never sends without a Permit.
    Stops once some process saw window number windows+1 begin (so the first `windows` are complete)."""
    r = redis.Redis.from_url(redis_url)
    limiter = RedisLimiter(r, LimiterConfig(), prefix=prefix)
    seen: list[tuple[int, int, float]] = []
    with httpx.Client(base_url=sim_url, headers={"Authorization": f"SSWS {SIM_TOKEN}"}, timeout=10) as client:
        start.wait()
        while time.time() < stop_at and r.scard(f"{prefix}:test-windows") <= windows:
            got = limiter.acquire("acme", "GET", "/api/v1/users")
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
            r.sadd(f"{prefix}:test-windows", resp.headers["X-Rate-Limit-Reset"])
    out.put(seen)


def run_load(sim, redis_url: str, window: float = WINDOW, windows: int = WINDOWS,
             processes: int = PROCESSES) -> list[tuple[int, int, float]]:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(processes + 1), ctx.Queue()  # released once every process is ready
    prefix = f"accept:{uuid.uuid4().hex[:8]}"
    stop_at = time.time() + 1.0 + windows * (window + 2.0)  # a bound; they stop after `windows`
    procs = [ctx.Process(target=drive, args=(sim.url, redis_url, prefix, start, stop_at, windows, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    start.wait(timeout=60)
    results = [r for _ in procs for r in out.get(timeout=windows * window + 30)]
    for p in procs:
        p.join(10)
    return results


@pytest.mark.slow
def test_eight_processes_use_their_share_with_at_most_a_handful_of_429s(oktasim, redis_url):
    sim = oktasim(["--users", "20", "--window-seconds", str(WINDOW), "--rate-limit-scale", str(SCALE)])
    limit = sim.stats()["buckets"]["/api/v1/users"]["limit"]
    assert limit == 60
    results = run_load(sim, redis_url)

    ok_by_window = collections.Counter(reset for reset, status, _ in results if status == 200)
    throttled = sum(1 for _, status, _ in results if status == 429)
    first = sorted(ok_by_window)[:WINDOWS]
    allowed = int(LimiterConfig().shares["sync"] * limit)  # 48 per window
    used = [ok_by_window[w] for w in first]
    # For the record (not asserted): the same against elapsed time, first request to the next window.
    start = min(t for _, _, t in results)
    nxt = [t for reset, _, t in results if reset > first[-1]]
    elapsed = min(nxt) - start if nxt else max(t for _, _, t in results) - start
    print(f"per window {used} of {allowed} allowed; 429s: {throttled}; "
          f"over time {sum(used) / (allowed * elapsed / WINDOW):.0%} ({elapsed:.2f}s for {WINDOWS} windows)")
    assert len(first) == WINDOWS
    assert throttled <= 3, f"{throttled} requests throttled"
    assert all(n <= limit for n in used)  # Okta would have refused the rest anyway
    assert sum(used) >= 0.9 * allowed * WINDOWS, f"used {used} of {allowed} per window"
    stats = sim.stats()["buckets"]["/api/v1/users"]
    assert stats["throttled"] == throttled


def hammer(sim_url: str, redis_url: str, prefix: str, start, stop_at: float, out) -> None:
    """Send as fast as the limiter allows; report (time sent, status, concurrency signal?)."""
    limiter = RedisLimiter(redis.Redis.from_url(redis_url), LimiterConfig(max_in_flight=8), prefix=prefix)
    seen: list[tuple[float, int, bool]] = []
    with httpx.Client(base_url=sim_url, headers={"Authorization": f"SSWS {SIM_TOKEN}"}, timeout=10) as client:
        start.wait()
        while time.time() < stop_at:
            got = limiter.acquire("acme", "GET", "/api/v1/groups")
            if not isinstance(got, Permit):
                time.sleep(got.seconds)
                continue
            sent = time.time()
            resp = client.get("/api/v1/groups", params={"limit": 1})
            limiter.release(got, resp.status_code, resp.headers)
            seen.append((sent, resp.status_code, resp.headers["X-Rate-Limit-Limit"] == "0"))
    out.put(seen)


@pytest.mark.slow
def test_okta_concurrency_signal_brings_requests_in_flight_under_okta_limit(oktasim, redis_url):
    """oktasim admits 3 requests in flight (100 ms each); 8 processes start with a cap of 8. The
    first concurrency 429s lower the cap, after which Okta's gate is no longer hit."""
    sim = oktasim(["--users", "5", "--groups", "5", "--concurrency-limit", "3", "--latency-ms", "100",
                   "--rate-limit-scale", "50"])
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    prefix = f"conc:{uuid.uuid4().hex[:8]}"
    stop_at = time.time() + 1.0 + 4.0
    procs = [ctx.Process(target=hammer, args=(sim.url, redis_url, prefix, start, stop_at, out)) for _ in range(8)]
    for p in procs:
        p.start()
    time.sleep(max(stop_at - 4.0 - time.time(), 0))
    start.set()
    results = sorted(r for _ in procs for r in out.get(timeout=60))
    for p in procs:
        p.join(10)
    t0 = results[0][0]
    signals = [t - t0 for t, status, conc in results if status == 429 and conc]
    ok = sum(1 for _, status, _ in results if status == 200)
    print(f"{ok} ok, concurrency 429s at {[round(s, 2) for s in signals]}")
    assert sim.stats()["concurrency_throttled"] == len(signals)
    assert len(signals) <= 10                 # the first burst, then the cap fits under Okta's gate
    assert all(s < 2.0 for s in signals)      # none in the second half of the run
    assert ok >= 20                           # and requests kept flowing (1-2 in flight x 100 ms)
