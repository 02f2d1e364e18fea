"""Write a succeeded provisioning change through to the tenant's view, at once.

The view is the tenant's current generation (what readers see now) plus its active run's
generation if a sync is under way (that run may already have crawled the list, and it will
become current next); it is computed once per call. The resource type modules say what changed
(worker.model's GrantAdded, GrantRemoved, ResourceSaved, ResourceRemoved, CountChanged,
GrantsAnnotated, mapped the way a sync maps them, so the next sync writes the same rows), which
other grants a grant implies, and how Okta lists a grant held through a group; this module applies
that. Grants that hold through a group are kept in step the way finalize expands them: added with
a membership or a group's grant, and derived again from the user's groups when the user's own
grant goes. A tenant never synced has no view yet: nothing to update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.model import (
    Change,
    CountChanged,
    Grant,
    GrantAdded,
    GrantRemoved,
    GrantsAnnotated,
    Resource,
    ResourceRemoved,
    ResourceSaved,
    WriteThroughRules,
    entitlement_of,
    parse_entitlement_id,
    resource_key,
    split_resource_key,
)
from worker.store.generations import DEFAULT_EXPAND_TYPES
from worker.store.tables import ACTIVE_RUN_STATES, EntitlementRow, GrantRow, ResourceRow, SyncRun, Tenant
from worker.store.writes import entitlement_row, grant_row, resource_row, upsert_rows

NO_RULES = WriteThroughRules()  # the store's own steps only (tests)


def view_runs(session: Session, tenant_id: int) -> list[int]:
    """The tenant's current run and its active runs: the generations a change must reach."""
    current = session.scalar(sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id))
    active = session.scalars(sa.select(SyncRun.id).where(
        SyncRun.tenant_id == tenant_id, SyncRun.state.in_(ACTIVE_RUN_STATES))).all()
    return list(dict.fromkeys(r for r in [current, *active] if r is not None))


def write_through(session: Session, tenant_id: int, changes: Iterable[Change],
                  rules: WriteThroughRules = NO_RULES) -> list[int]:
    """Apply `changes` to the tenant's view in the caller's transaction (the caller commits).

    `rules`: the type modules' (worker.connector.types.WRITE_THROUGH_RULES): implied grants, the
    container a sync reads each row from (stored with it so an incremental re-list of that list
    replaces it), how Okta lists a grant held through a group, what a deletion does to other grants'
    annotations. Returns the run ids touched."""
    runs = view_runs(session, tenant_id)
    for change in changes:
        for run_id in runs:
            _apply(session, run_id, change, rules)
    return runs


def _apply(session: Session, run_id: int, change: Change, rules: WriteThroughRules) -> None:
    if isinstance(change, GrantAdded):
        upsert_rows(session, GrantRow.__table__, [grant_row(run_id, change.grant, rules.container_of(change.grant))])
        _expand(session, run_id, change.grant, True, rules)
        _implied(session, run_id, change.grant, True, rules)
    elif isinstance(change, GrantRemoved):
        _implied(session, run_id, change.grant, False, rules)
        _expand(session, run_id, change.grant, False, rules)
        _delete_grant(session, run_id, change.grant, rules)
    elif isinstance(change, ResourceSaved):
        _save_resource(session, run_id, change, rules.container_of(change.resource))
    elif isinstance(change, ResourceRemoved):
        _remove_resource(session, run_id, change.key, rules)
    elif isinstance(change, CountChanged):
        _count(session, run_id, change)
    elif isinstance(change, GrantsAnnotated):
        _annotate(session, run_id, change)
    else:
        raise TypeError(f"unknown write-through change {change!r}")


def _delete_grant(session: Session, run_id: int, grant: Grant, rules: WriteThroughRules) -> None:
    """Delete the grant; a user who still holds its entitlement through a group keeps it the way
    finalize would expand it (or Okta list it)."""
    table = GrantRow.__table__
    session.execute(sa.delete(table).where(table.c.run_id == run_id, table.c.id == grant.id))
    if grant.principal_type == "user" and _expandable(grant.entitlement_id):
        for gid in _groups_of(session, run_id, grant.principal_id):
            source = Grant(grant.entitlement_id, "group", gid).id
            if session.get(GrantRow, (run_id, source)) is not None:
                _add_expanded(session, run_id, grant.entitlement_id, grant.principal_id, source, rules)


