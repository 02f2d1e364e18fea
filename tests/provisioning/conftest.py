"""Fixtures for provisioning tests: a simulator with three token levels, a migrated store with
one tenant per token level, an in-process runner, and real `celery -A worker worker -Q provisioning`
processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

SUPER = "00sim-super-admin-token-0000000000000000000"
AGA = "00sim-app-group-admin-token-000000000000000"
RO = "00sim-read-only-token-000000000000000000000"
TOKENS = {"super": SUPER, "aga": AGA, "ro": RO}
ROOT = Path(__file__).resolve().parents[2]


def sim_args(*extra: str) -> list[str]:
    return ["--users", "40", "--api-token", f"{SUPER}=super-admin", "--api-token", f"{AGA}=app-group-admin",
            "--api-token", f"{RO}=read-only", *extra]


@dataclass
class Store:
    url: str
    sessions: Any
    tenants: dict[str, int]  # level -> tenant id ("super", "aga", "ro"), names are the levels

    def session(self) -> Any:
        return self.sessions()

    def request(self, rid: int) -> Any:
        from worker.store.tables import ProvisioningRequest

        with self.sessions() as s:
            return s.get(ProvisioningRequest, rid)

    def view(self, tenant: str = "super") -> set[str]:
        """Grant ids in the tenant's current view."""
        from worker.store.tables import GrantRow, Tenant

        with self.sessions() as s:
            run = s.scalar(sa.select(Tenant.current_run_id).where(Tenant.id == self.tenants[tenant]))
            return set(s.scalars(sa.select(GrantRow.id).where(GrantRow.run_id == run)))

    def resources(self, tenant: str = "super") -> set[str]:
        from worker.store.tables import ResourceRow, Tenant

        with self.sessions() as s:
            run = s.scalar(sa.select(Tenant.current_run_id).where(Tenant.id == self.tenants[tenant]))
            return set(s.scalars(sa.select(ResourceRow.id).where(ResourceRow.run_id == run)))


@pytest.fixture
def secret_key(monkeypatch):
    from worker.store.secrets import generate_key

    key = generate_key()
    monkeypatch.setenv("OKTASYNC_SECRET_KEY", key)
    return key


def make_store(url: str, sim_url: str) -> Store:
    """Migrate `url`, add tenants super/aga/ro on the simulator, each with an empty current view."""
    from worker.store.db import make_engine, make_session_factory
    from worker.store.migrate import migrate
    from worker.store.tables import SyncRun, Tenant
    from worker.store.tenants import create_tenant

    migrate(url)
    sessions = make_session_factory(make_engine(url))
    ids = {}
    with sessions() as s:
        for level, token in TOKENS.items():
            t = create_tenant(s, level, "example.okta.com", {"api_token": token})
            # The store accepts only Okta host names; the simulator is plain http on loopback.
            s.execute(sa.update(Tenant).where(Tenant.id == t.id).values(domain=sim_url))
            run = SyncRun(tenant_id=t.id, state="succeeded")
            s.add(run)
            s.flush()
            t.current_run_id = run.id
            ids[level] = t.id
        s.commit()
    return Store(url, sessions, ids)


@pytest.fixture
def sim(oktasim):
    return oktasim(sim_args())


@pytest.fixture
def store(pg_url, sim, secret_key) -> Store:
    return make_store(pg_url, sim.url)


class Recorder:
    """Celery app stand-in for in-process tests: keeps what would have been published."""

    def __init__(self):
        self.sent: list[tuple[str, list[Any]]] = []

    def send_task(self, name: str, args: list[Any] | None = None, **_kw: Any) -> None:
        self.sent.append((name, list(args or [])))


@pytest.fixture
def run_inline(store):
    """Submit through the real intake and run the request in this process until it is done."""
    from worker.provisioning import runner, service

    client_for = runner.default_client_factory()
    policy = runner.RetryPolicy(max_retries=2, base=0.05, cap=0.2)

    def run(kind: str, payload: dict, key: str | None = None, tenant: str = "super", **_kw: Any) -> Any:
        app = Recorder()
        with store.sessions() as s:
            ref = service.record_and_publish(s, app, tenant, kind, payload, key)
        deadline = time.monotonic() + 60
        while app.sent and time.monotonic() < deadline:
            app.sent.clear()
            step = runner.run_request(store.sessions, ref.id, client_for, policy)
            if step.done:
                break
            time.sleep(min(step.countdown, 1.0))
            app.sent.append(("again", [ref.id]))
        return store.request(ref.id)
    return run


class Worker:
    """A real `celery -A worker worker -Q provisioning` process group."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int = 2):
        self.log = log
        self.fh = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", "provisioning", "-c", str(concurrency),
             "-P", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n",
             f"prov{time.monotonic_ns()}@%h", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=self.fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if b" ready." in log.read_bytes():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"celery worker did not start:\n{log.read_text()[-3000:]}")

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.fh.close()


@pytest.fixture
def worker_env(redis_url, pg_url, secret_key) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OKTASYNC_BROKER_URL=redis_url, OKTASYNC_REDIS_URL=redis_url, OKTASYNC_DATABASE_URL=pg_url,
               OKTASYNC_SECRET_KEY=secret_key, OKTASYNC_VISIBILITY_TIMEOUT="60",
               OKTASYNC_PROVISION_RETRY_BASE="0.2", OKTASYNC_PROVISION_RETRY_CAP="1",
               OKTASYNC_PROVISION_MAX_RETRIES="2", OKTASYNC_PROVISION_LEASE="8", PYTHONPATH=str(ROOT))
    return env


@pytest.fixture
def celery_app(worker_env, monkeypatch):
    """The product's Celery app configured like the workers (same broker), for publishing."""
    for k, v in worker_env.items():
        if k.startswith("OKTASYNC_"):
            monkeypatch.setenv(k, v)
    from worker import config
    from worker.app import make_app

    return make_app(config.load())


@pytest.fixture
def workers(worker_env, tmp_path):
    started: list[Worker] = []

    def start(concurrency: int = 2, **env: str) -> Worker:
        w = Worker({**worker_env, **env}, tmp_path / f"worker{len(started)}.log", concurrency)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def wait_done(store: Store, rid: int, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = store.request(rid)
        if row.state in ("succeeded", "failed", "dead"):
            return row
        time.sleep(0.1)
    raise AssertionError(f"request {rid} not done after {timeout}s: {row.state} {row.error}")
