"""Tenants (Okta orgs): create, read, update, list, remove, with credentials encrypted at rest.

Credentials are a dict: {"api_token": ...} (SSWS) or {"client_id", "private_key", "key_id"?}
(OAuth service app, private_key_jwt). They are stored only as a Fernet token in
tenants.credentials; use `tenant_credentials(tenant)` to get them back when calling Okta.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import MultiFernet
from sqlalchemy.orm import Session

from worker.store.secrets import Credentials, decrypt_credentials, encrypt_credentials, reencrypt
from worker.store.tables import VERIFY_KIND, LimiterState, SyncRun, Tenant, utcnow

REQUIRED = {"api_token": ("api_token",), "private_key_jwt": ("client_id", "private_key")}
OPTIONAL = {"api_token": (), "private_key_jwt": ("key_id",)}


class TenantError(ValueError):
    """Bad tenant input or a tenant that does not exist; the message says which."""


class TenantNotFound(TenantError, LookupError):
    pass


def auth_method_for(credentials: Mapping[str, Any]) -> str:
    """Which auth method a credentials dict is for; raises TenantError naming missing/unknown keys."""
    keys = set(credentials)
    method = "api_token" if "api_token" in keys else "private_key_jwt" if "client_id" in keys or "private_key" in keys else None
    if method is None:
        raise TenantError("credentials need either 'api_token', or 'client_id' and 'private_key' (and optionally 'key_id')")
    missing = [k for k in REQUIRED[method] if not credentials.get(k)]
    if missing:
        raise TenantError(f"{method} credentials are missing {', '.join(missing)}")
    unknown = keys - set(REQUIRED[method]) - set(OPTIONAL[method])
    if unknown:
        raise TenantError(f"{method} credentials have unknown keys: {', '.join(sorted(unknown))}")
    for k, v in credentials.items():
        if not isinstance(v, str):
            raise TenantError(f"credential {k!r} must be a string")
    return method


def _check_name(name: str) -> None:
    if not name or not isinstance(name, str) or name.strip() != name or len(name) > 200:
        raise TenantError(f"tenant name must be 1-200 characters without surrounding spaces, got {name!r}")


def _check_domain(domain: str) -> None:
    # The Okta client's own rules (no userinfo/path/query, https except loopback, no link-local or
    # metadata addresses): refuse at `tenant add` what the client would refuse at the first sync.
    from worker.okta.domain import InvalidDomain, normalize_domain

    try:
        normalize_domain(domain)
    except InvalidDomain as exc:
        raise TenantError(f"domain must be an Okta host like example.okta.com: {exc}") from None
    if not domain or any(c.isspace() for c in domain) or "/" in domain.split("://", 1)[-1].rstrip("/"):
        raise TenantError(f"domain must be an Okta host like example.okta.com, got {domain!r}")


def _check_interval(sync_interval: int) -> None:
    if sync_interval < 0:
        raise TenantError(f"sync_interval must be >= 0 seconds, got {sync_interval}")


def _check_schedule(sync_interval: int, incremental_interval: int | None, verify_interval: int | None) -> None:
    """Incremental runs and drift checks: off (None) or every so many seconds; incremental runs
    more often than full syncs (as often or less would save nothing: every full run re-reads all)."""
    for what, value in (("incremental_interval", incremental_interval), ("verify_interval", verify_interval)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise TenantError(f"{what} must be a whole number of seconds >= 1, or None (off), got {value!r}")
    if incremental_interval is not None and sync_interval and incremental_interval >= sync_interval:
        raise TenantError(f"the incremental interval ({incremental_interval}s) must be shorter than the full sync "
                          f"interval ({sync_interval}s): incremental runs are the cheap ones between full syncs; "
                          "shorten it, lengthen the full interval, or turn incremental runs off")


def _first_due(interval: int | None, due: datetime | None) -> datetime | None:
    """A schedule's due time: None exactly when it is off (Beat's claim relies on it); a schedule
    turned on without a due time is due at once (a full sync due as well still goes first)."""
    if interval is None:
        return None
    return due if due is not None else utcnow()


def new_tenant(name: str, domain: str, credentials: Mapping[str, Any], *, options: Mapping[str, Any] | None = None,
               sync_interval: int = 3600, enabled: bool = True, next_sync_at: datetime | None = None,
               incremental_interval: int | None = None, verify_interval: int | None = None,
               keys: MultiFernet | None = None) -> Tenant:
    """A checked tenant not yet in any session (bulk import adds many, then flushes once)."""
    _check_name(name)
    _check_domain(domain)
    _check_interval(sync_interval)
    _check_schedule(sync_interval, incremental_interval, verify_interval)
    return Tenant(name=name, domain=domain, auth_method=auth_method_for(credentials),
                  credentials=encrypt_credentials(credentials, keys), options=dict(options or {}),
                  sync_interval=sync_interval, enabled=enabled, next_sync_at=next_sync_at,
                  incremental_interval=incremental_interval, next_incremental_at=_first_due(incremental_interval, None),
                  verify_interval=verify_interval, next_verify_at=_first_due(verify_interval, None))


def create_tenant(session: Session, name: str, domain: str, credentials: Mapping[str, Any], *,
                  options: Mapping[str, Any] | None = None, sync_interval: int = 3600,
                  enabled: bool = True, next_sync_at: datetime | None = None,
                  incremental_interval: int | None = None, verify_interval: int | None = None,
                  keys: MultiFernet | None = None) -> Tenant:
    """Add a tenant (flushes; the caller commits). Raises TenantError if the name is taken."""
    tenant = new_tenant(name, domain, credentials, options=options, sync_interval=sync_interval, enabled=enabled,
                        next_sync_at=next_sync_at, incremental_interval=incremental_interval,
                        verify_interval=verify_interval, keys=keys)
    if session.execute(sa.select(Tenant.id).where(Tenant.name == name)).first():
        raise TenantError(f"tenant {name!r} already exists")
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(session: Session, tenant: str | int) -> Tenant:
    """A tenant by name (str) or id (int)."""
    col = Tenant.id if isinstance(tenant, int) else Tenant.name
    row = session.execute(sa.select(Tenant).where(col == tenant)).scalar_one_or_none()
    if row is None:
        names = list_tenant_names(session)
        raise TenantNotFound(f"no tenant {tenant!r}; tenants: {', '.join(names) if names else '(none)'}")
    return row


def tenant_version(session: Session, tenant_id: int) -> datetime | None:
    """When the tenant row last changed (None if it is gone): caches of its client compare this."""
    return session.execute(sa.select(Tenant.updated_at).where(Tenant.id == tenant_id)).scalar()


def list_tenant_names(session: Session) -> list[str]:
    return list(session.execute(sa.select(Tenant.name).order_by(Tenant.name)).scalars())


def list_tenants(session: Session, *, enabled: bool | None = None) -> list[Tenant]:
    stmt = sa.select(Tenant).order_by(Tenant.name)
    if enabled is not None:
        stmt = stmt.where(Tenant.enabled == enabled)
    return list(session.execute(stmt).scalars())


_UNSET: Any = object()


def update_tenant(session: Session, tenant: str | int, *, name: str = _UNSET, domain: str = _UNSET,
                  credentials: Mapping[str, Any] = _UNSET, options: Mapping[str, Any] = _UNSET,
                  sync_interval: int = _UNSET, enabled: bool = _UNSET,
                  next_sync_at: datetime | None = _UNSET, incremental_interval: int | None = _UNSET,
                  next_incremental_at: datetime | None = _UNSET, verify_interval: int | None = _UNSET,
                  next_verify_at: datetime | None = _UNSET, keys: MultiFernet | None = None) -> Tenant:
    """Change the given fields (flushes; the caller commits)."""
    row = get_tenant(session, tenant)
    change_tenant(row, name=name, domain=domain, credentials=credentials, options=options,
                  sync_interval=sync_interval, enabled=enabled, next_sync_at=next_sync_at,
                  incremental_interval=incremental_interval, next_incremental_at=next_incremental_at,
                  verify_interval=verify_interval, next_verify_at=next_verify_at, keys=keys)
    session.flush()
    return row


def change_tenant(row: Tenant, *, name: str = _UNSET, domain: str = _UNSET, credentials: Mapping[str, Any] = _UNSET,
                  options: Mapping[str, Any] = _UNSET, sync_interval: int = _UNSET, enabled: bool = _UNSET,
                  next_sync_at: datetime | None = _UNSET, incremental_interval: int | None = _UNSET,
                  next_incremental_at: datetime | None = _UNSET, verify_interval: int | None = _UNSET,
                  next_verify_at: datetime | None = _UNSET, keys: MultiFernet | None = None) -> None:
    """Check every given field, then set them all on `row` (none if one is refused); no flush.
    Turning incremental runs or drift checks on or off sets their due time too (unless given)."""
    values: dict[str, Any] = {"name": name, "domain": domain, "options": options, "sync_interval": sync_interval,
                              "enabled": enabled, "next_sync_at": next_sync_at,
                              "incremental_interval": incremental_interval, "next_incremental_at": next_incremental_at,
                              "verify_interval": verify_interval, "next_verify_at": next_verify_at}
    if name is not _UNSET:
        _check_name(name)
    if domain is not _UNSET:
        _check_domain(domain)
    if sync_interval is not _UNSET:
        _check_interval(sync_interval)
    if (sync_interval, incremental_interval, verify_interval) != (_UNSET,) * 3:
        def wanted(value: Any, field: str) -> Any:
            return getattr(row, field) if value is _UNSET else value

        _check_schedule(wanted(sync_interval, "sync_interval"), wanted(incremental_interval, "incremental_interval"),
                        wanted(verify_interval, "verify_interval"))
    for interval, due in (("incremental_interval", "next_incremental_at"), ("verify_interval", "next_verify_at")):
        if values[interval] is not _UNSET and values[due] is _UNSET:
            values[due] = _first_due(values[interval], getattr(row, due))
    if options is not _UNSET:
        values["options"] = dict(options)
    if credentials is not _UNSET:
        values["auth_method"] = auth_method_for(credentials)
        values["credentials"] = encrypt_credentials(credentials, keys)
    for field, value in values.items():
        if value is not _UNSET:
            setattr(row, field, value)


def tenant_credentials(tenant: Tenant, keys: MultiFernet | None = None) -> Credentials:
    """The tenant's decrypted credentials (repr shows only the key names)."""
    return decrypt_credentials(tenant.credentials, keys, what=f"credentials of tenant {tenant.name!r}")


