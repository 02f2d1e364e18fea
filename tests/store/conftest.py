"""Fixtures for grant store tests: a migrated database on both dialects (helpers in
tests/support/store.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.store import Store
from worker.store.db import make_engine, make_session_factory
from worker.store.migrate import migrate


@pytest.fixture
def store(db_url, secret_key) -> Iterator[Store]:
    migrate(db_url)
    engine = make_engine(db_url)
    yield Store(db_url, engine, make_session_factory(engine))
    engine.dispose()
