"""Counters that no table holds, kept in Redis so every process adds to the same number.

- Okta 429 answers, per Okta host: an httpx response hook given to each Okta client the workers
  build (worker/tasks/base.py).
- Pages the engine deferred because it had to wait (the limiter's pacing, or a 429's reset), per
  tenant and reason: an engine event sink on its `wait` events (worker/tasks/base.py).

Both are Redis hashes (HINCRBY); worker/observability/metrics.py reads them at scrape time. They
only grow (Prometheus counters); FLUSHDB or a new Redis resets them, which Prometheus handles as
a counter reset.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any
from urllib.parse import urlsplit

OKTA_429_KEY = "oktasync:metrics:okta_429"  # field: Okta host
DEFERRALS_KEY = "oktasync:metrics:deferrals"  # field: "<tenant_id>|<reason>"

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _redis(url: str) -> Any:
    key = f"{os.getpid()}|{url}"
    with _lock:
        client = _clients.get(key)
        if client is None:
            import redis

            client = _clients[key] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return client


def _incr(url: str | None, key: str, field: str) -> None:
    if not url:
        return
    try:
        _redis(url).hincrby(key, field, 1)
    except Exception:  # noqa: BLE001 - a counter must never break the work it counts
        logging.getLogger(__name__).debug("counter %s not written", key, exc_info=True)


# ---------------------------------------------------------------- 429s from the Okta client

class Okta429Counter:
    """httpx response hook (passed to each Okta client): count 429 answers by host."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url

    def __call__(self, response: Any) -> None:
        if response.status_code == 429:
            _incr(self.redis_url, OKTA_429_KEY, urlsplit(str(response.request.url)).netloc or "?")


# ---------------------------------------------------------------- deferrals from engine events

def deferral_reason(text: str) -> str:
    """'limiter' (our pacing), 'rate_limited' (Okta said 429), or 'other' (retry backoff)."""
    low = text.lower()
    if "rate limiter" in low:
        return "limiter"
    if "429" in low or "ratelimit" in low.replace(" ", "") or "e0000047" in low:
        return "rate_limited"
    return "other"


class DeferralCounter:
    """An engine event sink (worker.engine.runtime.EventSink): counts `wait` events, one per
    deferred page, by tenant and reason."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "wait":
            reason = deferral_reason(str(data.get("reason", "")))
            _incr(self.redis_url, DEFERRALS_KEY, f"{data.get('tenant_id', '?')}|{reason}")
