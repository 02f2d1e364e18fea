"""Chaos fixtures: a restartable throwaway Redis of one test (the `chaos` cluster itself is shared
with the security tests, in tests/support/fixtures.py)."""

from __future__ import annotations

import pytest

from tests.support.chaos import OwnRedis


@pytest.fixture
def own_redis():
    r = OwnRedis()
    yield r
    r.close()
