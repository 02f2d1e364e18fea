"""The `oktasync` command.

Run without a subcommand it syncs one org in embedded mode (like baton-okta's one-shot mode);
subcommands manage the grant store, tenants, runs and provisioning. Each command group lives in
its own module under worker/commands/ and is registered below.
"""

from __future__ import annotations

import importlib

import click

# (module, attribute) of each command added to the `oktasync` group.
COMMANDS: list[tuple[str, str]] = [
    ("worker.commands.db", "db"),
    ("worker.commands.check", "check"),
]


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """oktasync: sync who has access to what in Okta, and change it.

    Run `oktasync demo` to sync a simulated org, or see `oktasync COMMAND --help`.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for module_name, attr in COMMANDS:
    main.add_command(getattr(importlib.import_module(module_name), attr))
