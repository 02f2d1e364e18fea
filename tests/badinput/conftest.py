"""Reuse the provisioning fixtures (real workers, a store with one tenant per token level)."""

from tests.provisioning.conftest import celery_app, secret_key, worker_env, workers  # noqa: F401 - fixtures
