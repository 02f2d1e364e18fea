"""Reading Okta's rate-limit headers into the numbers the algorithm needs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Observation:
    limit: int          # X-Rate-Limit-Limit (0 together with remaining 0: the concurrency signal)
    remaining: int      # X-Rate-Limit-Remaining
    reset: int          # X-Rate-Limit-Reset, Okta's epoch seconds: identifies the window
    seconds: float      # until reset, measured against the response's Date (both are Okta's clock)

    @property
    def concurrency(self) -> bool:
        return self.limit == 0 and self.remaining == 0


def _min_int(value: str | None) -> int | None:
    # Repeated headers arrive joined by commas (OKTA-379654); like Okta's SDK, take the minimum.
    if value is None:
        return None
    numbers = []
    for part in str(value).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            n = int(float(part))
        except ValueError:
            return None
        if n < 0:
            return None
        numbers.append(n)
    return min(numbers) if numbers else None


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def observe(headers: Mapping[str, str], max_seconds: float,
            wall: Callable[[], float] = time.time) -> Observation | None:
    """The rate-limit state a response reports, or None when its headers are missing or unreadable.

    Without a Date header the worker's wall clock stands in for Okta's (then skew matters)."""
    lower = {str(k).lower(): v for k, v in headers.items()}
    limit = _min_int(lower.get("x-rate-limit-limit"))
    remaining = _min_int(lower.get("x-rate-limit-remaining"))
    reset = _min_int(lower.get("x-rate-limit-reset"))
    if limit is None or remaining is None or reset is None:
        return None
    date = _date(lower.get("date"))
    seconds = reset - (date if date is not None else wall())
    return Observation(limit, remaining, reset, min(max(seconds, 0.0), max_seconds))
