"""Input checks and helpers shared by both backends."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable

from worker.okta.ratelimit.types import Limiter, Permit, Wait

# Tenant ids go into Redis keys inside a {hash tag}: no braces, no whitespace, bounded length.
_TENANT = re.compile(r"^[^\s{}]{1,200}$")


def check_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise ValueError(f"tenant id must be 1-200 characters without whitespace or braces, got {tenant!r}")
    return tenant


def new_lease() -> str:
    return secrets.token_hex(8)


def acquire_within(limiter: Limiter, tenant: str, method: str, path: str, use: str = "sync", *,
                   max_sleep: float = 2.0, max_total: float = 10.0,
                   sleep: Callable[[float], None] = time.sleep) -> Permit | Wait:
    """acquire(), sleeping through short waits (celery-patterns §3.5).

    Returns a Permit, or the first Wait longer than max_sleep (or one that would take the total
    sleeping past max_total): a Celery task then re-enqueues itself with that countdown instead of
    holding its worker slot."""
    slept = 0.0
    while True:
        got = limiter.acquire(tenant, method, path, use)
        if isinstance(got, Permit):
            return got
        if got.seconds > max_sleep or slept + got.seconds > max_total:
            return got
        sleep(got.seconds)
        slept += got.seconds