def rotate_credentials(session: Session, keys: MultiFernet | None = None) -> int:
    """Re-encrypt every tenant's credentials with the newest key; the caller commits."""
    n = 0
    for tenant in session.execute(sa.select(Tenant)).scalars():
        tenant.credentials = reencrypt(tenant.credentials, keys, what=f"credentials of tenant {tenant.name!r}")
        n += 1
    session.flush()
    return n


def remove_tenant(session: Session, tenant: str | int) -> int:
    """Delete a tenant and everything it owns; run data goes in batches first. Commits."""
    from worker.store.generations import remove_generation

    row = get_tenant(session, tenant)
    tenant_id = row.id
    row.current_run_id = None
    session.commit()
    run_ids = session.execute(sa.select(SyncRun.id).where(SyncRun.tenant_id == tenant_id)).scalars().all()
    session.commit()
    removed = sum(remove_generation(session, r) for r in run_ids)
    session.execute(sa.delete(Tenant).where(Tenant.id == tenant_id))
    session.commit()
    return removed


def load_limiter_state(session: Session, tenant_id: int) -> dict[str, Any] | None:
    """The rate-limit state the embedded mode saved after the tenant's last run (None: none yet)."""
    row = session.get(LimiterState, tenant_id)
    return dict(row.state) if row is not None else None


