"""Rate-limit arithmetic of oktasim.ratelimits with a controlled clock (the HTTP side is in
test_ratelimits_http.py)."""

from __future__ import annotations

import math

import pytest

from oktasim.ratelimits import BUCKETS, RateLimits, bucket_for


class Clock:
    def __init__(self, t: float = 1_800_000_000.25):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(("method", "path", "bucket"), [
    ("GET", "/api/v1/users", "/api/v1/users"),
    ("POST", "/api/v1/users", "/api/v1/users"),
    ("GET", "/api/v1/users?search=status%20pr", "/api/v1/users"),
    ("GET", "/api/v1/users/00u1", "GET /api/v1/users/{idOrLogin}"),
    ("GET", "/api/v1/users/jane@example.com", "GET /api/v1/users/{idOrLogin}"),
    ("POST", "/api/v1/users/00u1", "/api/v1/users/{id}*"),
    ("DELETE", "/api/v1/users/00u1", "/api/v1/users/{id}*"),
    ("POST", "/api/v1/users/00u1/lifecycle/suspend", "/api/v1/users/{id}*"),
    ("GET", "/api/v1/users/00u1/roles", "/api/v1/users/{id}*"),
    ("GET", "/api/v1/groups", "/api/v1/groups*"),
    ("POST", "/api/v1/groups", "/api/v1/groups*"),
    ("GET", "/api/v1/groups/00g1", "/api/v1/groups/{id}"),
    ("PUT", "/api/v1/groups/00g1", "/api/v1/groups/{id}"),
    ("DELETE", "/api/v1/groups/00g1", "/api/v1/groups/{id}"),
    ("GET", "/api/v1/groups/00g1/users", "/api/v1/groups*"),
    ("PUT", "/api/v1/groups/00g1/users/00u1", "/api/v1/groups*"),
    ("GET", "/api/v1/groups/00g1/roles", "/api/v1/groups*"),
    ("GET", "/api/v1/groups/rules", "/api/v1/groups*"),
    ("GET", "/api/v1/apps", "/api/v1/apps*"),
    ("GET", "/api/v1/apps/0oa1", "/api/v1/apps/{id}"),
    ("GET", "/api/v1/apps/0oa1/users", "/api/v1/apps*"),
    ("DELETE", "/api/v1/apps/0oa1/users/00u1", "/api/v1/apps*"),
    ("PUT", "/api/v1/apps/0oa1/groups/00g1", "/api/v1/apps*"),
    ("GET", "/api/v1/logs", "/api/v1/logs"),
    ("GET", "/api/v1/iam/assignees/users", "/api/v1"),
    ("GET", "/api/v1/iam/resource-sets/iam1/bindings", "/api/v1"),
    ("GET", "/api/v1/api-tokens", "/api/v1"),
    ("GET", "/api/v1/org", "/api/v1"),
    ("POST", "/oauth2/v1/token", "/oauth2/v1/token"),
    ("GET", "/oauth2/v1/clients/0oa1", "/oauth2/v1/clients"),
])
def test_bucket_matching(method, path, bucket):
    assert bucket_for(method, path) == bucket


def test_limits_are_half_the_workforce_defaults_and_scale():
    rl = RateLimits()
    expected = {"/api/v1/users": 300, "GET /api/v1/users/{idOrLogin}": 1000, "/api/v1/users/{id}*": 300,
                "/api/v1/groups*": 250, "/api/v1/groups/{id}": 500, "/api/v1/apps*": 50,
                "/api/v1/apps/{id}": 250, "/api/v1": 600, "/oauth2/v1/token": 1000}
    assert {name: rl.limit(name) for name in expected} == expected
    scaled = RateLimits(scale=0.1)
    assert scaled.limit("/api/v1/users") == 30 and scaled.limit("/api/v1/apps*") == 5
    tiny = RateLimits(scale=0.0001)
    assert all(tiny.limit(b.name) == 1 for b in BUCKETS)  # never below one
    assert set(rl.stats()["buckets"]) == {b.name for b in BUCKETS}


def test_window_counts_down_then_throttles_until_reset():
    clock = Clock()
    rl = RateLimits(window_seconds=6, scale=0.1, clock=clock)  # apps* = 10 org-wide, 5 per token
    first = rl.check("GET", "/api/v1/apps", "tokA")
    end = clock.t + 6
    assert first.allowed and first.bucket == "/api/v1/apps*"
    assert first.headers == {"X-Rate-Limit-Limit": "5", "X-Rate-Limit-Remaining": "4",
                             "X-Rate-Limit-Reset": str(math.ceil(end))}
    clock.t += 2.0
    remaining = [rl.check("GET", "/api/v1/apps/0oa1/users", "tokA").headers["X-Rate-Limit-Remaining"]
                 for _ in range(4)]
    assert remaining == ["3", "2", "1", "0"]
    denied = rl.check("GET", "/api/v1/apps", "tokA")
    assert not denied.allowed
    assert denied.headers == {"X-Rate-Limit-Limit": "5", "X-Rate-Limit-Remaining": "0",
                              "X-Rate-Limit-Reset": str(math.ceil(end))}
    # Another bucket and another token are counted separately.
    assert rl.check("GET", "/api/v1/apps/0oa1", "tokA").allowed
    assert rl.check("GET", "/api/v1/apps", "tokB").headers["X-Rate-Limit-Remaining"] == "4"
    # The window ends W seconds after it opened; the next request opens a new one.
    clock.t = end
    again = rl.check("GET", "/api/v1/apps", "tokA")
    assert again.allowed and again.headers["X-Rate-Limit-Remaining"] == "4"
    assert again.headers["X-Rate-Limit-Reset"] == str(math.ceil(end + 6))
    stats = rl.stats()
    assert stats["buckets"]["/api/v1/apps*"] == {"requests": 8, "throttled": 1, "limit": 5}
    assert stats["throttled_total"] == 1 and stats["window_seconds"] == 6.0


def test_org_bucket_binds_when_three_tokens_share_it():
    clock = Clock()
    rl = RateLimits(scale=0.02, clock=clock)  # apps* = 2 org-wide, 1 per token
    assert rl.check("GET", "/api/v1/apps", "a").allowed
    assert rl.check("GET", "/api/v1/apps", "b").allowed
    third = rl.check("GET", "/api/v1/apps", "c")
    assert not third.allowed and third.headers["X-Rate-Limit-Remaining"] == "0"


def test_concurrency_gate_and_stats():
    clock = Clock()
    rl = RateLimits(concurrency_limit=2, clock=clock)
    assert rl.begin() and rl.begin()
    assert not rl.begin()  # third in flight refused, not counted in flight
    assert rl.concurrency_headers() == {"X-Rate-Limit-Limit": "0", "X-Rate-Limit-Remaining": "0",
                                        "X-Rate-Limit-Reset": str(int(clock.t) + 1)}
    rl.end()
    assert rl.begin()
    rl.end()
    rl.end()
    stats = rl.stats()
    assert (stats["max_in_flight"], stats["concurrency_limit"], stats["throttled_total"]) == (2, 2, 1)
    rl.reset_stats()
    assert rl.stats()["throttled_total"] == 0 and rl.stats()["max_in_flight"] == 0


@pytest.mark.parametrize("kwargs", [{"window_seconds": 0}, {"scale": -1}, {"concurrency_limit": 0}])
def test_bad_settings_are_named(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        RateLimits(**kwargs)
