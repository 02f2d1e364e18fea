"""`oktasync db`: manage the grant store's schema."""

from __future__ import annotations

import click

from worker.commands.database import DB_HELP, connect
from worker.store.db import (
    DatabaseURLError,
    database_url,
    make_engine,
    make_session_factory,
    normalize_url,
)


@click.group("db")
def db() -> None:
    """Manage the grant store database (schema migrations, credential key rotation)."""


def _shown(url: str) -> str:
    return normalize_url(url).render_as_string(hide_password=True)


@db.command("upgrade")
@click.option("--db", "url", metavar="URL", help=DB_HELP)
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def upgrade(url: str | None, revision: str) -> None:
    """Create or upgrade the grant store's tables (idempotent)."""
    from worker.store.migrate import migrate

    url = database_url(url)
    try:
        rev = migrate(url, revision=revision)
    except DatabaseURLError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"{_shown(url)}: at revision {rev}")


@db.command("current")
@click.option("--db", "url", metavar="URL", help=DB_HELP)
def current(url: str | None) -> None:
    """Show the schema revision of the database and the newest one shipped."""
    from worker.store.migrate import current_revision, head_revision

    url, engine = connect(url)
    try:
        rev = current_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"{_shown(url)}: at revision {rev or '(empty: run `oktasync db upgrade`)'}; newest {head_revision()}")


@db.command("rotate-credentials")
@click.option("--db", "url", metavar="URL", help=DB_HELP)
def rotate_credentials_cmd(url: str | None) -> None:
    """Re-encrypt every tenant's credentials with the newest key in $OKTASYNC_SECRET_KEY.

    Rotate keys in three steps: set OKTASYNC_SECRET_KEY=new,old (both decrypt, new writes use
    the new key), run this command, then drop the old key.
    """
    from worker.store.secrets import SecretKeyError, load_keys
    from worker.store.tenants import rotate_credentials

    url = database_url(url)
    try:
        keys = load_keys()
        engine = make_engine(url)
    except (SecretKeyError, DatabaseURLError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        with make_session_factory(engine)() as session:
            try:
                n = rotate_credentials(session, keys)
            except SecretKeyError as exc:
                raise click.ClickException(str(exc)) from None
            session.commit()
    finally:
        engine.dispose()
    click.echo(f"re-encrypted the credentials of {n} tenant(s) with the newest key")
