"""In-process backend (embedded mode): the algorithm of algorithm.py under one lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from worker.okta.ratelimit import algorithm
from worker.okta.ratelimit.buckets import okta_bucket
from worker.okta.ratelimit.common import check_tenant, new_lease
from worker.okta.ratelimit.headers import observe
from worker.okta.ratelimit.types import LimiterConfig, Permit, Wait


class _Tenant:
    __slots__ = ("buckets", "state", "leases")

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, Any]] = {}
        self.state: dict[str, Any] = {}
        self.leases: dict[str, float] = {}


class MemoryLimiter:
    """Thread-safe limiter for one process. clock: seconds, injectable for tests."""

    def __init__(self, config: LimiterConfig | None = None, clock: Callable[[], float] = time.time):
        self.config = config or LimiterConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._tenants: dict[str, _Tenant] = {}

    def acquire(self, tenant: str, method: str, path: str, use: str = "sync") -> Permit | Wait:
        check_tenant(tenant)
        share = self.config.share(use)
        bucket = okta_bucket(method, path)
        lease = new_lease()
        with self._lock:
            t = self._tenants.setdefault(tenant, _Tenant())
            b = t.buckets.setdefault(bucket, {})
            kind, seconds, reason = algorithm.acquire(b, t.state, t.leases, self._clock(), use, share,
                                                      self.config, lease)
        if kind == "permit":
            return Permit(tenant, bucket, use, lease)
        return Wait(seconds, reason)

    def release(self, permit: Permit, status: int | None, headers: Mapping[str, str]) -> None:
        obs = observe(headers or {}, self.config.max_reset_seconds, self._clock) if status is not None else None
        with self._lock:
            t = self._tenants.setdefault(permit.tenant, _Tenant())
            b = t.buckets.setdefault(permit.bucket, {})
            algorithm.release(b, t.state, t.leases, self._clock(), permit.lease, status, obs, self.config)

    def in_flight(self, tenant: str) -> int:
        """Leases currently held (expired ones included until the next acquire sweeps them)."""
        with self._lock:
            t = self._tenants.get(tenant)
            return len(t.leases) if t else 0
