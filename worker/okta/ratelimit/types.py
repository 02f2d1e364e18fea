"""The limiter's public value types and configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

WAIT_REASONS = ("rate", "paused", "in-flight", "share")


@dataclass(frozen=True)
class Permit:
    """Go ahead: send the request, then hand this back to release() with the response."""

    tenant: str
    bucket: str
    use: str
    lease: str


@dataclass(frozen=True)
class Wait:
    """Not now: ask again in `seconds`. reason is one of "rate" (pacing or the window's budget is
    spent), "paused" (after a 429, until Okta's reset), "in-flight" (the tenant's in-flight cap is
    full), "share" (this use has spent its share of the window)."""

    seconds: float
    reason: str


@runtime_checkable
class Limiter(Protocol):
    def acquire(self, tenant: str, method: str, path: str, use: str = "sync") -> Permit | Wait: ...

    def release(self, permit: Permit, status: int | None, headers: Mapping[str, str]) -> None: ...


def _default_shares() -> dict[str, float]:
    return {"sync": 0.8, "provisioning": 0.2}


@dataclass
class LimiterConfig:
    """Knobs of the algorithm; both backends read the same ones.

    shares: the part of each Okta bucket (of X-Rate-Limit-Limit, which already is this token's or
    app's principal share) each use may spend per window; they must sum to at most 1 so every use
    keeps its part.
    """

    shares: dict[str, float] = field(default_factory=_default_shares)
    max_in_flight: int = 8                 # per tenant (Okta: "rarely more than ~10" even for bulk loads)
    lease_seconds: float = 60.0            # an unreleased permit frees its in-flight slot after this
    initial_limit: int = 10                # guess for a bucket no response has been seen for (smallest recorded)
    initial_window_seconds: float = 60.0   # Okta's windows are about a minute
    pace_ahead_seconds: float = 1.0        # Reset has 1 s resolution: spend the budget this much earlier...
    end_probes: int = 2                    # ...except the last few, spread over that last uncertain second
    burst_fraction: float = 1.0            # part of a use's share per window not paced (1: all but the end probes; 0: pace all)
    pause_margin_seconds: float = 1.0      # after a 429, stay off this long past Okta's reset (like Okta's SDKs)
    missing_headers_pause_seconds: float = 60.0  # a 429 without rate-limit headers (baton-sdk's default)
    concurrency_recovery_seconds: float = 10.0   # the lowered in-flight cap grows back by 1 this often
    in_flight_wait_seconds: float = 0.05   # how long to suggest waiting for an in-flight slot at most
    unknown_wait_seconds: float = 0.05     # longest wait suggested while no response has been seen yet
    max_reset_seconds: float = 300.0       # clamp on Reset-Date (baton-sdk caps windows at 5 minutes)
    idle_key_seconds: float = 300.0        # how long a bucket's learned limit outlives what it must remember

    def __post_init__(self) -> None:
        if not self.shares:
            raise ValueError("LimiterConfig.shares must name at least one use, e.g. {'sync': 0.8}")
        for use, share in self.shares.items():
            if not use or not isinstance(use, str) or any(c.isspace() for c in use):
                raise ValueError(f"LimiterConfig.shares: invalid use name {use!r}")
            if not (isinstance(share, int | float) and 0 < share <= 1):
                raise ValueError(f"LimiterConfig.shares[{use!r}] must be in (0, 1], got {share!r}")
        total = sum(self.shares.values())
        if total > 1 + 1e-9:
            raise ValueError(f"LimiterConfig.shares must sum to at most 1 (each use keeps its part), got {total}")
        if not (isinstance(self.max_in_flight, int) and self.max_in_flight >= 1):
            raise ValueError(f"LimiterConfig.max_in_flight must be an integer >= 1, got {self.max_in_flight!r}")
        if not (isinstance(self.end_probes, int) and self.end_probes >= 0):
            raise ValueError(f"LimiterConfig.end_probes must be an integer >= 0, got {self.end_probes!r}")
        if not (isinstance(self.burst_fraction, int | float) and 0 <= self.burst_fraction <= 1):
            raise ValueError(f"LimiterConfig.burst_fraction must be in [0, 1], got {self.burst_fraction!r}")
        if not (isinstance(self.initial_limit, int) and self.initial_limit >= 1):
            raise ValueError(f"LimiterConfig.initial_limit must be an integer >= 1, got {self.initial_limit!r}")
        for name in ("lease_seconds", "initial_window_seconds", "concurrency_recovery_seconds",
                     "max_reset_seconds", "in_flight_wait_seconds", "unknown_wait_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LimiterConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("pace_ahead_seconds", "pause_margin_seconds", "missing_headers_pause_seconds", "idle_key_seconds"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"LimiterConfig.{name} must be >= 0, got {getattr(self, name)!r}")

    @property
    def key_ttl_seconds(self) -> float:
        """How long a tenant's Redis keys live after their last write: past the longest window, pause
        or lowered in-flight cap they can hold, plus idle_key_seconds. An idle tenant's keys expire
        (about 10 minutes by default), so Redis holds keys only for tenants that sync."""
        holds = max(self.max_reset_seconds + self.pause_margin_seconds, self.missing_headers_pause_seconds,
                    self.initial_window_seconds, self.max_in_flight * self.concurrency_recovery_seconds)
        return holds + self.idle_key_seconds

    def share(self, use: str) -> float:
        try:
            return float(self.shares[use])
        except KeyError:
            raise ValueError(f"unknown limiter use {use!r}; configured uses: {sorted(self.shares)}") from None
