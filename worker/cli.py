"""The `oktasync` command.

Run without a subcommand it syncs one org in embedded mode (like baton-okta's one-shot mode);
subcommands manage the grant store, tenants, runs and provisioning. Each command group lives in
its own module under worker/commands/ and is registered below.
"""

from __future__ import annotations

import importlib

import click

from worker.commands.cliopts import credential_options, sync_options
from worker.commands.provision import maybe_run_oneshot, oneshot_options

# (module, attribute) of each command added to the `oktasync` group.
COMMANDS: list[tuple[str, str]] = [
    ("worker.commands.db", "db"),
    ("worker.commands.keygen", "keygen"),
    ("worker.commands.grants", "grants"),
    ("worker.commands.grants", "resources"),
    ("worker.commands.changes", "changes"),
    ("worker.commands.export", "export"),
    ("worker.commands.check", "check"),
    ("worker.commands.provision", "provision"),
    ("worker.commands.provision", "action"),
    ("worker.commands.tenant", "tenant"),
    ("worker.commands.sync", "sync"),
    ("worker.commands.sync", "runs"),
    ("worker.commands.verify", "verify"),
    ("worker.commands.demo", "demo"),
    ("worker.commands.health", "health"),
    ("worker.observability.serve", "metrics"),
    ("worker.observability.flower", "flower"),
]


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--domain", envvar="OKTASYNC_DOMAIN", default=None,
              help="Okta org to sync in embedded mode, e.g. acme.okta.com. [env OKTASYNC_DOMAIN]")
@credential_options
@sync_options
@oneshot_options
@click.option("--file", "file", envvar="OKTASYNC_FILE", default="sync.db", show_default=True,
              help="SQLite file to sync into (created and migrated as needed). [env OKTASYNC_FILE]")
@click.option("--concurrency", envvar="OKTASYNC_CONCURRENCY", type=click.IntRange(1, 256), default=8,
              show_default=True, help="Requests in flight at once; 1 crawls one request at a time. "
              "[env OKTASYNC_CONCURRENCY]")
@click.option("--rate-limit-share", envvar="OKTASYNC_RATE_LIMIT_SHARE", type=click.FloatRange(0.01, 1.0),
              default=0.8, show_default=True,
              help="Share of each Okta rate limit the sync may use. [env OKTASYNC_RATE_LIMIT_SHARE]")
@click.option("--full", is_flag=True, default=False,
              help="Run a full sync even when the file holds a complete one (which is otherwise "
              "synced incrementally, from its change cursor).")
@click.pass_context
def main(ctx: click.Context, domain: str | None, file: str, concurrency: int, rate_limit_share: float,
         full: bool, **flags: object) -> None:
    """oktasync: sync who has access to what in Okta, and change it.

    With --domain and credentials (and no command) it syncs that org once, in this process,
    into a SQLite file (embedded mode, like baton-okta's one-shot mode):

      oktasync --domain acme.okta.com --api-token $TOKEN --file acme.db

    Run again on the same file and it syncs incrementally (only what changed); --full forces a
    full sync.

    Run `oktasync demo` to sync a simulated org, or see `oktasync COMMAND --help`.
    """
    maybe_run_oneshot(ctx, domain, flags)  # --grant-entitlement, --revoke-grant, --invoke-action, --delete-resource
    if ctx.invoked_subcommand is not None:
        return
    if not domain:
        if full or any(v for v in flags.values()):
            raise click.UsageError("--domain is required to sync (or set OKTASYNC_DOMAIN)")
        click.echo(ctx.get_help())
        return
    from worker.commands.embedded_cli import run_from_cli

    ctx.exit(run_from_cli(domain, file=file, concurrency=concurrency, rate_limit_share=rate_limit_share, full=full,
                          **flags))


for module_name, attr in COMMANDS:
    main.add_command(getattr(importlib.import_module(module_name), attr))
