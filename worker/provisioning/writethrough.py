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
from worker.store.generations import DEFAULT_EXPAND_TYPES
from worker.store.tables import ACTIVE_RUN_STATES, EntitlementRow, GrantRow, ResourceRow, SyncRun, Tenant
from worker.store.writes import apply_grant_change, entitlement_row, grant_row, resource_row, upsert_rows


def view_runs(session: Session, tenant_id: int) -> list[int]:
    current = session.scalar(sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id))
    active = session.scalars(sa.select(SyncRun.id).where(
        SyncRun.tenant_id == tenant_id, SyncRun.state.in_(ACTIVE_RUN_STATES))).all()
    return list(dict.fromkeys(r for r in [current, *active] if r is not None))


def _expandable(ent_id: str) -> bool:
    return ent_id.split(":", 1)[0] in DEFAULT_EXPAND_TYPES


def _members(session: Session, run_id: int, gid: str) -> list[str]:
    return list(session.scalars(sa.select(GrantRow.principal_id).where(
        GrantRow.run_id == run_id, GrantRow.entitlement_id == f"group:{gid}:member",
        GrantRow.principal_type == "user")))


def _group_grants(session: Session, run_id: int, gid: str) -> list[tuple[str, str]]:
    rows = session.execute(sa.select(GrantRow.id, GrantRow.entitlement_id).where(
        GrantRow.run_id == run_id, GrantRow.principal_type == "group", GrantRow.principal_id == gid))
    return [(r.id, r.entitlement_id) for r in rows if _expandable(r.entitlement_id)]


def _add_expanded(session: Session, run_id: int, ent: str, uid: str, source: str) -> None:
    row = session.get(GrantRow, (run_id, f"{ent}:user:{uid}"))
    if row is None:
        session.add(GrantRow(run_id=run_id, id=f"{ent}:user:{uid}", entitlement_id=ent, principal_type="user",
                             principal_id=uid, expanded=True, sources=[source], annotations={}))
    elif row.expanded and source not in (row.sources or []):
        row.sources = sorted([*(row.sources or []), source])
    session.flush()


def _other_group_gives(session: Session, run_id: int, ent: str, uid: str, source: str) -> bool:
    for gid in session.scalars(sa.select(GrantRow.principal_id).where(
            GrantRow.run_id == run_id, GrantRow.entitlement_id == ent, GrantRow.principal_type == "group",
            GrantRow.id != source)):
        if session.get(GrantRow, (run_id, f"group:{gid}:member:user:{uid}")) is not None:
            return True
    return False


def _drop_expanded(session: Session, run_id: int, ent: str, uid: str, source: str) -> None:
    row = session.get(GrantRow, (run_id, f"{ent}:user:{uid}"))
    if row is None:
        return
    if row.expanded:
        rest = [s for s in (row.sources or []) if s != source]
        if rest:
            row.sources = rest
        else:
            session.delete(row)
    elif (row.annotations or {}).get("scope") == "GROUP" and not _other_group_gives(session, run_id, ent, uid, source):
        session.delete(row)  # Okta listed it as held through a group, and no group gives it any more
    session.flush()


def _expand(session: Session, run_id: int, grant: Grant, present: bool) -> None:
    """Keep the grants that hold through a group in step with a group or membership change."""
    step = _add_expanded if present else _drop_expanded
    if grant.principal_type == "group" and _expandable(grant.entitlement_id):
        for uid in _members(session, run_id, grant.principal_id):
            step(session, run_id, grant.entitlement_id, uid, grant.id)
    elif grant.entitlement_id.startswith("group:") and grant.principal_type == "user":
        gid = grant.entitlement_id.split(":")[1]
        for source, ent in _group_grants(session, run_id, gid):
            step(session, run_id, ent, grant.principal_id, source)


def _custom_role_grant(session: Session, run_id: int, grant: Grant) -> Grant | None:
    """A binding member also holds the custom role itself (Okta lists it among the principal's
    roles, and the sync emits it when custom roles are synced, i.e. the role is a resource)."""
    if not grant.entitlement_id.startswith("resourceset-binding:"):
        return None
    role = grant.entitlement_id.split(":")[2]
    if session.get(ResourceRow, (run_id, f"custom-role:{role}")) is None:
        return None
    return Grant(f"custom-role:{role}:assigned", grant.principal_type, grant.principal_id)


def _role_still_bound(session: Session, run_id: int, grant: Grant) -> bool:
    role = grant.entitlement_id.split(":")[2]
    others = session.scalars(sa.select(GrantRow.entitlement_id).where(
        GrantRow.run_id == run_id, GrantRow.principal_type == grant.principal_type,
        GrantRow.principal_id == grant.principal_id, GrantRow.id != grant.id, GrantRow.expanded.is_(False),
        GrantRow.entitlement_id.startswith("resourceset-binding:", autoescape=True)))
    return any(e.split(":")[2] == role for e in others)


def _derived(session: Session, run_id: int, grant: Grant, present: bool) -> None:
    derived = _custom_role_grant(session, run_id, grant)
    if derived is None or (not present and _role_still_bound(session, run_id, grant)):
        return
    table = GrantRow.__table__
    if present:
        upsert_rows(session, table, [grant_row(run_id, derived)])
        _expand(session, run_id, derived, True)
    else:
        _expand(session, run_id, derived, False)
        session.execute(sa.delete(table).where(table.c.run_id == run_id, table.c.id == derived.id))


def _remove_resource(session: Session, run_id: int, key: str) -> None:
    rtype, _, rid = key.partition(":")
    if rtype == "group":  # what its members held through it goes first
        for source, ent in _group_grants(session, run_id, rid):
            for uid in _members(session, run_id, rid):
                _drop_expanded(session, run_id, ent, uid, source)
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
            present = ch.op == "grant+"
            if not present:
                for r in runs:
                    _derived(session, r, grant, False)
                    _expand(session, r, grant, False)
            apply_grant_change(session, tenant_id, grant, present=present)
            if present:
                for r in runs:
                    _expand(session, r, grant, True)
                    _derived(session, r, grant, True)
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
