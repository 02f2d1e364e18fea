"""Apply the grant store's Alembic migrations (shipped inside the package)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from worker.store.db import SQLITE_BEGIN_OPTION, database_url, make_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(url: str | None = None, *, engine: sa.Engine | None = None, revision: str = "head") -> str | None:
    """Upgrade the database at `url` (default: $OKTASYNC_DATABASE_URL or ./oktasync.db) to `revision`.

    Safe to call on every start (the embedded mode does): an up-to-date database is left alone.
    Returns the revision the database is at afterwards.
    """
    own = engine is None
    engine = engine or make_engine(database_url(url))
    try:
        if revision == "head" and current_revision(engine) == head_revision():
            return head_revision()
        cfg = alembic_config()
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # take the write lock first so two processes starting together queue, not fail
                conn = conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        return current_revision(engine)
    finally:
        if own:
            engine.dispose()


