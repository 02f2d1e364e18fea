"""Alembic environment: runs on the connection handed over by worker.store.migrate, or on an
engine from make_engine (sqlalchemy.url in the config, else $OKTASYNC_DATABASE_URL)."""

from __future__ import annotations

from alembic import context

from worker.store.db import make_engine
from worker.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("oktasync migrations run online only: `oktasync db upgrade --db URL`")
run_migrations_online()
