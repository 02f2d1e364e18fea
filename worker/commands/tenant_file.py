"""The tenant file of `oktasync tenant import` and `tenant export`: one JSON object per line.

    {"name": "acme", "domain": "acme.okta.com", "api_token": {"env": "ACME_TOKEN"}, "interval": 86400,
     "incremental_interval": 60, "verify_interval": null, "sync_custom_roles": true,
     "filter_email_domains": "acme.com", "paused": false}

Keys are the `tenant add` flags with underscores (plus `paused`); values pass the same checks as
the flags (tenant_settings); `incremental_interval` and `verify_interval` are off when 0, "off" or
null. A secret (`api_token`, `okta_private_key`) is either the value or {"env": "VARIABLE"}, read
from the environment. A key left out keeps the tenant's current value (a new tenant gets `tenant
add`'s default), so the output of `export`, which holds no secret, imports as "unchanged". Blank lines and lines starting with # are skipped.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from cryptography.fernet import MultiFernet

from worker.commands.cliopts import credentials_from, options_from
from worker.commands.tenant_settings import (
    DEFAULT_INTERVAL,
    check_interval,
    check_optional_interval,
    tenant_changes,
)

SECRETS = ("api_token", "okta_private_key")
CREDENTIALS = ("api_token", "okta_client_id", "okta_private_key", "okta_private_key_id")
BOOLEAN_OPTIONS = ("skip_app_groups", "sync_inactive_apps", "sync_secrets", "sync_custom_roles",
                   "skip_secondary_emails")
OPTIONS = (*BOOLEAN_OPTIONS, "filter_email_domains")
OPTIONAL_INTERVALS = ("incremental_interval", "verify_interval")  # 0, "off" or null: off
KEYS = ("name", "domain", *CREDENTIALS, *OPTIONS, "interval", *OPTIONAL_INTERVALS, "paused")


class LineError(ValueError):
    """A line that cannot be applied; the message names keys, never a secret's value."""


@dataclass(frozen=True)
class Line:
    number: int
    fields: dict[str, Any]

    @property
    def name(self) -> str:
        return self.fields["name"]

    def holds_secret(self) -> bool:
        """A secret written in the file itself (not named by an environment variable)."""
        return any(isinstance(self.fields.get(k), str) for k in SECRETS)


@dataclass(frozen=True)
class BadLine:
    number: int
    name: str | None  # when the line names its tenant
    error: str


def parse(text: str) -> Iterator[Line | BadLine]:
    """Each line as a Line, or a BadLine saying what is wrong when it is not a well-formed tenant."""
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            fields = json.loads(raw)
        except json.JSONDecodeError as exc:  # the message quotes no input
            yield BadLine(number, None, f"not JSON: {exc.msg} (column {exc.colno})")
            continue
        try:
            yield Line(number, _check_types(fields))
        except LineError as exc:
            name = fields.get("name") if isinstance(fields, dict) else None
            yield BadLine(number, name if isinstance(name, str) else None, str(exc))


def _check_types(fields: Any) -> dict[str, Any]:
    """JSON types only; the values themselves are checked where the flags' values are."""
    if not isinstance(fields, dict):
        raise LineError("not a JSON object")
    unknown = sorted(set(fields) - set(KEYS))
    if unknown:
        raise LineError(f"unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(KEYS)}")
    if not isinstance(fields.get("name"), str):
        raise LineError("'name' is required and must be a string")
    for key in ("domain", "okta_client_id", "okta_private_key_id"):
        if key in fields and not isinstance(fields[key], str):
            raise LineError(f"{key!r} must be a string")
    for key in SECRETS:
        value = fields.get(key)
        if key in fields and not (isinstance(value, str) or _env_name(value)):
            raise LineError(f"{key!r} must be a string or {{\"env\": \"VARIABLE\"}}")  # the value is not echoed
    if "interval" in fields and (not isinstance(fields["interval"], int) or isinstance(fields["interval"], bool)):
        raise LineError("'interval' must be a whole number of seconds")
    for key in OPTIONAL_INTERVALS:
        value = fields.get(key)
        seconds = isinstance(value, int) and not isinstance(value, bool)
        if key in fields and not (value is None or value == "off" or seconds):
            raise LineError(f"{key!r} must be a whole number of seconds, or 0, \"off\" or null (off)")
    for key in (*BOOLEAN_OPTIONS, "paused"):
        if key in fields and not isinstance(fields[key], bool):
            raise LineError(f"{key!r} must be true or false")
    domains = fields.get("filter_email_domains")
    if "filter_email_domains" in fields and not (
            isinstance(domains, str) or isinstance(domains, list) and all(isinstance(d, str) for d in domains)):
        raise LineError("'filter_email_domains' must be a string (a.com,b.com) or a list of strings")
    return fields


