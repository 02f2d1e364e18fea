"""Fixtures for the engine tests: real Celery worker and Beat processes on a real Redis and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.cluster import Cluster


@pytest.fixture
def cluster(pg_url, redis_url, tmp_path, monkeypatch):
    """Env + database for the distributed mode on this test's (emptied) Redis database."""
    c = Cluster(pg_url, redis_url, tmp_path)
    for key, value in c.env.items():
        if key.startswith("OKTASYNC_"):
            monkeypatch.setenv(key, value)
    yield c
    c.stop()
