"""Reuse the chaos cluster (real workers on our own Redis database) and the local HTTP server."""

from tests.chaos.conftest import chaos  # noqa: F401 - fixture
from tests.okta.conftest import local_server  # noqa: F401 - fixture
