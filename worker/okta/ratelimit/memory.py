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

    def snapshot(self, tenant: str) -> dict[str, Any]:
        """What this limiter knows of `tenant` (its buckets and lowered in-flight cap; not its
        leases or the slots promised to waiters), and when: restore() hands it to a later process."""
        with self._lock:
            t = self._tenants.get(tenant) or _Tenant()
            buckets = {name: {k: v for k, v in b.items() if not k.startswith("resv:")} for name, b in t.buckets.items()}
            return {"at": self._clock(), "buckets": buckets, "tenant": dict(t.state)}

    def restore(self, tenant: str, snapshot: Mapping[str, Any] | None) -> bool:
        """Start `tenant` from a snapshot() an earlier process took, unless it is older than the
        Redis backend keeps the same state (key_ttl_seconds), or not a snapshot: then this limiter
        starts from nothing, as Redis would. True when it was taken up."""
        check_tenant(tenant)
        try:
            age = self._clock() - float(snapshot["at"])  # type: ignore[index]
            buckets = {str(name): dict(b) for name, b in dict(snapshot["buckets"]).items()}  # type: ignore[index]
            state = dict(snapshot.get("tenant") or {})  # type: ignore[union-attr]
        except (TypeError, KeyError, ValueError):
            return False
        if not 0 <= age <= self.config.key_ttl_seconds:
            return False
        t = _Tenant()
        t.buckets, t.state = buckets, state
        with self._lock:
            self._tenants[tenant] = t
        return True

    def in_flight(self, tenant: str) -> int:
        """Leases currently held (expired ones included until the next acquire sweeps them)."""
        with self._lock:
            t = self._tenants.get(tenant)
            return len(t.leases) if t else 0
