"""Counters that no table holds, kept in Redis so every process adds to the same number.

- Okta 429 answers, per Okta host: an httpx response hook on the process's Okta HTTP client
  (worker/okta/client.py `http_client()`), added when a task starts.
- Pages the engine deferred because it had to wait (the limiter's pacing, or a 429's reset), per
  tenant and reason: a logging handler on the engine's `wait` events (logger `oktasync.engine`).

Both are Redis hashes (HINCRBY); worker/observability/metrics.py reads them at scrape time. They
only grow (Prometheus counters); FLUSHDB or a new Redis resets them, which Prometheus handles as
a counter reset.
"""

from __future__ import annotations

import logging
import os
import re
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


# ---------------------------------------------------------------- 429s from the HTTP client

class _On429:
    """httpx response hook: count 429 answers by host."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url

    def __call__(self, response: Any) -> None:
        if response.status_code == 429:
            _incr(self.redis_url, OKTA_429_KEY, urlsplit(str(response.request.url)).netloc or "?")


def watch_http(redis_url: str) -> bool:
    """Add the 429 hook to this process's Okta HTTP client (once per client); True if added."""
    try:
        from worker.okta.client import http_client
    except ImportError:
        return False
    client = http_client()
    hooks = client.event_hooks
    responses = list(hooks.get("response", []))
    if any(isinstance(h, _On429) for h in responses):
        return False
    responses.append(_On429(redis_url))
    hooks["response"] = responses
    client.event_hooks = hooks
    return True


# ---------------------------------------------------------------- deferrals from engine events

_TENANT = re.compile(r"\btenant_id=(\d+)")


def deferral_reason(text: str) -> str:
    """'limiter' (our pacing), 'rate_limited' (Okta said 429), or 'other' (retry backoff)."""
    low = text.lower()
    if "rate limiter" in low:
        return "limiter"
    if "429" in low or "ratelimit" in low.replace(" ", "") or "e0000047" in low:
        return "rate_limited"
    return "other"


class DeferralCounter(logging.Handler):
    """Counts the engine's `wait` events (one per deferred page)."""

    def __init__(self, redis_url: str | None = None):
        super().__init__(logging.INFO)
        self._redis_url = redis_url

    def redis_url(self) -> str | None:
        if self._redis_url is None:
            try:
                from worker.config import load

                self._redis_url = load().redis_url
            except Exception:  # noqa: BLE001
                self._redis_url = ""
        return self._redis_url or None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if not args or args[0] != "wait":
            return
        detail = str(args[1]) if len(args) > 1 else ""
        match = _TENANT.search(detail)
        _incr(self.redis_url(), DEFERRALS_KEY, f"{match.group(1) if match else '?'}|{deferral_reason(detail)}")


def install_log_counters(logger_name: str = "oktasync.engine") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(h, DeferralCounter) for h in logger.handlers):
        logger.addHandler(DeferralCounter())


def unwatch_http() -> None:
    """Remove the 429 hook from this process's Okta HTTP client (tests)."""
    from worker.okta.client import http_client

    client = http_client()
    hooks = client.event_hooks
    hooks["response"] = [h for h in hooks.get("response", []) if not isinstance(h, _On429)]
    client.event_hooks = hooks
