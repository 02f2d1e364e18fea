"""Sync options (baton-okta's flags) and the e-mail domain filter they drive."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

# A DNS name: labels of letters, digits and hyphens separated by dots (an IDN must be given as punycode).
_DOMAIN = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


class InvalidOptions(ValueError):
    """Sync options that cannot be used; the message names the option and what is wrong."""


def normalize_domains(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """`["Acme.com", "@corp.acme.com"]` -> ("acme.com", "corp.acme.com"); a comma-separated string works too.

    A leading '@' is accepted (people write '@acme.com'); anything else that is not a domain name is refused
    rather than silently matching nobody, as baton-okta does."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = values.split(",")
    out: list[str] = []
    for raw in values:
        if not isinstance(raw, str):
            raise InvalidOptions(f"filter_email_domains: {raw!r} is not a string")
        value = raw.strip().lower()
        if value.startswith("@"):
            value = value[1:]
        if not value:
            continue
        if not _DOMAIN.match(value):
            raise InvalidOptions(f"filter_email_domains: {raw!r} is not a domain name (e.g. acme.com)")
        if value not in out:
            out.append(value)
    return tuple(out)


@dataclass(frozen=True)
class SyncOptions:
    skip_app_groups: bool = False
    sync_inactive_apps: bool = False
    sync_secrets: bool = False
    sync_custom_roles: bool = False
    filter_email_domains: tuple[str, ...] = ()
    skip_secondary_emails: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name != "filter_email_domains" and not isinstance(getattr(self, f.name), bool):
                raise InvalidOptions(f"{f.name} must be true or false, not {getattr(self, f.name)!r}")
        object.__setattr__(self, "filter_email_domains", normalize_domains(self.filter_email_domains))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["filter_email_domains"] = list(self.filter_email_domains)
        return data

    def fingerprint(self) -> str:
        """A short hash of the options not at their default; a run records the one it synced with, so
        a change since the tenant's last successful run can be told (incremental sync then needs a
        full run first). An option added later with its default leaves every fingerprint as it was."""
        defaults = type(self)().to_dict()
        return _hash({k: v for k, v in self.to_dict().items() if v != defaults[k]})

    def matches(self, fingerprint: str | None) -> bool:
        """True when `fingerprint` (a run's or cursor's) is of these options: this version's, or one
        written before fingerprints left defaults out (so upgrading forces no full run)."""
        return fingerprint is not None and fingerprint in (self.fingerprint(), *self._legacy_fingerprints())

    def _legacy_fingerprints(self) -> tuple[str, ...]:
        """Hashes of every option, as written before: with today's options, and without those added
        meanwhile when they are at their default (as they were then)."""
        data, defaults = self.to_dict(), type(self)().to_dict()
        legacy = [_hash(data)]
        if all(data[k] == defaults[k] for k in _ADDED_AFTER_FULL_HASH):
            legacy.append(_hash({k: v for k, v in data.items() if k not in _ADDED_AFTER_FULL_HASH}))
        return tuple(legacy)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SyncOptions:
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidOptions(f"unknown sync option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def user_allowed(self, profile: Mapping[str, Any] | None) -> bool:
        return email_allowed(profile, self.filter_email_domains)


# Options added while fingerprints hashed every option (their absence then meant their default).
_ADDED_AFTER_FULL_HASH = ("skip_secondary_emails",)


def _hash(data: Mapping[str, Any]) -> str:
    canonical = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def candidate_emails(profile: Mapping[str, Any] | None) -> list[str]:
    """email, secondEmail and login (when it holds an '@'), as baton-okta reads them."""
    if not isinstance(profile, Mapping):
        return []
    out = []
    for key in ("email", "secondEmail", "login"):
        value = profile.get(key)
        if isinstance(value, str) and "@" in value:
            out.append(value)
    return out


def email_allowed(profile: Mapping[str, Any] | None, domains: tuple[str, ...]) -> bool:
    """True when no filter is set, or one candidate's domain (after the last '@') is exactly a listed one."""
    if not domains:
        return True
    for address in candidate_emails(profile):
        if address.rsplit("@", 1)[1].strip().lower() in domains:
            return True
    return False
