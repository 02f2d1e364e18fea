"""The real `oktasync` command in-process (click's runner) on a real store, SQLite or PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from click.testing import CliRunner, Result

from worker.cli import main
from worker.store.db import make_engine, make_session_factory
from worker.store.migrate import migrate
from worker.store.secrets import generate_key


@dataclass
class Cli:
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None, **env: str) -> Result:
        return CliRunner().invoke(main, list(args), env={**self.env, **env}, input=input, catch_exceptions=False)


@pytest.fixture
def cli(db_url, monkeypatch) -> Cli:
    key = generate_key()
    monkeypatch.setenv("OKTASYNC_SECRET_KEY", key)  # for the test's own reads of the store
    return Cli({"OKTASYNC_DATABASE_URL": db_url, "OKTASYNC_SECRET_KEY": key})


@pytest.fixture
def sessions(db_url):
    migrate(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()
