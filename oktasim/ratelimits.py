"""Okta's per-minute rate-limit buckets and the org concurrency limit, as the simulator applies them.

Sources (docs/oktasim-auth.md has the table): okta-api.md §4.2 (a bucket is chosen by method and
path, exact match first, then longest prefix), §4.3 (Workforce per-minute defaults, the last public
table), §4.4 (which bucket the connector's calls were seen to hit), §4.5 (each SSWS token and each
OAuth app gets 50 % of every bucket by default, and that share is what X-Rate-Limit-Limit shows),
§4.6 (concurrency: 75 in flight, answered 429 with Limit=0, Remaining=0), §4.7 (429 E0000047, no
Retry-After).

Counting: one window per (principal, bucket) holding the principal's share, plus one per bucket for
the whole org holding the full limit (it binds only when three or more principals share a bucket).
A window opens with the first request after the previous one ended and lasts `window_seconds`, so
windows are not aligned to wall-clock minutes (§4.1); X-Rate-Limit-Reset is the window end rounded up
to whole epoch seconds, so a client that sleeps until Reset always finds a fresh window.
Single asyncio loop: no locks. check() is on the hot path, so it is a few dict look-ups.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

# Principal share of every bucket (§4.5 "defaultPercentage": 50).
DEFAULT_SHARE_PERCENT = 50


@dataclass(frozen=True)
class Bucket:
    name: str        # what /__sim/stats shows; Okta's dashboard style ("*" = longest-prefix bucket)
    per_minute: int  # Workforce org-wide default per window
    source: str      # where the number comes from


# Workforce column of okta-api.md §4.3, matching per §4.4.
BUCKETS: tuple[Bucket, ...] = (
    Bucket("/api/v1/apps*", 100, "§4.3 /api/v1/apps and /api/v1/apps/{id}/*; §4.4 app users/groups"),
    Bucket("/api/v1/apps/{id}", 500, "§4.3 /api/v1/apps/{id} exactly"),
    Bucket("/api/v1/groups*", 500, "§4.3 /api/v1/groups except /groups/{id}; §4.4 members, roles, apps"),
    Bucket("/api/v1/groups/{id}", 1000, "§4.3 /api/v1/groups/{id} only"),
    Bucket("/api/v1/users", 600, "§4.3 GET/POST /api/v1/users"),
    Bucket("GET /api/v1/users/{idOrLogin}", 2000, "§4.3 GET /api/v1/users/{idOrLogin}"),
    Bucket("/api/v1/users/{id}*", 600, "§4.3 POST/PUT/DELETE /api/v1/users/{id}; §4.4 lifecycle, roles"),
    Bucket("/api/v1/logs", 120, "§4.3"),
    Bucket("/api/v1/events", 100, "§4.3"),
    Bucket("/api/v1/certificateAuthorities", 100, "§4.3"),
    Bucket("/api/v1/devices", 100, "§4.3"),
    Bucket("/oauth2/v1/clients", 100, "§4.3"),
    Bucket("/oauth2/v1/token", 2000, "§2.2 token endpoint, Workforce (DDH:rl-global-enduser)"),
    Bucket("/api/v1", 1200, "§4.3 'most other API actions'; §4.4 iam/*, api-tokens, org"),
)

CATCH_ALL = "/api/v1"
# Second path segments under /groups and /apps that are sub-collections, not object ids.
_GROUP_WORDS = frozenset({"rules"})
_APP_WORDS: frozenset[str] = frozenset()
_SIMPLE = {
    "logs": "/api/v1/logs",
    "events": "/api/v1/events",
    "certificateAuthorities": "/api/v1/certificateAuthorities",
    "devices": "/api/v1/devices",
}


def bucket_for(method: str, path: str) -> str:
    """The bucket Okta charges for `method path` (exact match first, then longest prefix)."""
    path = path.partition("?")[0]
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "oauth2" and parts[1] == "v1":
        if parts[2] == "token" and len(parts) == 3:
            return "/oauth2/v1/token"
        if parts[2] == "clients":
            return "/oauth2/v1/clients"
        return CATCH_ALL
    if len(parts) < 3 or parts[0] != "api" or parts[1] != "v1":
        return CATCH_ALL
    top, rest = parts[2], parts[3:]
    if top == "users":
        if not rest:
            return "/api/v1/users"
        if len(rest) == 1 and method.upper() == "GET":
            return "GET /api/v1/users/{idOrLogin}"
        return "/api/v1/users/{id}*"
    if top == "groups":
        if len(rest) == 1 and rest[0] not in _GROUP_WORDS:
            return "/api/v1/groups/{id}"
        return "/api/v1/groups*"
    if top == "apps":
        if len(rest) == 1 and rest[0] not in _APP_WORDS:
            return "/api/v1/apps/{id}"
        return "/api/v1/apps*"
    return _SIMPLE.get(top, CATCH_ALL)


@dataclass
class RateDecision:
    allowed: bool
    bucket: str
    headers: dict[str, str]  # X-Rate-Limit-Limit, -Remaining, -Reset, to send as they are


class _Window:
    __slots__ = ("end", "count", "reset")

    def __init__(self, end: float):
        self.end = end
        self.count = 0
        self.reset = str(math.ceil(end))


class _BucketStats:
    __slots__ = ("requests", "throttled")

    def __init__(self) -> None:
        self.requests = 0
        self.throttled = 0


class RateLimits:
    """Per-window bucket limits and the in-flight gate for one simulated org."""

    def __init__(self, window_seconds: float = 60.0, scale: float = 1.0, concurrency_limit: int = 75,
                 share_percent: int = DEFAULT_SHARE_PERCENT, clock: Callable[[], float] = time.time):
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
        if not scale > 0:
            raise ValueError(f"rate-limit scale must be > 0, got {scale!r}")
        if concurrency_limit < 1:
            raise ValueError(f"concurrency_limit must be >= 1, got {concurrency_limit!r}")
        if not 1 <= share_percent <= 100:
            raise ValueError(f"share_percent must be 1..100, got {share_percent!r}")
        self.window_seconds = float(window_seconds)
        self.scale = float(scale)
        self.concurrency_limit = int(concurrency_limit)
        self._clock = clock
        # name -> (org-wide limit, per-principal limit), both at least 1.
        self._limits: dict[str, tuple[int, int]] = {}
        for b in BUCKETS:
            org = max(1, int(b.per_minute * self.scale))
            self._limits[b.name] = (org, max(1, org * share_percent // 100))
        self._principal_windows: dict[tuple[str, str], _Window] = {}
        self._org_windows: dict[str, _Window] = {}
        self.in_flight = 0
        self.reset_stats()

    # -- limits -------------------------------------------------------------------------------

    def limit(self, bucket: str) -> int:
        """The per-principal per-window limit of `bucket` (what X-Rate-Limit-Limit says)."""
        return self._limits[bucket][1]

    def check(self, method: str, path: str, principal_id: str) -> RateDecision:
        """Charge one request to its bucket; allowed=False means answer 429 E0000047."""
        name = bucket_for(method, path)
        org_limit, limit = self._limits[name]
        now = self._clock()
        key = (principal_id, name)
        win = self._principal_windows.get(key)
        if win is None or now >= win.end:
            win = self._principal_windows[key] = _Window(now + self.window_seconds)
        org = self._org_windows.get(name)
        if org is None or now >= org.end:
            org = self._org_windows[name] = _Window(now + self.window_seconds)
        st = self._stats[name]
        st.requests += 1
        if win.count >= limit:
            allowed, remaining, reset = False, 0, win.reset
        elif org.count >= org_limit:  # the org bucket is spent by other principals
            allowed, remaining, reset = False, 0, org.reset
        else:
            win.count += 1
            org.count += 1
            allowed, reset = True, win.reset
            remaining = min(limit - win.count, org_limit - org.count)
        if not allowed:
            st.throttled += 1
            self.throttled_total += 1
        return RateDecision(allowed, name, {
            "X-Rate-Limit-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": reset,
        })

    # -- concurrency ----------------------------------------------------------------------------

    def begin(self) -> bool:
        """Admit one more request in flight. False: over the limit, answer 429 with
        concurrency_headers() and do NOT call end(). True: call end() exactly once when done."""
        if self.in_flight >= self.concurrency_limit:
            self.throttled_total += 1
            self.concurrency_throttled += 1
            return False
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        return True

    def end(self) -> None:
        if self.in_flight > 0:
            self.in_flight -= 1

    def concurrency_headers(self) -> dict[str, str]:
        """Okta's concurrency signal (§4.6): Limit 0, Remaining 0, Reset only an estimate."""
        return {
            "X-Rate-Limit-Limit": "0",
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": str(int(self._clock()) + 1),
        }

    # -- stats ------------------------------------------------------------------------------------

    def stats(self) -> dict:
        return {
            "throttled_total": self.throttled_total,
            "concurrency_throttled": self.concurrency_throttled,
            "max_in_flight": self.max_in_flight,
            "concurrency_limit": self.concurrency_limit,
            "window_seconds": self.window_seconds,
            "buckets": {
                name: {"requests": st.requests, "throttled": st.throttled, "limit": self._limits[name][1]}
                for name, st in self._stats.items()
            },
        }

    def reset_stats(self) -> None:
        """Zero the counters shown by stats(); the rate windows themselves keep running."""
        self.throttled_total = 0
        self.concurrency_throttled = 0
        self.max_in_flight = self.in_flight
        self._stats = {b.name: _BucketStats() for b in BUCKETS}
