"""oktasync's own Prometheus metrics, computed when Prometheus scrapes (`oktasync metrics`).

Nothing is kept in the metrics process: every scrape reads the grant store (runs, streams,
provisioning requests, tenants) and Redis (queue lengths, unacked messages, the 429 and deferral
counters of worker/observability/counters.py). So any number of workers can come and go and the
numbers stay right, and the metrics process can restart at any time.

prometheus_client is already installed with Flower (a dependency of it); we use its exposition
format and HTTP server rather than writing our own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from worker.observability.counters import DEFERRALS_KEY, OKTA_429_KEY
from worker.observability.families import gauge
from worker.observability.freshness import freshness_metrics
from worker.store.drift import LastVerify
from worker.store.metrics_queries import MetricsRead, read_metrics

log = logging.getLogger("oktasync.metrics")

QUEUES = ("sync", "provisioning", "dispatch")
# kombu's Redis transport keeps priority sub-lists "<queue>\x06\x16<n>" next to "<queue>".
_PRIORITY_SEP = "\x06\x16"


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database URL whose file does not exist, else None."""
    import os

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    db = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return None if os.path.exists(db) else db


def _queue_length(client: Any, queue: str) -> int:
    total = int(client.llen(queue))
    for step in (1, 2, 3, 4, 5, 6, 7, 8, 9):
        total += int(client.llen(f"{queue}{_PRIORITY_SEP}{step}"))
    return total


class OktasyncCollector(Collector):
    """Reads the database and Redis on each collect()."""

    def __init__(self, database_url: str, broker_url: str, redis_url: str | None = None):
        self.database_url = database_url
        self.broker_url = broker_url
        self.redis_url = redis_url or broker_url
        self._sessions: Any = None
        self._redis: dict[str, Any] = {}

    def _db(self) -> Any:
        if self._sessions is None:
            from worker.store.db import make_engine, make_session_factory

            url = self.database_url
            missing = missing_sqlite_file(url)
            if missing:  # connecting would create an empty file
                raise FileNotFoundError(f"SQLite database {missing} does not exist")
            extra = {} if url.startswith("sqlite") else {"pool_size": 1, "max_overflow": 1}
            self._sessions = make_session_factory(make_engine(url, **extra))
        return self._sessions

    def _client(self, url: str) -> Any:
        if url not in self._redis:
            import redis

            self._redis[url] = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3,
                                                    decode_responses=True)
        return self._redis[url]

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("oktasync_metrics_source_up",
                               "1 if this scrape could read the source (database, broker, redis)", labels=["source"])
        started = time.monotonic()
        families: list[Any] = []
        for source, fn in (("database", self._database), ("broker", self._broker), ("redis", self._counters)):
            try:
                families.extend(fn())
                up.add_metric([source], 1)
            except Exception as exc:  # noqa: BLE001 - a down source is a metric, not a failed scrape
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                log.warning("cannot read the %s: %s: %s", source, type(exc).__name__, first)
                up.add_metric([source], 0)
        yield from families
        yield up
        yield GaugeMetricFamily("oktasync_metrics_scrape_seconds", "Time this scrape took to read its sources",
                                value=time.monotonic() - started)

    # -- the grant store --

    def _database(self) -> list[Any]:
        with self._db()() as s:
            read = read_metrics(s)
        self._tenant_names = {tid: name for tid, (name, _enabled) in read.tenants.items()}
        return [*store_metrics(read), *freshness_metrics(read.views), *drift_metrics(read.verifies)]

    # -- the broker --

    def _broker(self) -> list[Any]:
        client = self._client(self.broker_url)
        depth = GaugeMetricFamily("oktasync_queue_messages", "Messages waiting in a broker queue",
                                  labels=["queue"])
        for queue in QUEUES:
            depth.add_metric([queue], _queue_length(client, queue))
        unacked = GaugeMetricFamily("oktasync_unacked_messages",
                                    "Messages taken by workers and not yet acknowledged (running, reserved, "
                                    "or waiting for their countdown)", value=int(client.hlen("unacked")))
        return [depth, unacked]

    # -- counters written by the workers --

    def _counters(self) -> list[Any]:
        client = self._client(self.redis_url)
        names = getattr(self, "_tenant_names", {})
        c429 = CounterMetricFamily("oktasync_okta_rate_limited", "429 answers from Okta, by Okta host",
                                   labels=["host"])
        for host, n in sorted(client.hgetall(OKTA_429_KEY).items()):
            c429.add_metric([host], int(n))
        waits = CounterMetricFamily(
            "oktasync_sync_deferrals",
            "Pages put back with a countdown instead of waiting in a worker slot: reason limiter (our pacing "
            "of Okta's limits), rate_limited (after a 429), other (retry backoff)", labels=["tenant", "reason"])
        for field, n in sorted(client.hgetall(DEFERRALS_KEY).items()):
            tid, _, reason = field.partition("|")
            label = names.get(int(tid), f"#{tid}") if tid.isdigit() else tid
            waits.add_metric([label, reason], int(n))
        return [c429, waits]


