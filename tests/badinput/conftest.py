"""Reuse the provisioning fixtures (real workers, a store with one tenant per token level)."""

from tests.okta.conftest import local_server  # noqa: F401,E402 - fixture: a tiny real HTTP server
from tests.provisioning.conftest import celery_app, secret_key, worker_env, workers  # noqa: F401 - fixtures
