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
from worker.observability.freshness import current_views, freshness_metrics
from worker.store.drift import LastVerify, last_verifies

log = logging.getLogger("oktasync.metrics")

QUEUES = ("sync", "provisioning")
# kombu's Redis transport keeps priority sub-lists "<queue>\x06\x16<n>" next to "<queue>".
_PRIORITY_SEP = "\x06\x16"
RUN_STATES = ("queued", "running", "succeeded", "failed")
REQUEST_STATES = ("queued", "running", "succeeded", "failed", "dead")


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
        import sqlalchemy as sa

        from worker.store.tables import ProvisioningRequest, SyncRun, SyncStream, Tenant

        with self._db()() as s:
            tenants = {tid: (name, enabled) for tid, name, enabled in
                       s.execute(sa.select(Tenant.id, Tenant.name, Tenant.enabled)).all()}
            runs = s.execute(sa.select(SyncRun.tenant_id, SyncRun.state, sa.func.count())
                             .group_by(SyncRun.tenant_id, SyncRun.state)).all()
            stream_t = SyncStream.__table__
            work = s.execute(sa.select(SyncRun.tenant_id, SyncRun.state,
                                       sa.func.coalesce(sa.func.sum(stream_t.c.pages), 0),
                                       sa.func.coalesce(sa.func.sum(stream_t.c["items"]), 0))
                             .join(SyncRun, SyncRun.id == stream_t.c.run_id)
                             .group_by(SyncRun.tenant_id, SyncRun.state)).all()
            views = current_views(s)  # each tenant's last success: one join, not a scan of all runs
            verifies = last_verifies(s)
            reqs = s.execute(sa.select(ProvisioningRequest.tenant_id, ProvisioningRequest.kind,
                                       ProvisioningRequest.state, sa.func.count())
                             .group_by(ProvisioningRequest.tenant_id, ProvisioningRequest.kind,
                                       ProvisioningRequest.state)).all()

        def name(tid: int) -> str:
            return tenants.get(tid, (f"#{tid}", False))[0]

        tenant_g = GaugeMetricFamily("oktasync_tenant_enabled", "1 per tenant scheduled, 0 if paused",
                                     labels=["tenant"])
        for tid in sorted(tenants):
            tenant_g.add_metric([name(tid)], 1 if tenants[tid][1] else 0)
        runs_g = GaugeMetricFamily("oktasync_sync_runs", "Sync runs kept in the database, by state",
                                   labels=["tenant", "state"])
        seen = set()
        for tid, state, n in runs:
            runs_g.add_metric([name(tid), state], n)
            seen.add((tid, state))
        for tid in tenants:  # explicit zeros, so alerts on e.g. failed > 0 have a series to watch
            for state in RUN_STATES:
                if (tid, state) not in seen:
                    runs_g.add_metric([name(tid), state], 0)
        pages_g = GaugeMetricFamily("oktasync_sync_pages", "Okta pages fetched by the runs kept, by run state",
                                    labels=["tenant", "run_state"])
        items_g = GaugeMetricFamily("oktasync_sync_items", "Okta objects read by the runs kept, by run state",
                                    labels=["tenant", "run_state"])
        for tid, state, pages, items in work:
            pages_g.add_metric([name(tid), state], int(pages))
            items_g.add_metric([name(tid), state], int(items))
        last_g = GaugeMetricFamily("oktasync_last_successful_sync_timestamp_seconds",
                                   "When the tenant's last successful sync finished (Unix time)", labels=["tenant"])
        for tenant_name, finished, _due, _users in views:
            last_g.add_metric([tenant_name], finished.timestamp())
        req_g = GaugeMetricFamily("oktasync_provisioning_requests", "Provisioning requests by kind and state",
                                  labels=["tenant", "kind", "state"])
        for tid, kind, state, n in reqs:
            req_g.add_metric([name(tid), kind, state], n)
        self._tenant_names = {tid: name(tid) for tid in tenants}
        self._domains: dict[str, str] = {}
        return [tenant_g, runs_g, pages_g, items_g, last_g, req_g, *freshness_metrics(views), *drift_metrics(verifies)]

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


def drift_metrics(verifies: list[LastVerify]) -> list[Any]:
    """The drift the tenant's last successful verify run found (`oktasync verify`), and when."""
    drift = GaugeMetricFamily("oktasync_drift_grants",
                              "Grants the tenant's last verify run found missing from the view (in Okta, not in "
                              "the view) or extra in it (in the view, not in Okta)", labels=["tenant", "direction"])
    when = GaugeMetricFamily("oktasync_last_verify_timestamp_seconds",
                             "When the tenant's last successful verify run finished (Unix time)", labels=["tenant"])
    for v in verifies:
        drift.add_metric([v.tenant, "missing"], v.missing)
        drift.add_metric([v.tenant, "extra"], v.extra)
        when.add_metric([v.tenant], v.finished_at.timestamp())
    return [drift, when]


def registry_for(database_url: str, broker_url: str, redis_url: str | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OktasyncCollector(database_url, broker_url, redis_url))
    return registry


def render(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()
