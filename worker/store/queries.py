"""Read the tenant's current view: always through tenants.current_run_id.

Each query is one SQL statement whose run id comes from a subquery on tenants, so it reads one
snapshot: the old complete run or the new one, never a mix. Multi-statement readers (export)
open a snapshot transaction with `snapshot(engine)` (the export, worker/store/export.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.connector.options import InvalidOptions, SyncOptions
from worker.model import Entitlement, Grant, Resource, parse_principal
from worker.store.tables import AccessChange, EntitlementRow, GrantRow, ResourceRow, SyncRun, Tenant
from worker.store.tenants import TenantNotFound, get_tenant


def _current(tenant_id: int) -> sa.ScalarSelect[Any]:
    return sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id).scalar_subquery()


def _tenant_id(session: Session, tenant: str | int) -> int:
    return get_tenant(session, tenant).id


def current_run_id(session: Session, tenant: str | int) -> int | None:
    return get_tenant(session, tenant).current_run_id


def options_changed(session: Session, tenant: str | int) -> bool:
    """True when the tenant's options differ from those its current view was synced with, or that
    is unknown (no finished sync, or one from before fingerprints): its next run must be a full sync."""
    t = get_tenant(session, tenant)
    if t.current_run_id is None:
        return True
    synced_with = session.execute(sa.select(SyncRun.options_fingerprint).where(SyncRun.id == t.current_run_id)
                                  ).scalar_one_or_none()
    try:
        now = SyncOptions.from_dict(t.options)
    except InvalidOptions:  # the run will fail and say why; nothing is "unchanged" about it
        return True
    return not now.matches(synced_with)


def _resource(row: ResourceRow) -> Resource:
    return Resource(row.resource_type, row.resource_id, row.display_name, row.profile or {}, row.parent)


def _grant(row: GrantRow) -> Grant:
    return Grant(row.entitlement_id, row.principal_type, row.principal_id, bool(row.expanded),
                 tuple(row.sources or ()), row.annotations or {})


def resources(session: Session, tenant: str | int, resource_type: str | None = None) -> list[Resource]:
    """Resources of the current view, optionally of one type, ordered by id."""
    tid = _tenant_id(session, tenant)
    stmt = sa.select(ResourceRow).where(ResourceRow.run_id == _current(tid)).order_by(ResourceRow.id)
    if resource_type:
        stmt = stmt.where(ResourceRow.resource_type == resource_type)
    return [_resource(r) for r in session.execute(stmt).scalars()]


def entitlements(session: Session, tenant: str | int, resource: str | None = None) -> list[Entitlement]:
    tid = _tenant_id(session, tenant)
    stmt = sa.select(EntitlementRow).where(EntitlementRow.run_id == _current(tid)).order_by(EntitlementRow.id)
    if resource:
        stmt = stmt.where(EntitlementRow.resource == resource)
    return [Entitlement(e.resource_type, e.resource_id, e.slug, e.display_name)
            for e in session.execute(stmt).scalars()]


def grants(session: Session, tenant: str | int, *, entitlement: str | None = None,
           principal: str | None = None, include_expanded: bool = True) -> list[Grant]:
    """Grants of the current view, filtered by entitlement id and/or principal ("user:00u1")."""
    tid = _tenant_id(session, tenant)
    stmt = sa.select(GrantRow).where(GrantRow.run_id == _current(tid)).order_by(GrantRow.id)
    if entitlement:
        stmt = stmt.where(GrantRow.entitlement_id == entitlement)
    if principal:
        ptype, pid = parse_principal(principal)
        stmt = stmt.where(GrantRow.principal_type == ptype, GrantRow.principal_id == pid)
    if not include_expanded:
        stmt = stmt.where(GrantRow.expanded.is_(False))
    return [_grant(g) for g in session.execute(stmt).scalars()]


def grants_for_entitlement(session: Session, tenant: str | int, entitlement_id: str,
                           include_expanded: bool = True) -> list[Grant]:
    return grants(session, tenant, entitlement=entitlement_id, include_expanded=include_expanded)


def grants_for_principal(session: Session, tenant: str | int, principal: str,
                         include_expanded: bool = True) -> list[Grant]:
    return grants(session, tenant, principal=principal, include_expanded=include_expanded)


def effective_access(session: Session, tenant: str | int, user_id: str) -> list[Grant]:
    """Everything a user holds in effect: grants listed for them plus those expanded from
    their groups' grants (expanded=True, sources = the group grants)."""
    return grants(session, tenant, principal=f"user:{user_id}")


def app_access(session: Session, tenant: str | int, app_id: str) -> list[Grant]:
    """Who can access an app: users assigned directly or through a group (one grant per user)."""
    tid = _tenant_id(session, tenant)
    stmt = (sa.select(GrantRow).where(GrantRow.run_id == _current(tid), GrantRow.entitlement_id == f"app:{app_id}:access",
                                      GrantRow.principal_type == "user").order_by(GrantRow.id))
    return [_grant(g) for g in session.execute(stmt).scalars()]


def latest_run_id(session: Session, tenant_id: int) -> int | None:
    """The tenant's last successful sync, full or incremental (incremental runs apply their change
    to the view of the last full one, so `current_run_id` stays that full run's id); verify runs
    change nothing and are not counted."""
    return session.scalar(sa.select(SyncRun.id).where(
        SyncRun.tenant_id == tenant_id, SyncRun.state == "succeeded", SyncRun.kind.in_(("full", "incremental")))
        .order_by(SyncRun.finished_at.desc(), SyncRun.id.desc()).limit(1))


def changes(session: Session, tenant: str | int, run_id: int | None = None) -> tuple[int | None, list[AccessChange]]:
    """Grants added/removed by `run_id` (default: the tenant's latest successful run, whatever its
    kind: what the last sync changed). Returns (run id, changes)."""
    t = get_tenant(session, tenant)
    run_id = run_id if run_id is not None else latest_run_id(session, t.id)
    if run_id is None:
        return None, []
    run = session.get(SyncRun, run_id)
    if run is None or run.tenant_id != t.id:
        raise LookupError(f"sync run {run_id} is not a run of tenant {t.name!r}")
    stmt = (sa.select(AccessChange).where(AccessChange.run_id == run_id)
            .order_by(AccessChange.change, AccessChange.grant_id))
    return run_id, list(session.execute(stmt).scalars())


@contextmanager
def snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A read-only connection on one snapshot for multi-statement reads (REPEATABLE READ on
    PostgreSQL; on SQLite our explicit BEGIN keeps one WAL snapshot until the end)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


__all__ = ["TenantNotFound", "app_access", "changes", "current_run_id", "effective_access",
           "entitlements", "grants", "grants_for_entitlement", "grants_for_principal",
           "options_changed", "resources", "snapshot"]
