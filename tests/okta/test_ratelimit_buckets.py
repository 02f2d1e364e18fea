"""Okta's bucket for a request (okta-api.md §4.3-§4.4), header reading, and config checks."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from redis.crc import key_slot

from worker.okta.ratelimit import LimiterConfig, RedisLimiter, okta_bucket
from worker.okta.ratelimit.headers import observe


@pytest.mark.parametrize("method,path,bucket", [
    ("GET", "/api/v1/users", "/api/v1/users"),
    ("POST", "/api/v1/users?activate=true", "/api/v1/users"),
    ("GET", "/api/v1/users/00u1", "GET /api/v1/users/{idOrLogin}"),
    ("get", "/api/v1/users/me/", "GET /api/v1/users/{idOrLogin}"),
    ("POST", "/api/v1/users/00u1", "/api/v1/users/{id}*"),
    ("DELETE", "/api/v1/users/00u1", "/api/v1/users/{id}*"),
    ("POST", "/api/v1/users/00u1/lifecycle/suspend", "/api/v1/users/{id}*"),
    ("GET", "/api/v1/users/00u1/roles", "/api/v1/users/{id}*"),
    ("GET", "/api/v1/groups", "/api/v1/groups*"),
    ("GET", "/api/v1/groups/00g1", "/api/v1/groups/{id}"),
    ("PUT", "/api/v1/groups/00g1", "/api/v1/groups/{id}"),
    ("GET", "/api/v1/groups/00g1/users?limit=200", "/api/v1/groups*"),
    ("PUT", "/api/v1/groups/00g1/users/00u1", "/api/v1/groups*"),
    ("GET", "/api/v1/groups/rules", "/api/v1/groups*"),
    ("GET", "/api/v1/apps", "/api/v1/apps*"),
    ("GET", "/api/v1/apps/0oa1", "/api/v1/apps/{id}"),
    ("GET", "/api/v1/apps/0oa1/users", "/api/v1/apps*"),
    ("DELETE", "/api/v1/apps/0oa1/groups/00g1", "/api/v1/apps*"),
    ("GET", "/api/v1/logs?since=x", "/api/v1/logs"),
    ("GET", "/api/v1/iam/roles", "/api/v1"),
    ("GET", "/api/v1/api-tokens", "/api/v1"),
    ("POST", "/oauth2/v1/token", "/oauth2/v1/token"),
    ("GET", "/oauth2/v1/clients/0oa1", "/oauth2/v1/clients"),
    ("GET", "https://acme.okta.com/api/v1/groups/00g1?expand=stats", "/api/v1/groups/{id}"),
])
def test_okta_bucket(method, path, bucket):
    assert okta_bucket(method, path) == bucket


def test_okta_bucket_names_bad_input():
    with pytest.raises(ValueError, match="HTTP method"):
        okta_bucket("GE T", "/api/v1/users")
    with pytest.raises(ValueError, match="must start with '/'"):
        okta_bucket("GET", "api/v1/users")
    with pytest.raises(ValueError, match="non-empty"):
        okta_bucket("GET", "")


def test_reset_is_measured_from_date_and_repeated_headers_take_the_minimum():
    obs = observe({"x-rate-limit-limit": "600, 600", "X-Rate-Limit-Remaining": "576,575",
                   "X-Rate-Limit-Reset": "1598552424", "Date": "Thu, 27 Aug 2020 18:19:47 GMT"},
                  max_seconds=300, wall=lambda: 0.0)
    assert (obs.limit, obs.remaining, obs.reset) == (600, 575, 1598552424)
    assert obs.seconds == 37.0  # 18:20:24 - 18:19:47, whatever our clock says
    assert not obs.concurrency


def test_headers_edge_cases():
    assert observe({}, max_seconds=300) is None
    assert observe({"X-Rate-Limit-Limit": "x", "X-Rate-Limit-Remaining": "1", "X-Rate-Limit-Reset": "5"},
                   max_seconds=300) is None
    conc = observe({"X-Rate-Limit-Limit": "0", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "100"},
                   max_seconds=300, wall=lambda: 99.5)
    assert conc.concurrency and conc.seconds == 0.5  # no Date: the wall clock stands in
    far = observe({"X-Rate-Limit-Limit": "1", "X-Rate-Limit-Remaining": "1", "X-Rate-Limit-Reset": "99999",
                   "Date": "Thu, 01 Jan 1970 00:00:00 GMT"}, max_seconds=300)
    assert far.seconds == 300  # clamped


@pytest.mark.parametrize("kwargs,message", [
    ({"shares": {"sync": 0.8, "provisioning": 0.3}}, "sum to at most 1"),
    ({"shares": {"sync": 0}}, r"shares\['sync'\] must be in \(0, 1\]"),
    ({"shares": {}}, "at least one use"),
    ({"max_in_flight": 0}, "max_in_flight"),
    ({"lease_seconds": 0}, "lease_seconds"),
    ({"end_probes": -1}, "end_probes"),
])
def test_config_errors_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LimiterConfig(**kwargs)


@pytest.mark.parametrize("tenant", ["acme", "00o1abc:prod", "tenant-with-ü"])
def test_one_tenants_keys_share_a_redis_cluster_slot(tenant):
    """The Lua script touches three keys per call: Redis Cluster needs them in one slot."""
    import redis

    limiter = RedisLimiter(redis.Redis(), LimiterConfig())  # no connection is made
    keys = limiter._keys(tenant, "/api/v1/users") + limiter._keys(tenant, "/api/v1/groups*")
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert all(f"{{{tenant}}}" in k for k in keys)


def test_acquire_within_sleeps_short_waits_and_hands_back_long_ones():
    from worker.okta.ratelimit import MemoryLimiter, Permit, Wait, acquire_within

    now = [1_700_000_000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    lim = MemoryLimiter(LimiterConfig(unknown_wait_seconds=0.25), clock=lambda: now[0])
    first = acquire_within(lim, "t1", "GET", "/api/v1/users", sleep=sleep)
    assert isinstance(first, Permit) and slept == []
    got = acquire_within(lim, "t1", "GET", "/api/v1/users", max_sleep=2.0, max_total=1.0, sleep=sleep)
    assert isinstance(got, Wait) and got.seconds == 0.25  # no answer yet: it kept waiting up to max_total
    assert slept == [0.25, 0.25, 0.25, 0.25]
    lim.release(first, 429, {"X-Rate-Limit-Limit": "10", "X-Rate-Limit-Remaining": "0",
                             "X-Rate-Limit-Reset": str(int(now[0]) + 30),
                             "Date": formatdate(int(now[0]), usegmt=True)})
    got = acquire_within(lim, "t1", "GET", "/api/v1/users", max_sleep=2.0, sleep=sleep)
    assert isinstance(got, Wait) and got.reason == "paused" and got.seconds > 2.0  # re-enqueue instead
    assert len(slept) == 4
