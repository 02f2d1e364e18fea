"""Fixtures used by several test folders, registered for the whole suite by tests/conftest.py
(`pytest_plugins`): real Redis and PostgreSQL, oktasim processes, a local HTTP server, provisioning
workers and the chaos cluster. A folder's conftest may override any of them by name."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support.chaos import make_cluster, reap_orphans
from tests.support.cluster import ProvisioningWorker
from tests.support.http import LocalServer
from tests.support.paths import ROOT
from tests.support.services import Service, ServiceUnavailable, postgres_service, redis_service
from tests.support.sim import Sim


def _service_or_exit(start) -> Service:
    """The service, or the whole session stops saying what to install (never a silent skip)."""
    try:
        return start()
    except ServiceUnavailable as exc:
        pytest.exit(str(exc), returncode=3)


@pytest.fixture(scope="session")
def redis_server():
    svc = _service_or_exit(redis_service)
    yield svc
    svc.stop()


@pytest.fixture
def redis_url(redis_server):
    """A Redis database emptied before the test (tests own the database they are given; each
    pytest-xdist worker has its own)."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server():
    svc = _service_or_exit(postgres_service)
    yield svc
    svc.stop()


@pytest.fixture
def pg_url(postgres_server):
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    base = postgres_server.url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"oktasync_t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Run a test on both dialects: a SQLite file and a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def oktasim():
    """Factory: oktasim(["--users", "50", ...]) starts a simulator and stops it after the test."""
    started: list[Sim] = []

    def start(args: list[str] | None = None) -> Sim:
        sim = Sim(args or [])
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def local_server():
    """Factory: local_server(handler) starts a tiny real HTTP server (tests/support/http.py)."""
    started: list[LocalServer] = []

    def start(handler) -> LocalServer:
        srv = LocalServer(handler)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def secret_key(monkeypatch):
    from worker.store.secrets import generate_key

    key = generate_key()
    monkeypatch.setenv("OKTASYNC_SECRET_KEY", key)
    return key


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
    started: list[ProvisioningWorker] = []

    def start(concurrency: int = 2, **env: str) -> ProvisioningWorker:
        w = ProvisioningWorker({**worker_env, **env}, tmp_path / f"worker{len(started)}.log", concurrency)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()




@pytest.fixture
def chaos(pg_url, redis_url, tmp_path, monkeypatch):
    """The engine's Cluster with short recovery timeouts, on this test's Redis database."""
    c = make_cluster(pg_url, redis_url, tmp_path, monkeypatch)
    yield c
    c.stop()
    reap_orphans(c)