def store_metrics(read: MetricsRead) -> list[Any]:
    """Tenants, runs by state with their pages and items, last success, provisioning requests.
    A tenant has a run-state series only for the states its kept runs are in (no zeros for the
    others: at 10,000 tenants those were a third of the scrape); docs/operations.md says so."""
    def label(tid: int) -> str:
        return read.tenants[tid][0] if tid in read.tenants else f"#{tid}"  # removed since the read

    def by_state(tid: int, key: str, state: str) -> dict[str, str]:
        return {"tenant": label(tid), key: state}

    worked = [r for r in read.runs if r.pages or r.items]
    return [
        gauge("oktasync_tenant_enabled", "1 per tenant scheduled, 0 if paused", ["tenant"],
              (({"tenant": name}, 1 if enabled else 0) for _tid, (name, enabled) in sorted(read.tenants.items()))),
        gauge("oktasync_sync_runs", "Sync runs kept in the database, by state", ["tenant", "state"],
              ((by_state(r.tenant_id, "state", r.state), r.runs) for r in read.runs)),
        gauge("oktasync_sync_pages", "Okta pages fetched by the runs kept, by run state", ["tenant", "run_state"],
              ((by_state(r.tenant_id, "run_state", r.state), r.pages) for r in worked)),
        gauge("oktasync_sync_items", "Okta objects read by the runs kept, by run state", ["tenant", "run_state"],
              ((by_state(r.tenant_id, "run_state", r.state), r.items) for r in worked)),
        gauge("oktasync_last_successful_sync_timestamp_seconds",
              "When the tenant's last successful sync finished (Unix time)", ["tenant"],
              (({"tenant": v.tenant}, v.finished_at.timestamp()) for v in read.views)),
        gauge("oktasync_provisioning_requests", "Provisioning requests by kind and state", ["tenant", "kind", "state"],
              (({"tenant": label(q.tenant_id), "kind": q.kind, "state": q.state}, q.requests)
               for q in read.requests)),
    ]


def drift_metrics(verifies: list[LastVerify]) -> list[Any]:
    """The drift the tenant's last successful verify run found (`oktasync verify`), and when."""
    drift = gauge("oktasync_drift_grants",
                  "Grants the tenant's last verify run found missing from the view (in Okta, not in the view), "
                  "extra in it (in the view, not in Okta) or changed (in both, contents differ)", ["tenant", "direction"],
                  (({"tenant": v.tenant, "direction": d}, n) for v in verifies
                   for d, n in (("missing", v.missing), ("extra", v.extra), ("changed", v.changed))))
    objects = gauge("oktasync_drift_objects",
                    "Resources and entitlements the tenant's last verify run found missing from the view, extra in it "
                    "or changed (e.g. a group renamed in Okta and not synced)", ["tenant", "kind", "direction"],
                    (({"tenant": v.tenant, "kind": t, "direction": d}, n) for v in verifies for t, d, n in v.others))
    when = gauge("oktasync_last_verify_timestamp_seconds",
                 "When the tenant's last successful verify run finished (Unix time)", ["tenant"],
                 (({"tenant": v.tenant}, v.finished_at.timestamp()) for v in verifies))
    return [drift, objects, when]


def registry_for(database_url: str, broker_url: str, redis_url: str | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OktasyncCollector(database_url, broker_url, redis_url))
    return registry


def render(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()
