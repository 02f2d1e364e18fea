"""The simulator's clock and Okta's timestamp format for changes made while it runs.

The clock is the wall clock plus an offset that only moves forward (POST /__sim/clock), so tests can
age the System Log (90-day retention, the 180-day `since` limit) without waiting. It is per process:
every org a process hosts shares it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset = 0.0


def now() -> float:
    """Seconds since the epoch on the simulator's clock."""
    return time.time() + _offset


def advance(seconds: float) -> float:
    """Move the clock forward by `seconds` (>= 0); returns the new offset."""
    global _offset
    if seconds < 0:
        raise ValueError("the clock only moves forward")
    _offset += seconds
    return _offset


def iso(t: float) -> str:
    """Okta's form: 2024-05-01T12:34:56.789Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


def now_iso() -> str:
    return iso(now())


def parse_iso(text: str) -> float | None:
    """An ISO 8601 date-time (`Z` or an offset; date only means midnight UTC) as epoch seconds, or None."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
