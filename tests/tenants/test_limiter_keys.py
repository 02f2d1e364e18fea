"""Many tenants, few Redis keys: an idle tenant's rate-limit keys expire, and `tenant remove`
deletes the removed tenant's at once (real Redis)."""

from __future__ import annotations

import time

import redis

from worker.okta.ratelimit import LimiterConfig, Permit, RedisLimiter
from worker.store.tenants import create_tenant

HEADERS = {"X-Rate-Limit-Limit": "600", "X-Rate-Limit-Remaining": "599", "X-Rate-Limit-Reset": str(int(time.time()) + 60)}


def use(limiter: RedisLimiter, tenant: str, status: int = 200, headers: dict | None = None) -> None:
    got = limiter.acquire(tenant, "GET", "/api/v1/users")
    assert isinstance(got, Permit), got
    limiter.release(got, status, HEADERS if headers is None else headers)


def keys_of(client: redis.Redis, tenant: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"oktasync:rl:{{{tenant}}}:*"))


def test_every_key_expires_after_the_last_use(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiter = RedisLimiter(client)
    use(limiter, "7")
    use(limiter, "7", status=200, headers={"X-Rate-Limit-Limit": "0", "X-Rate-Limit-Remaining": "0",
                                           "X-Rate-Limit-Reset": str(int(time.time()) + 60)})  # tenant hash too
    assert isinstance(limiter.acquire("7", "GET", "/api/v1/groups"), Permit)  # a lease still held
    keys = keys_of(client, "7")
    assert {k.rsplit(b":", 1)[-1] for k in keys} >= {b"t", b"inflight"} and any(b":b:" in k for k in keys)
    ttl = limiter.config.key_ttl_seconds
    assert 300 < ttl <= 900  # past a 5-minute window and pause; not the 24 h it was
    for key in keys:
        assert 0 < client.pttl(key) <= ttl * 1000, key


def test_an_idle_tenants_keys_are_gone_after_their_ttl(redis_url):
    client = redis.Redis.from_url(redis_url)
    # Every window, pause and recovery a key could remember kept short, so expiry can be watched.
    cfg = LimiterConfig(max_reset_seconds=0.5, initial_window_seconds=0.5, pause_margin_seconds=0,
                        missing_headers_pause_seconds=0.5, concurrency_recovery_seconds=0.05, idle_key_seconds=0.2)
    limiter = RedisLimiter(client, cfg)
    use(limiter, "8", status=429, headers={})  # a 429 without headers pauses the bucket
    use(limiter, "9")
    assert keys_of(client, "8") and keys_of(client, "9")
    deadline = time.monotonic() + 5
    while (keys_of(client, "8") or keys_of(client, "9")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert keys_of(client, "8") == [] and keys_of(client, "9") == []


def test_tenant_remove_deletes_its_rate_limit_keys(cli, sessions, redis_url):
    with sessions() as s:
        gone, kept = (create_tenant(s, n, f"{n}.okta.com", {"api_token": "00rl-token"}).id for n in ("gone", "kept"))
        s.commit()
    client = redis.Redis.from_url(redis_url)
    limiter = RedisLimiter(client)
    for tenant_id in (gone, kept):
        use(limiter, str(tenant_id))
        limiter.acquire(str(tenant_id), "GET", "/api/v1/groups")  # a second bucket, its lease still held
    assert len(keys_of(client, str(gone))) == 3  # two buckets and the in-flight leases
    got = cli("tenant", "remove", "gone", "--yes", OKTASYNC_REDIS_URL=redis_url)
    assert got.exit_code == 0 and "3 rate-limit keys deleted" in got.stdout, got.output
    assert keys_of(client, str(gone)) == [] and len(keys_of(client, str(kept))) == 3
    # Redis down: the tenant is removed all the same, its keys left to expire.
    got = cli("tenant", "remove", "kept", "--yes", OKTASYNC_REDIS_URL="redis://127.0.0.1:1/0")
    assert got.exit_code == 0 and "rate-limit keys left to expire (ConnectionError" in got.stdout, got.output
