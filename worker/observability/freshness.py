"""Freshness metrics: how old each tenant's view is, and how long syncs lag behind their due time.

Both come from one query over the tenants' current views (tenants.current_run_id, the last run
that succeeded; worker/store/metrics_queries.py), so a scrape costs one indexed join however many
runs are kept.

- `oktasync_tenant_seconds_since_success{tenant}`: now - when the current view's run finished.
  A tenant that never synced successfully has no series (alert on `absent` or on the runs gauge).
- `oktasync_sync_lag_seconds{size_class}`: a gauge histogram over tenants of their last success's
  lag, due (when Beat found the tenant due; a run started by hand: when it was created) ->
  succeeded. Size class from that run's user count, so big orgs get their own expectations.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeHistogramMetricFamily

from worker.observability.families import gauge
from worker.store.metrics_queries import CurrentView
from worker.store.tables import utcnow

# Upper bounds (seconds) of the lag buckets: a tick, minutes, an hour, a day.
LAG_BUCKETS = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 3 * 3600.0, 6 * 3600.0, 86400.0)
SIZE_CLASSES = ("small", "medium", "large")  # < 500 users, < 5,000, >= 5,000


def size_class(users: int | None) -> str:
    n = users or 0
    return "small" if n < 500 else "medium" if n < 5000 else "large"


def freshness_metrics(views: list[CurrentView], now: datetime | None = None) -> list[Any]:
    now = now or utcnow()
    since = gauge("oktasync_tenant_seconds_since_success",
                  "Seconds since the tenant's current view (its last successful sync) finished", ["tenant"],
                  (({"tenant": v.tenant}, max(0.0, (now - v.finished_at).total_seconds())) for v in views))
    counts = {c: [0] * (len(LAG_BUCKETS) + 1) for c in SIZE_CLASSES}
    sums = dict.fromkeys(SIZE_CLASSES, 0.0)
    for v in views:
        lag = max(0.0, (v.finished_at - v.due_at).total_seconds())
        cls = size_class(v.users)
        slot = bisect_left(LAG_BUCKETS, lag)  # the first bucket with lag <= its bound; +Inf past them
        counts[cls][slot] += 1
        sums[cls] += lag
    lag_h = GaugeHistogramMetricFamily(
        "oktasync_sync_lag_seconds",
        "Tenants by the lag of their last successful sync (due -> succeeded), by size class "
        "(users: small < 500, medium < 5000, large >= 5000)", labels=["size_class"])
    for cls in SIZE_CLASSES:
        cumulative, running = [], 0
        for bound, n in zip((*[str(b) for b in LAG_BUCKETS], "+Inf"), counts[cls], strict=True):
            running += n
            cumulative.append((bound, running))
        lag_h.add_metric([cls], cumulative, gsum_value=sums[cls])
    return [since, lag_h]
