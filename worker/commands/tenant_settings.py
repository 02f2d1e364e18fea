"""A tenant's settings as `tenant add|update` flags or `tenant import` lines give them: one set of
checks (cliopts for credentials and options, the store for name, domain and how the intervals
relate, INTERVAL and OPTIONAL_INTERVAL for the intervals) and one way to turn wanted values into
the changes a tenant needs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click
from cryptography.fernet import MultiFernet

from worker.commands.cliopts import options_from

INTERVAL = click.IntRange(1)  # seconds between the starts of two syncs
DEFAULT_INTERVAL = 3600


class OptionalInterval(click.ParamType):
    """Seconds between the starts of two runs of a kind that may be off: 0 or "off" turns it off
    (returned as 0, so that None still means "not given")."""

    name = "seconds|off"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, str) and value.strip().lower() == "off":
            return 0
        try:
            seconds = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a whole number of seconds or 'off'", param, ctx)
        if isinstance(value, (bool, float)) or seconds < 0:
            self.fail(f"{value!r} is not a whole number of seconds (> 0), or 0 or 'off' to turn it off", param, ctx)
        return seconds


OPTIONAL_INTERVAL = OptionalInterval()


def check_interval(value: int) -> int:
    """`value` as an interval, refused as `--interval` would refuse it."""
    try:
        return int(INTERVAL.convert(value, None, None))
    except click.BadParameter as exc:
        exc.param_hint = "interval"
        raise


def check_optional_interval(value: Any, key: str) -> int:
    """`value` (seconds, 0, "off" or None) as `--incremental-interval`/`--verify-interval` take it: 0 is off."""
    if value is None:
        return 0
    try:
        return OPTIONAL_INTERVAL.convert(value, None, None)
    except click.BadParameter as exc:
        exc.param_hint = key
        raise


def _moved(due: datetime, old: int, new: int) -> datetime:
    """A due time set from the old interval, moved so that the new one applies now."""
    return due + timedelta(seconds=new - old)


def tenant_changes(row: Any, *, domain: str | None = None, credentials: dict[str, str] | None = None,
                   option_flags: dict[str, Any] | None = None, interval: int | None = None,
                   incremental_interval: int | None = None, verify_interval: int | None = None,
                   enabled: bool | None = None, keys: MultiFernet | None = None) -> dict[str, Any]:
    """The update_tenant() arguments that give tenant `row` these values; None leaves a setting as
    it is, and a value it already has is no change (so re-importing a file changes nothing).
    `option_flags` holds the five sync option flags (None: not given); an incremental or verify
    interval of 0 turns it off. Raises click errors for bad options (the flags' messages)."""
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
            changes["next_sync_at"] = _moved(row.next_sync_at, row.sync_interval, interval)
    for given, field, due in ((incremental_interval, "incremental_interval", "next_incremental_at"),
                              (verify_interval, "verify_interval", "next_verify_at")):
        wanted = None if given == 0 else given
        if given is not None and wanted != getattr(row, field):
            changes[field] = wanted
            if wanted is not None and getattr(row, field) is not None and getattr(row, due) is not None:
                changes[due] = _moved(getattr(row, due), getattr(row, field), wanted)
            # turned on or off: the store sets the due time (due at once, or none)
    if enabled is not None and enabled != row.enabled:
        changes["enabled"] = enabled
    return changes
