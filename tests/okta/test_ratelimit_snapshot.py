"""The in-process limiter's snapshot/restore: what the embedded mode keeps in the sync file between
runs, so a run minutes later starts from Okta's last answers as a worker does from Redis."""

from __future__ import annotations

from tests.okta.test_ratelimit_backends import USERS, Clock, learn, take
from worker.okta.ratelimit import LimiterConfig, MemoryLimiter, Permit, Wait

GROUPS = ("GET", "/api/v1/groups/00g1/users")


def answers(lim: MemoryLimiter, clock: Clock, n: int) -> list[object]:
    """n acquires a second apart, alternating two buckets, as (kind, seconds, reason) tuples."""
    out: list[object] = []
    for i in range(n):
        got = lim.acquire("t1", *(USERS if i % 2 else GROUPS))
        out.append(("permit",) if isinstance(got, Permit) else (got.seconds, got.reason))
        clock.advance(1.0)
    return out


def test_a_restored_limiter_answers_as_the_one_it_was_taken_from():
    clock = Clock()
    first = MemoryLimiter(LimiterConfig(), clock=clock)
    learn(first, clock, limit=600, remaining=590, window=40)
    learn(first, clock, limit=100, remaining=3, window=30, req=GROUPS)  # nearly spent: must pace
    snap = first.snapshot("t1")
    clock.advance(5.0)  # the next process starts a little later
    later = MemoryLimiter(LimiterConfig(), clock=Clock(clock()))
    assert later.restore("t1", snap)
    assert answers(later, Clock(clock()), 20) == answers(first, Clock(clock()), 20)
    # ... whereas a limiter that learned nothing waits for Okta's first answer on each bucket
    fresh = MemoryLimiter(LimiterConfig(), clock=clock)
    assert isinstance(fresh.acquire("t1", *USERS), Permit)
    assert isinstance(fresh.acquire("t1", *USERS), Wait)
    again = MemoryLimiter(LimiterConfig(), clock=clock)
    assert again.restore("t1", snap)
    assert isinstance(again.acquire("t1", *USERS), Permit) and isinstance(again.acquire("t1", *USERS), Permit)


def test_a_snapshot_older_than_redis_would_keep_the_state_is_not_taken_up():
    clock = Clock()
    first = MemoryLimiter(LimiterConfig(), clock=clock)
    learn(first, clock, limit=600, remaining=590, window=40)
    snap = first.snapshot("t1")
    clock.advance(LimiterConfig().key_ttl_seconds + 1)
    later = MemoryLimiter(LimiterConfig(), clock=clock)
    assert not later.restore("t1", snap)
    take(later, clock)
    assert isinstance(later.acquire("t1", *USERS), Wait)  # back to waiting for a first answer


def test_no_snapshot_or_a_damaged_one_starts_from_nothing():
    clock = Clock()
    lim = MemoryLimiter(LimiterConfig(), clock=clock)
    for bad in (None, {}, {"at": "x", "buckets": {}}, {"at": clock(), "buckets": 7}, []):
        assert not lim.restore("t1", bad)
    assert lim.snapshot("t1")["buckets"] == {}
    take(lim, clock)
    assert isinstance(lim.acquire("t1", *USERS), Wait)
