"""One read-only-used oktasim for the connector tests (no test here changes it)."""

from __future__ import annotations

import pytest

from tests.support.connector import SIZES, TOKENS
from tests.support.sim import Sim


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
