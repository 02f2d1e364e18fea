"""Opening the grant store from a command: the --db option's help, and an engine or a click error
that says what to do."""

from __future__ import annotations

import click
import sqlalchemy as sa

from worker.store.db import ENV_VAR, DatabaseURLError, database_url, make_engine

DB_HELP = f"Database URL (sqlite:///PATH or postgresql://user@host/db); default ${ENV_VAR} or sqlite:///oktasync.db."


def connect(url: str | None) -> tuple[str, sa.Engine]:
    """The URL in effect (--db, else $OKTASYNC_DATABASE_URL, else the default) and an engine on it."""
    url = database_url(url)
    try:
        return url, make_engine(url)
    except DatabaseURLError as exc:
        raise click.UsageError(str(exc)) from None


def open_engine(url: str | None) -> sa.Engine:
    """An engine on an existing, migrated grant store, or a click error saying what to do."""
    _, engine = connect(url)
    try:
        present = sa.inspect(engine).has_table("tenants")
    except sa.exc.OperationalError as exc:
        raise click.ClickException(f"cannot open the database: {exc.orig}") from None
    if not present:
        engine.dispose()
        raise click.ClickException(
            f"{engine.url.render_as_string(hide_password=True)} has no oktasync tables; "
            f"run `oktasync db upgrade --db URL` first")
    return engine
