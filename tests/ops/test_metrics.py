"""`oktasync metrics`: numbers read at scrape time from PostgreSQL and Redis, and the counters the
workers write (429s through an Okta client's response hook against oktasim, deferrals through
the engine's event sink)."""

from __future__ import annotations

import hashlib
import subprocess
import time

import httpx
import pytest
import redis

from tests.support.metrics import parse
from tests.support.paths import BIN, ROOT
from tests.support.services import free_port
from tests.support.sim import SIM_TOKEN
from worker.observability import counters
from worker.observability.metrics import registry_for, render


@pytest.fixture
def store(pg_url, monkeypatch):
    from worker.store.db import make_engine, make_session_factory
    from worker.store.migrate import migrate
    from worker.store.secrets import generate_key

    monkeypatch.setenv("OKTASYNC_SECRET_KEY", generate_key())
    migrate(pg_url)
    engine = make_engine(pg_url)
    yield make_session_factory(engine)
    engine.dispose()


def seed(sessions) -> dict[str, int]:
    from worker.store.tables import ProvisioningRequest, SyncRun, SyncStream
    from worker.store.tenants import create_tenant

    with sessions() as s:
        a = create_tenant(s, "acme", "acme.okta.com", {"api_token": SIM_TOKEN}, sync_interval=60)
        b = create_tenant(s, "globex", "globex.okta.com", {"api_token": SIM_TOKEN}, enabled=False)
        s.flush()
        runs = [SyncRun(tenant_id=a.id, state="succeeded"), SyncRun(tenant_id=a.id, state="failed"),
                SyncRun(tenant_id=a.id, state="succeeded"), SyncRun(tenant_id=b.id, state="succeeded")]
        s.add_all(runs)
        s.flush()
        s.add_all([SyncStream(run_id=runs[0].id, kind="users", state="done", pages=3, items=450),
                   SyncStream(run_id=runs[0].id, kind="groups", state="done", pages=1, items=12),
                   SyncStream(run_id=runs[1].id, kind="users", state="failed", pages=2, items=400),
                   SyncStream(run_id=runs[3].id, kind="users", state="done", pages=1, items=7)])
        for i, state in enumerate(["succeeded", "succeeded", "dead", "queued"]):
            payload = {"entitlement": "group:00g1:member", "principal": f"user:00u{i}"}
            s.add(ProvisioningRequest(tenant_id=a.id, idempotency_key=f"k{i}", kind="grant", payload=payload,
                                      payload_hash=hashlib.sha256(repr(payload).encode()).hexdigest(), state=state))
        s.commit()
        return {"acme": a.id, "globex": b.id}