def _env_name(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str) and value["env"]:
        return value["env"]
    return None


def refuse_if_others_can_read(path: Path) -> None:
    """As ssh does with a private key: a file with secrets that group or others can read is refused."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise click.UsageError(f"{path} holds secrets and other users can read it (mode {mode:04o}): "
                               f"run `chmod 600 {path}`, or name the secrets by environment variable "
                               "({\"api_token\": {\"env\": \"VARIABLE\"}})")


def _secret(fields: Mapping[str, Any], key: str, environ: Mapping[str, str]) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if value == "-":  # the flags' "read standard input" has no meaning inside a file
        raise LineError(f"{key!r}: '-' (standard input) works only for the command-line flag")
    name = _env_name(value)
    if name is None:
        return value
    got = environ.get(name, "")
    if not got.strip():
        raise LineError(f"{key!r}: environment variable {name} is not set or empty")
    return got


def apply(session: Any, line: Line, tenants: dict[str, Any], keys: MultiFernet,
          environ: Mapping[str, str] = os.environ) -> str:
    """Add or update the line's tenant in `session` (the caller flushes and commits); returns what
    happened: "added", "updated (fields)" or "unchanged". A refused line changes nothing: every
    check runs before the first change. `tenants` maps names to rows and is kept current."""
    from worker.store.tenants import change_tenant, new_tenant

    f = line.fields
    row = tenants.get(line.name)
    if row is None and not any(k in f for k in CREDENTIALS):
        raise LineError("a new tenant needs credentials: 'api_token', or 'okta_client_id', 'okta_private_key' "
                        "and 'okta_private_key_id'")
    creds = credentials_from(_secret(f, "api_token", environ), f.get("okta_client_id"),
                             _secret(f, "okta_private_key", environ), f.get("okta_private_key_id"),
                             required=row is None)
    option_flags = {k: f.get(k) for k in OPTIONS}
    interval = check_interval(f["interval"]) if "interval" in f else None
    incremental, verify = (check_optional_interval(f[k], k) if k in f else None for k in OPTIONAL_INTERVALS)
    if row is None:
        if "domain" not in f:
            raise LineError("'domain' is required for a new tenant")
        options = options_from(**option_flags).to_dict()
        row = new_tenant(line.name, f["domain"], creds or {}, options=options,
                         sync_interval=interval or DEFAULT_INTERVAL, incremental_interval=incremental or None,
                         verify_interval=verify or None, enabled=not f.get("paused", False), keys=keys)
        session.add(row)
        tenants[line.name] = row
        return "added"
    changes = tenant_changes(row, domain=f.get("domain"), credentials=creds, option_flags=option_flags,
                             interval=interval, incremental_interval=incremental, verify_interval=verify,
                             enabled=None if "paused" not in f else not f["paused"], keys=keys)
    if not changes:
        return "unchanged"
    change_tenant(row, **changes, keys=keys)
    return f"updated ({', '.join(sorted(k for k in changes if not k.startswith('next_')))})"


def export_line(row: Any) -> str:
    """The tenant as an import line: every setting but its credentials."""
    options = options_from(None, None, None, None, None, base=row.options).to_dict()
    return json.dumps({"name": row.name, "domain": row.domain, **options, "interval": row.sync_interval,
                       "incremental_interval": row.incremental_interval, "verify_interval": row.verify_interval,
                       "paused": not row.enabled})
