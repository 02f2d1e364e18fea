"""`oktasync tenant list --lagging`: which tenants' data is older than their shortest interval (full
or incremental), and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.store.tenants import Freshness

REASONS = ("paused", "running", "queued", "failing", "never ran", "not due")


@dataclass(frozen=True)
class Lag:
    name: str
    reason: str  # one of REASONS
    detail: str
    last_success: datetime | None
    interval: int


def ago(seconds: float) -> str:
    """3d 4h, 2h 5m, 7m, 12s: the two largest units."""
    seconds = max(0, int(seconds))
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n]
    return " ".join(shown[:2]) or "0s"


def _at(when: datetime | None) -> str:
    return when.isoformat(timespec="seconds") if when else "-"


def _summary(error: str | None) -> str:
    """The error's first line, cut short (the run's page shows it all: `oktasync runs NAME`)."""
    lines = (error or "").strip().splitlines()
    first = lines[0] if lines else "no error recorded"
    return first if len(first) <= 160 else first[:157] + "..."


def freshest_interval(t: Any) -> int:
    """The shortest interval at which the tenant's view is refreshed: the full sync's, or the
    incremental runs' when they are on (drift checks refresh nothing)."""
    return min((x for x in (t.sync_interval, t.incremental_interval) if x), default=t.sync_interval)


def next_due(t: Any) -> datetime | None:
    """The earliest due time of the tenant's full or incremental runs (None: a full one is due now)."""
    if t.next_sync_at is None:
        return None
    return min(x for x in (t.next_sync_at, t.next_incremental_at) if x is not None)


def lag(f: Freshness, now: datetime) -> Lag | None:
    """Why tenant `f` lags (its last success, full or incremental, is older than its shortest
    interval, or it never succeeded), or None when it does not. The first reason that holds wins:
    paused, a run in progress (running or queued behind others), the last run failed, no run ever,
    due but not started, not due yet."""
    t, run = f.tenant, f.latest
    interval = freshest_interval(t)
    if f.last_success is not None and (now - f.last_success).total_seconds() <= interval:
        return None

    def out(reason: str, detail: str) -> Lag:
        return Lag(t.name, reason, detail, f.last_success, interval)

    if not t.enabled:
        return out("paused", f"paused; `oktasync tenant resume {t.name}` schedules it again")
    if run is not None and run.state == "queued":
        return out("queued", f"run {run.id} queued {ago((now - run.created_at).total_seconds())} ago, "
                             "behind others (no worker has started it)")
    if run is not None and run.state in ("running", "finalizing"):
        since = run.started_at or run.created_at
        return out("running", f"run {run.id} {run.state} for {ago((now - since).total_seconds())}")
    if run is not None and run.state == "failed":
        when = run.finished_at or run.updated_at
        return out("failing", f"run {run.id} failed {ago((now - when).total_seconds())} ago: {_summary(run.error)}")
    next_at = next_due(t)
    due = next_at is None or next_at <= now
    since = "" if next_at is None else f" since {ago((now - next_at).total_seconds())}"
    not_started = "not started: queued behind others, or Beat is not running"
    if run is None:
        return out("never ran", f"first sync due{since}, {not_started}" if due else f"first sync due at {_at(next_at)}")
    if due:
        return out("queued", f"due{since}, {not_started}")
    return out("not due", f"next sync due at {_at(next_at)} (interval or schedule changed)")


def lagging(rows: list[Freshness], now: datetime) -> list[Lag]:
    return [got for f in rows if (got := lag(f, now)) is not None]


def line(item: Lag, now: datetime) -> str:
    last = (f"last success {ago((now - item.last_success).total_seconds())} ago" if item.last_success
            else "never succeeded")
    return f"{item.name}: {item.reason} ({last}, interval {ago(item.interval)}): {item.detail}"
