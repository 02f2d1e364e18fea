"""One read-only-used oktasim for the connector tests (no test here changes it)."""

from __future__ import annotations

import pytest

from tests.conftest import Sim

TOKENS = {
    "read-only": "00sim-read-only-token-000000000000000000000",
    "app-group-admin": "00sim-app-group-admin-token-00000000000000",
    "super-admin": "00sim-super-admin-token-0000000000000000000",
}
# Rate limits scaled up: these tests check what is synced, not pacing (several syncs per minute).
SIZES = ["--users", "60", "--groups", "15", "--apps", "8", "--seed", "7", "--rate-limit-scale", "50"]


@pytest.fixture(scope="session")
def shared_sim():
    args = list(SIZES)
    for level, token in TOKENS.items():
        args += ["--api-token", f"{token}={level}"]
    s = Sim(args)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def shared_state(shared_sim):
    return shared_sim.state()