# ---------------------------------------------------------------- grants held through groups

def _expandable(ent_id: str) -> bool:
    return parse_entitlement_id(ent_id).resource_type in DEFAULT_EXPAND_TYPES


def _groups_of(session: Session, run_id: int, uid: str) -> list[str]:
    ents = session.scalars(sa.select(GrantRow.entitlement_id).where(
        GrantRow.run_id == run_id, GrantRow.principal_type == "user", GrantRow.principal_id == uid,
        GrantRow.entitlement_id.startswith("group:", autoescape=True)))
    return [p.resource_id for p in map(parse_entitlement_id, ents) if p.slug == "member"]


def _members(session: Session, run_id: int, gid: str) -> list[str]:
    return list(session.scalars(sa.select(GrantRow.principal_id).where(
        GrantRow.run_id == run_id, GrantRow.entitlement_id == entitlement_of("group", gid).id,
        GrantRow.principal_type == "user")))


def _group_grants(session: Session, run_id: int, gid: str) -> list[tuple[str, str]]:
    rows = session.execute(sa.select(GrantRow.id, GrantRow.entitlement_id).where(
        GrantRow.run_id == run_id, GrantRow.principal_type == "group", GrantRow.principal_id == gid))
    return [(r.id, r.entitlement_id) for r in rows if _expandable(r.entitlement_id)]


def _add_expanded(session: Session, run_id: int, ent: str, uid: str, source: str, rules: WriteThroughRules) -> None:
    grant = Grant(ent, "user", uid)
    row = session.get(GrantRow, (run_id, grant.id))
    if row is None:
        user = session.get(ResourceRow, (run_id, resource_key("user", uid)))
        listed = rules.listed_through_group(ent, user.profile if user is not None else None)
        if listed is not None:  # Okta lists it (an app user of scope GROUP): a sync stores that row
            upsert_rows(session, GrantRow.__table__, [grant_row(
                run_id, Grant(ent, "user", uid, annotations=listed), rules.container_of(grant))])
        else:
            session.add(GrantRow(run_id=run_id, id=grant.id, entitlement_id=ent, principal_type="user",
                                 principal_id=uid, expanded=True, sources=[source], annotations={}))
    elif row.expanded and source not in (row.sources or []):
        row.sources = sorted([*(row.sources or []), source])
    session.flush()


def _other_group_gives(session: Session, run_id: int, ent: str, uid: str, source: str) -> bool:
    for gid in session.scalars(sa.select(GrantRow.principal_id).where(
            GrantRow.run_id == run_id, GrantRow.entitlement_id == ent, GrantRow.principal_type == "group",
            GrantRow.id != source)):
        if session.get(GrantRow, (run_id, Grant(entitlement_of("group", gid).id, "user", uid).id)) is not None:
            return True
    return False


def _drop_expanded(session: Session, run_id: int, ent: str, uid: str, source: str, _rules: WriteThroughRules) -> None:
    row = session.get(GrantRow, (run_id, Grant(ent, "user", uid).id))
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


def _expand(session: Session, run_id: int, grant: Grant, present: bool, rules: WriteThroughRules) -> None:
    """Keep the grants that hold through a group in step with a group's grant or a membership."""
    step = _add_expanded if present else _drop_expanded
    ent = parse_entitlement_id(grant.entitlement_id)
    if grant.principal_type == "group" and ent.resource_type in DEFAULT_EXPAND_TYPES:
        for uid in _members(session, run_id, grant.principal_id):
            step(session, run_id, grant.entitlement_id, uid, grant.id, rules)
    elif ent.resource_type == "group" and grant.principal_type == "user":
        for source, source_ent in _group_grants(session, run_id, ent.resource_id):
            step(session, run_id, source_ent, grant.principal_id, source, rules)


# ---------------------------------------------------------------- implied grants

