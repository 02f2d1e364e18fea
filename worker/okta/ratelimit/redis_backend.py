"""Redis backend: limiter.lua run atomically, one round trip per acquire and one per release."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from importlib import resources

import redis

from worker.okta.ratelimit.buckets import okta_bucket
from worker.okta.ratelimit.common import check_tenant, new_lease
from worker.okta.ratelimit.headers import observe
from worker.okta.ratelimit.types import LimiterConfig, Permit, Wait

_LUA = resources.files("worker.okta.ratelimit").joinpath("limiter.lua").read_text()


def _glob_escape(text: str) -> str:
    """`text` matched literally in a SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisLimiter:
    """Limiter shared by every process and machine using the same Redis.

    Keys: <prefix>:{<tenant>}:b:<bucket>, <prefix>:{<tenant>}:t, <prefix>:{<tenant>}:inflight; the
    {tenant} hash tag keeps one tenant's keys in one Redis Cluster slot. Every write renews their
    expiry (config.key_ttl_seconds), so an idle tenant leaves none behind; forget() drops them at
    once. Time is Redis TIME unless a clock is given (tests)."""

    def __init__(self, client: redis.Redis, config: LimiterConfig | None = None, prefix: str = "oktasync:rl",
                 clock: Callable[[], float] | None = None):
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"RedisLimiter prefix must be non-empty and without braces, got {prefix!r}")
        self.client = client
        self.config = config or LimiterConfig()
        self.prefix = prefix
        self._clock = clock
        self._script = client.register_script(_LUA)

    def _keys(self, tenant: str, bucket: str) -> list[str]:
        base = f"{self.prefix}:{{{tenant}}}"
        return [f"{base}:b:{bucket}", f"{base}:t", f"{base}:inflight"]

    def _now_and_ttl(self) -> list[object]:
        now = "" if self._clock is None else repr(float(self._clock()))
        return [now, int(self.config.key_ttl_seconds * 1000)]

    def acquire(self, tenant: str, method: str, path: str, use: str = "sync") -> Permit | Wait:
        check_tenant(tenant)
        share = self.config.share(use)
        bucket = okta_bucket(method, path)
        lease = new_lease()
        c = self.config
        reply = self._script(keys=self._keys(tenant, bucket), args=[
            "acquire", *self._now_and_ttl(), use, repr(share), c.max_in_flight, repr(float(c.lease_seconds)), lease,
            c.initial_limit, repr(float(c.initial_window_seconds)), repr(float(c.pace_ahead_seconds)),
            repr(float(c.unknown_wait_seconds)), repr(float(c.in_flight_wait_seconds)),
            repr(float(c.concurrency_recovery_seconds)), c.end_probes, repr(float(c.burst_fraction)),
        ])
        if reply[0] == b"permit":
            return Permit(tenant, bucket, use, lease)
        return Wait(float(reply[1]), reply[2].decode())

    def release(self, permit: Permit, status: int | None, headers: Mapping[str, str]) -> None:
        c = self.config
        # Without a Date header the worker's clock stands in for Okta's (Redis TIME would cost a trip).
        obs = observe(headers or {}, c.max_reset_seconds, self._clock or time.time) if status is not None else None
        kind = "none" if status is None else ("noheaders" if obs is None else "headers")
        args: list[object] = [
            "release", *self._now_and_ttl(), permit.lease, kind, status if status is not None else 0, c.max_in_flight,
            repr(float(c.concurrency_recovery_seconds)), repr(float(c.lease_seconds)),
            repr(float(c.pause_margin_seconds)), repr(float(c.missing_headers_pause_seconds)),
        ]
        if obs is not None:
            args += [obs.limit, obs.remaining, obs.reset, repr(float(obs.seconds))]
        self._script(keys=self._keys(permit.tenant, permit.bucket), args=args)

    def forget(self, tenant: str) -> int:
        """Delete every key of `tenant` (a removed tenant); returns how many there were."""
        check_tenant(tenant)
        keys = list(self.client.scan_iter(match=_glob_escape(f"{self.prefix}:{{{tenant}}}:") + "*", count=1000))
        return int(self.client.delete(*keys)) if keys else 0

    def in_flight(self, tenant: str) -> int:
        """Leases currently held (expired ones included until the next acquire sweeps them)."""
        check_tenant(tenant)
        return int(self.client.zcard(f"{self.prefix}:{{{tenant}}}:inflight"))
