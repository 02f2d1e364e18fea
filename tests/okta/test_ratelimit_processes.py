"""The Redis limiter across real processes: a kill -9'd holder's slot comes back after its lease,
and the in-flight cap holds while several processes compete for it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid

import redis

from worker.okta.ratelimit import LimiterConfig, Permit, RedisLimiter

T0 = 1_700_000_000.0
USERS = ("GET", "/api/v1/users")


def fast_config(**kw) -> LimiterConfig:
    """Rate out of the way (a huge guessed limit): the in-flight cap is what binds."""
    return LimiterConfig(**{"shares": {"sync": 1.0}, "initial_limit": 1_000_000, **kw})


def hold_a_permit(redis_url: str, prefix: str, cfg: LimiterConfig, clock_at: float | None, out) -> None:
    limiter = RedisLimiter(redis.Redis.from_url(redis_url), cfg, prefix=prefix,
                           clock=(lambda: clock_at) if clock_at is not None else None)
    got = limiter.acquire("acme", *USERS)
    out.put(repr(got))
    time.sleep(600)  # never releases: killed by the test


def start_holder(redis_url: str, prefix: str, cfg: LimiterConfig, clock_at: float | None):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    proc = ctx.Process(target=hold_a_permit, args=(redis_url, prefix, cfg, clock_at, out))
    proc.start()
    got = out.get(timeout=30)
    assert got.startswith("Permit("), got
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    return proc


def test_a_killed_process_slot_comes_back_after_the_lease(redis_url):
    """Deterministic: both processes read the same injected time."""
    cfg = fast_config(max_in_flight=1, lease_seconds=5.0)
    prefix = f"kill:{uuid.uuid4().hex[:8]}"
    start_holder(redis_url, prefix, cfg, T0)
    now = [T0 + 1.0]
    limiter = RedisLimiter(redis.Redis.from_url(redis_url), cfg, prefix=prefix, clock=lambda: now[0])
    assert limiter.in_flight("acme") == 1
    got = limiter.acquire("acme", *USERS)
    assert got.reason == "in-flight"
    now[0] = T0 + 4.99
    assert limiter.acquire("acme", *USERS).reason == "in-flight"
    now[0] = T0 + 5.01
    assert isinstance(limiter.acquire("acme", *USERS), Permit)


def test_a_killed_process_slot_comes_back_on_redis_time(redis_url):
    """The same on the production clock (Redis TIME), with a short lease."""
    cfg = fast_config(max_in_flight=1, lease_seconds=1.0)
    prefix = f"kill:{uuid.uuid4().hex[:8]}"
    start_holder(redis_url, prefix, cfg, None)
    limiter = RedisLimiter(redis.Redis.from_url(redis_url), cfg, prefix=prefix)
    got = limiter.acquire("acme", *USERS)
    if not isinstance(got, Permit):  # (on a very slow machine the lease may already be over)
        assert got.reason == "in-flight" and got.seconds <= 0.05
    time.sleep(1.1)
    assert isinstance(limiter.acquire("acme", *USERS), Permit)


def compete(redis_url: str, prefix: str, cfg: LimiterConfig, rounds: int, start, out) -> None:
    r = redis.Redis.from_url(redis_url)
    limiter = RedisLimiter(r, cfg, prefix=prefix)
    most = 0
    start.wait()
    for _ in range(rounds):
        while True:
            got = limiter.acquire("acme", *USERS)
            if isinstance(got, Permit):
                break
            time.sleep(got.seconds)
        # Count holders outside the limiter: a plain counter, incremented while holding.
        most = max(most, r.incr(f"{prefix}:holders"))
        time.sleep(0.02)
        r.decr(f"{prefix}:holders")
        limiter.release(got, 200, {})
    out.put(most)


def test_the_in_flight_cap_holds_under_contention_from_several_processes(redis_url):
    cfg = fast_config(max_in_flight=3, lease_seconds=30.0)
    prefix = f"cont:{uuid.uuid4().hex[:8]}"
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=compete, args=(redis_url, prefix, cfg, 15, start, out)) for _ in range(6)]
    for p in procs:
        p.start()
    start.set()
    most = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    assert max(most) <= 3, most   # never more than the cap at once
    assert max(most) == 3, most   # and the cap was actually reached (6 processes wanting in)
    assert RedisLimiter(redis.Redis.from_url(redis_url), cfg, prefix=prefix).in_flight("acme") == 0
