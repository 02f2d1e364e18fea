"""The suite's shared fixtures live in tests/support/fixtures.py (real Redis, real PostgreSQL, real
oktasim processes, Celery workers); helpers in tests/support/."""

from __future__ import annotations

import os

pytest_plugins = ["tests.support.fixtures"]


def pytest_report_header(config):
    return [
        f"REDIS_URL={os.environ.get('REDIS_URL', '(throwaway server)')}",
        f"DATABASE_URL={os.environ.get('DATABASE_URL', '(throwaway server)')}",
    ]