def test_metrics_from_the_database_and_redis(store, pg_url, redis_url, oktasim):
    ids = seed(store)
    # Two dispatcher ticks waiting on their queue, one message on provisioning (no worker runs here).
    from worker.app import make_app
    from worker.config import Settings

    app = make_app(Settings(broker_url=redis_url, redis_url=redis_url, database_url=pg_url))
    app.send_task("oktasync.sync.dispatch")
    app.send_task("oktasync.sync.dispatch")
    app.send_task("oktasync.provision.reap")

    # Real 429s: an Okta client given the hook (as the workers' clients are), against a simulator
    # with tiny limits; no retries, so every answer is seen once.
    sim = oktasim(["--users", "5", "--rate-limit-scale", "0.001", "--window-seconds", "60"])
    from worker.okta.auth import SSWSAuth
    from worker.okta.client import OktaClient

    statuses: list[int] = []
    client = OktaClient(sim.url, SSWSAuth(SIM_TOKEN), max_retries=0, on_wait="raise",
                        response_hooks=[counters.Okta429Counter(redis_url), lambda r: statuses.append(r.status_code)])
    for _ in range(30):
        try:
            client.get_page("/api/v1/users")
        except Exception:  # noqa: BLE001 - the 429s are what this counts
            pass
    seen_429 = statuses.count(429)
    assert seen_429 > 0 and statuses[0] == 200, statuses
    host = httpx.URL(sim.url).netloc.decode()

    # Deferrals: the engine's `wait` events, through the event sink the workers give the engine.
    sink = counters.DeferralCounter(redis_url)
    for reason in ("rate limiter: bucket /api/v1/users at 80%", "rate limiter: concurrency",
                   "retry 1/5 after: 429 E0000047 API call exceeded rate limit"):
        sink("wait", {"run_id": 1, "tenant_id": ids["acme"], "stream": "users", "seconds": 1.2, "reason": reason})
    sink("page", {"run_id": 1, "tenant_id": ids["acme"], "stream": "users", "items": 200})

    m = parse(render(registry_for(pg_url, redis_url, redis_url)))
    acme = ("tenant", "acme")
    assert m[("oktasync_sync_runs", (("state", "succeeded"), acme))] == 2
    assert m[("oktasync_sync_runs", (("state", "failed"), acme))] == 1
    # A state the tenant has no run in has no series (docs/operations.md: read it as 0).
    assert ("oktasync_sync_runs", (("state", "running"), acme)) not in m
    assert {dict(k[1])["state"] for k in m if k[0] == "oktasync_sync_runs"} == {"succeeded", "failed"}
    assert m[("oktasync_sync_pages", (("run_state", "succeeded"), acme))] == 4
    assert m[("oktasync_sync_items", (("run_state", "succeeded"), acme))] == 462
    assert m[("oktasync_sync_items", (("run_state", "failed"), acme))] == 400
    assert m[("oktasync_sync_items", (("run_state", "succeeded"), ("tenant", "globex")))] == 7
    assert m[("oktasync_tenant_enabled", (acme,))] == 1
    assert m[("oktasync_tenant_enabled", (("tenant", "globex"),))] == 0
    assert m[("oktasync_provisioning_requests", (("kind", "grant"), ("state", "succeeded"), acme))] == 2
    assert m[("oktasync_provisioning_requests", (("kind", "grant"), ("state", "dead"), acme))] == 1
    assert m[("oktasync_provisioning_requests", (("kind", "grant"), ("state", "queued"), acme))] == 1
    assert m[("oktasync_queue_messages", (("queue", "dispatch"),))] == 2
    assert m[("oktasync_queue_messages", (("queue", "sync"),))] == 0
    assert m[("oktasync_queue_messages", (("queue", "provisioning"),))] == 1
    assert m[("oktasync_okta_rate_limited_total", (("host", host),))] == seen_429
    assert m[("oktasync_sync_deferrals_total", (("reason", "limiter"), acme))] == 2
    assert m[("oktasync_sync_deferrals_total", (("reason", "rate_limited"), acme))] == 1
    assert all(m[("oktasync_metrics_source_up", (("source", s),))] == 1 for s in ("database", "broker", "redis"))


def test_a_source_down_is_a_metric_not_a_failed_scrape(store, pg_url):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    m = parse(render(registry_for(pg_url, dead, dead)))
    assert m[("oktasync_metrics_source_up", (("source", "database"),))] == 1
    assert m[("oktasync_metrics_source_up", (("source", "broker"),))] == 0
    assert m[("oktasync_metrics_source_up", (("source", "redis"),))] == 0


