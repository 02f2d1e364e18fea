"""Shared fixtures: real Redis, real PostgreSQL, real oktasim processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import httpx
import pytest

from tests.services import ServiceUnavailable, postgres_service, redis_service


@pytest.fixture(scope="session")
def redis_server():
    try:
        svc = redis_service()
    except ServiceUnavailable as exc:
        pytest.exit(str(exc), returncode=3)
    yield svc
    svc.stop()


@pytest.fixture
def redis_url(redis_server):
    """A Redis database emptied before the test (tests own the database they are given)."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server():
    try:
        svc = postgres_service()
    except ServiceUnavailable as exc:
        pytest.exit(str(exc), returncode=3)
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


class Sim:
    """A running oktasim process."""

    LISTEN = re.compile(r"^oktasim listening on (http://\S+)$")

    def __init__(self, args: list[str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oktasim", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline().strip()
        match = self.LISTEN.match(line)
        if not match:
            self.proc.kill()
            err = self.proc.stderr.read()
            raise RuntimeError(f"oktasim did not start: {line!r} {err[-2000:]}")
        self.url = match.group(1)
        self.admin = httpx.Client(base_url=self.url, timeout=30)

    def state(self) -> dict:
        return self.admin.get("/__sim/state").raise_for_status().json()

    def stats(self) -> dict:
        return self.admin.get("/__sim/stats").raise_for_status().json()

    def reset_stats(self) -> None:
        self.admin.post("/__sim/reset-stats").raise_for_status()

    def stop(self) -> None:
        self.admin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


SIM_TOKEN = "00sim-super-admin-token-0000000000000000000"


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


def pytest_report_header(config):
    return [
        f"REDIS_URL={os.environ.get('REDIS_URL', '(throwaway server)')}",
        f"DATABASE_URL={os.environ.get('DATABASE_URL', '(throwaway server)')}",
    ]
