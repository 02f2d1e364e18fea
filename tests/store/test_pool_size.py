"""Database pools sized for many workers: a worker process keeps what it runs at once (a prefork
child one task: 2 connections; a threads pool: concurrency + 1), OKTASYNC_DB_POOL_SIZE overrides."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from worker import config
from worker.store.db import make_engine
from worker.tasks import base


@pytest.mark.parametrize(("pool", "concurrency", "size"), [
    ("prefork", 8, 2), ("solo", 1, 2), ("threads", 8, 9), ("gevent", 100, 101),
    ("<class 'celery.concurrency.thread.TaskPool'>", 4, 5),
])
def test_pool_size_follows_what_a_process_runs_at_once(pool, concurrency, size):
    assert config.Settings().pool_size_for(pool, concurrency) == size
    assert config.Settings(db_pool_size=3).pool_size_for(pool, concurrency) == 3


def test_the_setting_is_read_and_checked(monkeypatch):
    monkeypatch.setenv("OKTASYNC_DB_POOL_SIZE", "4")
    assert config.load().db_pool_size == 4
    monkeypatch.setenv("OKTASYNC_DB_POOL_SIZE", "two")
    with pytest.raises(config.ConfigError, match="OKTASYNC_DB_POOL_SIZE='two' is not a number"):
        config.load()


def test_the_worker_records_its_pool_before_children_fork(monkeypatch):
    monkeypatch.setattr(base, "_worker_pool", {})
    # What Celery's worker_init hands over: the WorkController, its pool and concurrency.
    base._on_worker_init(sender=SimpleNamespace(pool_cls="threads", concurrency=6))
    assert config.Settings().pool_size_for(base._worker_pool["kind"], base._worker_pool["concurrency"]) == 7


def test_a_postgresql_engine_keeps_the_pool_it_is_given(pg_url):
    engine = make_engine(pg_url, pool_size=2)
    with engine.connect() as a, engine.connect() as b, engine.connect() as c:  # a burst: overflow opens one
        assert all(x.exec_driver_sql("select 1").scalar() == 1 for x in (a, b, c))
        assert engine.pool.size() == 2 and engine.pool.overflow() == 1
    assert engine.pool.checkedin() == 2  # only the kept ones stay open
    engine.dispose()
