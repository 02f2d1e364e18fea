"""Fixtures for provisioning tests: a simulator with three token levels, a migrated store with one
tenant per token level and an in-process runner. Real `celery -A worker worker -Q provisioning`
processes come from the shared `workers` fixture (tests/support/fixtures.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.provisioning import Recorder, Store, make_store, sim_args


@pytest.fixture
def sim(oktasim):
    return oktasim(sim_args())


@pytest.fixture
def store(pg_url, sim, secret_key) -> Store:
    return make_store(pg_url, sim.url)


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
