"""Write a succeeded change through to the tenant's view in the grant store, at once.

Changes go into the tenant's current generation (what readers see now) and into its active
run's generation if a sync is under way (that run may already have crawled the list, and it
will become current next). Objects are mapped with the connector's own mapping, so the next
sync writes the same rows. Expanded grants (a group's grant seen on each member) are left to
the next sync. A tenant never synced has no view yet: nothing to update.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.connector import mapping
from worker.model import Grant
from worker.provisioning.context import Change
from worker.store.models import ACTIVE_RUN_STATES, EntitlementRow, GrantRow, ResourceRow, SyncRun, Tenant
from worker.store.writes import apply_grant_change, entitlement_row, resource_row, upsert_rows


def view_runs(session: Session, tenant_id: int) -> list[int]:
    current = session.scalar(sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id))
    active = session.scalars(sa.select(SyncRun.id).where(
        SyncRun.tenant_id == tenant_id, SyncRun.state.in_(ACTIVE_RUN_STATES))).all()
    return list(dict.fromkeys(r for r in [current, *active] if r is not None))


def _remove_resource(session: Session, run_id: int, key: str) -> None:
    rtype, _, rid = key.partition(":")
    ents = list(session.scalars(sa.select(EntitlementRow.id).where(
        EntitlementRow.run_id == run_id, EntitlementRow.resource == key)))
    g = GrantRow.__table__
    if ents:
        session.execute(sa.delete(g).where(g.c.run_id == run_id, g.c.entitlement_id.in_(ents)))
    session.execute(sa.delete(g).where(g.c.run_id == run_id, g.c.principal_type == rtype,
                                       g.c.principal_id == rid))
    e = EntitlementRow.__table__
    session.execute(sa.delete(e).where(e.c.run_id == run_id, e.c.resource == key))
    r = ResourceRow.__table__
    session.execute(sa.delete(r).where(r.c.run_id == run_id, r.c.id == key))


def apply(session: Session, tenant_id: int, changes: Iterable[Change]) -> list[int]:
    """Apply `changes` in the caller's transaction (the caller commits); returns run ids touched."""
    runs = view_runs(session, tenant_id)
    if not runs:
        return []
    for ch in changes:
        d = ch.data
        if ch.op in ("grant+", "grant-"):
            grant = Grant(d["entitlement"], d["principal_type"], d["principal_id"],
                          annotations=dict(d.get("annotations") or {}))
            apply_grant_change(session, tenant_id, grant, present=ch.op == "grant+")
        elif ch.op == "user+":
            res = mapping.user_resource(d["user"])
            upsert_rows(session, ResourceRow.__table__, [resource_row(r, res) for r in runs])
        elif ch.op == "group+":
            res = mapping.group_resource(d["group"])
            ent = mapping.group_entitlement(res)
            upsert_rows(session, ResourceRow.__table__, [resource_row(r, res) for r in runs])
            upsert_rows(session, EntitlementRow.__table__, [entitlement_row(r, ent) for r in runs])
        elif ch.op == "resource-":
            for r in runs:
                _remove_resource(session, r, d["resource"])
        else:
            raise ValueError(f"unknown write-through change {ch.op!r}")
    return runs
