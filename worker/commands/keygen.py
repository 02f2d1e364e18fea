"""`oktasync keygen`: print a new key for OKTASYNC_SECRET_KEY."""

from __future__ import annotations

import click

from worker.store.secrets import ENV_VAR, generate_key


@click.command("keygen")
def keygen() -> None:
    """Print a new random key for $OKTASYNC_SECRET_KEY (encrypts tenant credentials at rest).

    To rotate: put the new key first and keep the old ones after it, comma-separated
    (OKTASYNC_SECRET_KEY=new,old); old credentials still decrypt and new writes use the new key.
    """
    click.echo(generate_key())
    click.echo(f"# export {ENV_VAR}=<the key above>  (newest first when rotating: new,old)", err=True)
