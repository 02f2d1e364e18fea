"""Okta rate limiter: one bucket per (tenant, Okta bucket) that follows X-Rate-Limit-* headers.

    limiter = RedisLimiter(redis.Redis.from_url(url))          # or MemoryLimiter() when embedded
    got = limiter.acquire(tenant, "GET", "/api/v1/users")      # never blocks
    if isinstance(got, Wait): ...                              # sleep got.seconds or re-enqueue
    else: response = send(); limiter.release(got, response.status_code, response.headers)

docs/rate-limits.md explains the algorithm; algorithm.py and limiter.lua implement it.
"""

from worker.okta.ratelimit.buckets import okta_bucket
from worker.okta.ratelimit.common import acquire_within
from worker.okta.ratelimit.memory import MemoryLimiter
from worker.okta.ratelimit.redis_backend import RedisLimiter
from worker.okta.ratelimit.types import Limiter, LimiterConfig, Permit, Wait

__all__ = ["Permit", "Wait", "Limiter", "LimiterConfig", "MemoryLimiter", "RedisLimiter", "okta_bucket",
           "acquire_within"]