def _implied(session: Session, run_id: int, grant: Grant, present: bool, rules: WriteThroughRules) -> None:
    """An implied grant shows where its entitlement's resource is in the view, and goes when no
    other grant of the principal implies it any more."""
    for derived in rules.implied(grant):
        if session.get(ResourceRow, (run_id, parse_entitlement_id(derived.entitlement_id).resource)) is None:
            continue
        if present:
            upsert_rows(session, GrantRow.__table__, [grant_row(run_id, derived, rules.container_of(derived))])
            _expand(session, run_id, derived, True, rules)
        elif not _still_implied(session, run_id, grant, derived, rules.implied):
            _expand(session, run_id, derived, False, rules)
            _delete_grant(session, run_id, derived, rules)


def _still_implied(session: Session, run_id: int, grant: Grant, derived: Grant,
                   implied: Callable[[Grant], list[Grant]]) -> bool:
    rtype = parse_entitlement_id(grant.entitlement_id).resource_type
    others = session.execute(sa.select(GrantRow.entitlement_id, GrantRow.principal_type, GrantRow.principal_id).where(
        GrantRow.run_id == run_id, GrantRow.principal_type == grant.principal_type,
        GrantRow.principal_id == grant.principal_id, GrantRow.id != grant.id, GrantRow.expanded.is_(False),
        GrantRow.entitlement_id.startswith(resource_key(rtype, ""), autoescape=True)))
    return any(derived in implied(Grant(*row)) for row in others)


# ---------------------------------------------------------------- resources

def _save_resource(session: Session, run_id: int, change: ResourceSaved, container: str) -> None:
    res = change.resource
    old = session.get(ResourceRow, (run_id, res.key)) if change.keep else None
    if old is not None:
        kept = {k: old.profile[k] for k in change.keep if k in (old.profile or {}) and k not in res.profile}
        res = Resource(res.type, res.id, res.display_name, {**res.profile, **kept}, res.parent)
    upsert_rows(session, ResourceRow.__table__, [resource_row(run_id, res, container)])
    upsert_rows(session, EntitlementRow.__table__, [entitlement_row(run_id, e, container) for e in change.entitlements])


def _count(session: Session, run_id: int, change: CountChanged) -> None:
    row = session.get(ResourceRow, (run_id, change.resource))
    value = (row.profile or {}).get(change.field) if row is not None else None
    if isinstance(value, int) and not isinstance(value, bool):
        row.profile = {**row.profile, change.field: max(0, value + change.delta)}
        session.flush()


def _annotate(session: Session, run_id: int, change: GrantsAnnotated) -> None:
    ptype, pid = split_resource_key(change.principal)
    for row in session.scalars(sa.select(GrantRow).where(
            GrantRow.run_id == run_id, GrantRow.principal_type == ptype, GrantRow.principal_id == pid,
            GrantRow.expanded.is_(False),
            GrantRow.entitlement_id.startswith(resource_key(change.resource_type, ""), autoescape=True))):
        row.annotations = {**(row.annotations or {}), **change.values}
    session.flush()


def _after_removed(session: Session, run_id: int, key: str, rules: WriteThroughRules) -> None:
    """Grants whose annotations name the removed resource (a role scoped to a deleted group) as
    their type's rule says: other annotations, or gone (with what they expanded to)."""
    rid = split_resource_key(key)[1]
    for row in session.scalars(sa.select(GrantRow).where(
            GrantRow.run_id == run_id, GrantRow.expanded.is_(False),
            sa.cast(GrantRow.annotations, sa.Text).contains(rid, autoescape=True))).all():
        grant = Grant(row.entitlement_id, row.principal_type, row.principal_id, annotations=dict(row.annotations or {}))
        after = rules.after_removed(grant, key)
        if after is None:
            _apply(session, run_id, GrantRemoved(grant), rules)
        elif after != grant.annotations:
            row.annotations = after
    session.flush()


def _remove_resource(session: Session, run_id: int, key: str, rules: WriteThroughRules) -> None:
    _after_removed(session, run_id, key, rules)
    rtype, rid = split_resource_key(key)
    if rtype == "group":  # what its members held through it goes first
        for source, ent in _group_grants(session, run_id, rid):
            for uid in _members(session, run_id, rid):
                _drop_expanded(session, run_id, ent, uid, source, rules)
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