def test_metrics_command_serves_http_and_stops_on_sigterm(store, pg_url, redis_url):
    seed(store)
    port = free_port()
    env = {"PATH": str(BIN), "OKTASYNC_DATABASE_URL": pg_url, "OKTASYNC_BROKER_URL": redis_url,
           "OKTASYNC_REDIS_URL": redis_url}
    proc = subprocess.Popen([str(BIN / "oktasync"), "metrics", "--port", str(port), "--host", "127.0.0.1"],
                            env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")
        assert parse(resp.text)[("oktasync_sync_runs", (("state", "succeeded"), ("tenant", "acme")))] == 2
        assert httpx.get(f"http://127.0.0.1:{port}/nope", timeout=5).status_code == 404
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    redis.Redis.from_url(redis_url).close()


def test_freshness_seconds_since_success_and_lag_by_size_class(store, pg_url, redis_url):
    from datetime import timedelta

    from worker.store.tables import SyncRun, Tenant, utcnow
    from worker.store.tenants import create_tenant

    now = utcnow()
    with store() as s:
        def tenant_synced(name: str, users: int, due_ago: float, finished_ago: float) -> None:
            t = create_tenant(s, name, f"{name}.okta.com", {"api_token": SIM_TOKEN})
            s.flush()
            run = SyncRun(tenant_id=t.id, state="succeeded", due_at=now - timedelta(seconds=due_ago),
                          finished_at=now - timedelta(seconds=finished_ago),
                          counts={"resources_by_type": {"user": users}})
            s.add(run)
            s.flush()
            t.current_run_id = run.id

        tenant_synced("small1", 40, due_ago=125, finished_ago=100)  # lag 25 s
        tenant_synced("small2", 499, due_ago=4000, finished_ago=3500)  # lag 500 s
        tenant_synced("big", 20_000, due_ago=7200, finished_ago=3600)  # lag 3,600 s
        create_tenant(s, "never", "never.okta.com", {"api_token": SIM_TOKEN})
        s.commit()
        assert s.query(Tenant).count() == 4

    m = parse(render(registry_for(pg_url, redis_url, redis_url)))
    since = {dict(k[1])["tenant"]: v for k, v in m.items() if k[0] == "oktasync_tenant_seconds_since_success"}
    assert set(since) == {"small1", "small2", "big"}  # a tenant never synced has no age
    assert 100 <= since["small1"] < 160 and 3600 <= since["big"] < 3660

    def bucket(cls: str, le: str) -> float:
        return m[("oktasync_sync_lag_seconds_bucket", (("le", le), ("size_class", cls)))]

    assert bucket("small", "30.0") == 1 and bucket("small", "300.0") == 1 and bucket("small", "900.0") == 2
    assert bucket("small", "+Inf") == 2 and m[("oktasync_sync_lag_seconds_gsum", (("size_class", "small"),))] == 525
    assert bucket("large", "1800.0") == 0 and bucket("large", "3600.0") == 1
    assert bucket("medium", "+Inf") == 0


def test_a_scrape_runs_the_same_statements_for_few_and_many_tenants(store, pg_url, redis_url):
    """Grouped queries only: adding tenants, runs, streams, verify runs and provisioning requests
    adds series, not statements."""
    import sqlalchemy as sa
    from prometheus_client import CollectorRegistry

    from worker.observability.metrics import OktasyncCollector
    from worker.store.tables import ProvisioningRequest, SyncRun, SyncStream, utcnow
    from worker.store.tenants import create_tenant

    collector = OktasyncCollector(pg_url, redis_url, redis_url)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    statements: list[str] = []
    sa.event.listen(collector._db().kw["bind"], "before_cursor_execute",
                    lambda _c, _cur, sql, *_a: statements.append(sql))

    def add(first: int, count: int) -> None:
        with store() as s:
            for i in range(first, first + count):
                t = create_tenant(s, f"t{i}", f"t{i}.okta.com", {"api_token": SIM_TOKEN})
                s.flush()
                done, running = SyncRun(tenant_id=t.id, state="succeeded", counts={"pages": 2, "items": 9}), \
                    SyncRun(tenant_id=t.id, state="running")
                verify = SyncRun(tenant_id=t.id, state="succeeded", kind="verify", finished_at=utcnow(),
                                 counts={"drift": {"grants": {"missing": i, "extra": 1}}})
                s.add_all([done, running, verify])
                s.flush()
                t.current_run_id = done.id
                done.finished_at = utcnow()
                s.add_all([SyncStream(run_id=r.id, kind="users", state=st, pages=2, items=9)
                           for r, st in ((done, "done"), (running, "active"))])
                payload = {"entitlement": "group:00g1:member", "principal": f"user:00u{i}"}
                s.add(ProvisioningRequest(tenant_id=t.id, idempotency_key="k", kind="grant", payload=payload,
                                          payload_hash="0" * 64, state="dead"))
            s.commit()

    def scrape() -> tuple[int, dict]:
        statements.clear()
        got = parse(render(registry))
        return len(statements), got

    add(0, 2)
    few, _ = scrape()
    add(2, 30)
    many, got = scrape()
    assert few == many and few >= 5  # tenants, runs, current views, verifies, requests
    assert got[("oktasync_sync_pages", (("run_state", "succeeded"), ("tenant", "t31")))] == 2
    assert got[("oktasync_sync_items", (("run_state", "running"), ("tenant", "t31")))] == 9
    assert got[("oktasync_drift_grants", (("direction", "missing"), ("tenant", "t31")))] == 31
    assert got[("oktasync_provisioning_requests", (("kind", "grant"), ("state", "dead"), ("tenant", "t31")))] == 1
    assert ("oktasync_tenant_seconds_since_success", (("tenant", "t31"),)) in got