def save_limiter_state(session: Session, tenant_id: int, state: Mapping[str, Any]) -> None:
    row = session.get(LimiterState, tenant_id) or LimiterState(tenant_id=tenant_id)
    row.state = dict(state)
    session.add(row)


@dataclass(frozen=True)
class Freshness:
    """A tenant's last success and latest run, what `tenant list --lagging` judges."""

    tenant: Tenant
    last_success: datetime | None  # when the last successful full or incremental run finished
    latest: SyncRun | None         # the newest run, whatever its state and kind


def freshness(session: Session) -> list[Freshness]:
    """Every tenant with its last success and latest run, in three queries whatever their number.
    Verify runs are left out: they check the view but do not make it any fresher."""
    syncs = SyncRun.kind != VERIFY_KIND
    last_ok = dict(session.execute(
        sa.select(SyncRun.tenant_id, sa.func.max(SyncRun.finished_at))
        .where(SyncRun.state == "succeeded", syncs).group_by(SyncRun.tenant_id)).all())
    latest_ids = sa.select(sa.func.max(SyncRun.id)).where(syncs).group_by(SyncRun.tenant_id).scalar_subquery()
    latest = {r.tenant_id: r for r in session.execute(sa.select(SyncRun).where(SyncRun.id.in_(latest_ids))).scalars()}
    return [Freshness(t, last_ok.get(t.id), latest.get(t.id)) for t in list_tenants(session)]
