"""A tenant's settings as `tenant add|update` flags or `tenant import` lines give them: one set of
checks (cliopts for credentials and options, the store for name and domain, INTERVAL for the
interval) and one way to turn wanted values into the changes a tenant needs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from cryptography.fernet import MultiFernet

from worker.commands.cliopts import options_from

INTERVAL = click.IntRange(1)  # seconds between the starts of two syncs
DEFAULT_INTERVAL = 3600


def check_interval(value: int) -> int:
    """`value` as an interval, refused as `--interval` would refuse it."""
    try:
        return int(INTERVAL.convert(value, None, None))
    except click.BadParameter as exc:
        exc.param_hint = "interval"
        raise


def tenant_changes(row: Any, *, domain: str | None = None, credentials: dict[str, str] | None = None,
                   option_flags: dict[str, Any] | None = None, interval: int | None = None,
                   enabled: bool | None = None, keys: MultiFernet | None = None) -> dict[str, Any]:
    """The update_tenant() arguments that give tenant `row` these values; None leaves a setting as
    it is, and a value it already has is no change (so re-importing a file changes nothing).
    `option_flags` holds the five sync option flags (None: not given). Raises click errors for bad
    options (the flags' messages)."""
    from worker.store.tenants import tenant_credentials

    changes: dict[str, Any] = {}
    if domain is not None and domain != row.domain:
        changes["domain"] = domain
    if credentials is not None and credentials != dict(tenant_credentials(row, keys)):
        changes["credentials"] = credentials
    if option_flags and any(v is not None for v in option_flags.values()):
        wanted = options_from(**option_flags, base=row.options).to_dict()
        if wanted != options_from(**dict.fromkeys(option_flags), base=row.options).to_dict():
            changes["options"] = wanted
    if interval is not None and interval != row.sync_interval:
        changes["sync_interval"] = interval
        if row.next_sync_at is not None and row.sync_interval:
            # The due time was set from the old interval; move it so the new one applies now.
            changes["next_sync_at"] = row.next_sync_at + timedelta(seconds=interval - row.sync_interval)
    if enabled is not None and enabled != row.enabled:
        changes["enabled"] = enabled
    return changes
