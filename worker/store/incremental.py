"""Incremental finalize: replace exactly the re-listed containers' rows in the current view.

An incremental run writes its pages under its own run id (a staging area), each row tagged with
its container (worker.model.container_key). `finalize_incremental` then, in ONE transaction:

1. deletes from the current view the rows of every container the run listed whole (its done or
   skipped streams, except the `partial` kinds, e.g. the lastUpdated-filtered users list), the
   rows whose ids the run staged (partial lists upsert by id), the rows of the principals whose
   row of a container the run re-read alone (`row_kinds`), the resources named `deleted`
   (lifecycle delete events) with their entitlements, owned resources and every grant naming them;
2. drops staged grants whose user/group/app principal is a resource of neither the view nor the run
   (as a full run's prune does);
3. moves the staged rows into the view (UPDATE run_id): nothing of the view is copied; a staged
   grant equal in every column to the view's grant of its id is dropped instead, and the view's
   row stays (a re-listed container writes only the grants that changed);
4. re-expands group grants only for the entitlements the grants gone or new touch, writing only
   the expanded grants that differ;
5. records access_changes for exactly the grants it removed and added, under the incremental
   run's id; saves the tenant's cursor; marks the run succeeded.

Readers follow `tenants.current_run_id`, which does not move: they see the view before or after
the transaction, never a mix. A run that dies before this leaves only its staging rows, which
`discard_run`/`collect_garbage` remove as for a full run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.model import Grant, container_key, split_resource_key, split_row_key
from worker.store.generations import (
    DEFAULT_EXPAND_TYPES,
    PRUNED_PRINCIPAL_TYPES,
    RunStateError,
    _rows,
    chunks_of,
    lock_finalizable,
    select_ids,
)
from worker.store.reexpand import reexpand
from worker.store.tables import (
    AccessChange,
    EntitlementRow,
    GrantRow,
    ResourceRow,
    SyncCursor,
    SyncStream,
    Tenant,
    utcnow,
)
from worker.store.writes import grant_row, upsert_rows

G, R, E = GrantRow.__table__, ResourceRow.__table__, EntitlementRow.__table__
ROW_TABLES = (G, E, R)
FINISHED_STREAM_STATES = ("done", "skipped")


@dataclass(frozen=True)
class Cursor:
    """A tenant's change cursor (see tables.SyncCursor)."""

    watermark: datetime
    log_after: str | None = None
    recent_event_ids: tuple[str, ...] = ()
    options_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class IncrementalResult:
    run_id: int
    view_run_id: int
    containers: int       # containers replaced whole
    deleted: int          # resources removed by delete events
    rows_moved: int       # staged rows moved into the view
    rows_removed: int     # view rows deleted (replaced or gone)
    pruned: int
    expanded: int
    added: int
    removed: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_cursor(session: Session, tenant_id: int) -> Cursor | None:
    row = session.get(SyncCursor, tenant_id, populate_existing=True)
    if row is None:
        return None
    return Cursor(row.watermark, row.log_after, tuple(row.recent_event_ids or ()), row.options_fingerprint)


def save_cursor(session: Session, tenant_id: int, run_id: int, cursor: Cursor) -> None:
    """Insert or replace the tenant's cursor; the caller commits (with the run's switch)."""
    row = session.get(SyncCursor, tenant_id) or SyncCursor(tenant_id=tenant_id)
    row.run_id = run_id
    row.watermark = cursor.watermark
    row.log_after = cursor.log_after
    row.recent_event_ids = list(cursor.recent_event_ids)
    row.options_fingerprint = cursor.options_fingerprint
    session.add(row)


def forget_cursor(session: Session, tenant_id: int) -> None:
    session.execute(sa.delete(SyncCursor).where(SyncCursor.tenant_id == tenant_id))


def relisted_containers(session: Session, run_id: int, partial_kinds: Collection[str]) -> set[str]:
    """Containers the run listed whole: its finished streams, except the partial (filtered) kinds."""
    rows = session.execute(sa.select(SyncStream.kind, SyncStream.parent).where(
        SyncStream.run_id == run_id, SyncStream.state.in_(FINISHED_STREAM_STATES))).all()
    return {container_key(kind, parent) for kind, parent in rows if kind not in partial_kinds}


def reread_rows(session: Session, run_id: int, row_kinds: Collection[str]) -> dict[str, set[str]]:
    """container -> principals whose row of it the run re-read alone (finished streams of
    `row_kinds`, whose parent is worker.model.row_key); an empty read means the row is gone."""
    if not row_kinds:
        return {}
    out: dict[str, set[str]] = {}
    for (parent,) in session.execute(sa.select(SyncStream.parent).where(
            SyncStream.run_id == run_id, SyncStream.kind.in_(list(row_kinds)),
            SyncStream.state.in_(FINISHED_STREAM_STATES))):
        container, principal = split_row_key(parent)
        out.setdefault(container, set()).add(principal)
    return out


def _ids_where(session: Session, table: sa.Table, where: Any, column: Any, values: Collection[str]) -> set[str]:
    """Ids of `table` rows matching `where` and `column IN values`, one statement per chunk."""
    return {i for chunk in chunks_of(values) for i in select_ids(session, sa.select(table.c.id).where(
        where, column.in_(chunk)))}


def _by_type(keys: Collection[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key in keys:
        rtype, rid = split_resource_key(key)
        out.setdefault(rtype, set()).add(rid)
    return out


def _view_grant_scope(session: Session, view: int, run_id: int, containers: set[str], deleted: set[str],
                      rows: Mapping[str, Collection[str]]) -> set[str]:
    """Ids of the view's grants this change replaces or removes: those of the re-listed containers,
    those the run staged again, the re-read rows, and every grant naming a deleted resource (as
    principal or through its entitlements). Each look-up reads one index for what it names, so the
    cost follows the change, not the view (an OR of them made SQLite and PostgreSQL walk every grant
    of the view)."""
    in_view = G.c.run_id == view
    ids = _ids_where(session, G, in_view, G.c.container, containers)
    staged = G.alias("staged")  # a subquery, not the ids: a re-listed big group stages thousands
    ids |= select_ids(session, sa.select(G.c.id).where(in_view, G.c.id.in_(
        sa.select(staged.c.id).where(staged.c.run_id == run_id))))
    for container, principals in sorted(rows.items()):
        for ptype, pids in sorted(_by_type(principals).items()):
            ids |= _ids_where(session, G, sa.and_(in_view, G.c.principal_type == ptype, G.c.container == container),
                              G.c.principal_id, pids)
    for ptype, pids in sorted(_by_type(deleted).items()):
        ids |= _ids_where(session, G, sa.and_(in_view, G.c.principal_type == ptype), G.c.principal_id, pids)
    entitlements = _ids_where(session, E, E.c.run_id == view, E.c.resource, deleted)
    ids |= _ids_where(session, G, in_view, G.c.entitlement_id, entitlements)
    return ids


def _view_scope(session: Session, view: int, staged_ids: dict[sa.Table, set[str]], containers: set[str],
                deleted: set[str]) -> dict[sa.Table, set[str]]:
    """Ids of the view's resources and entitlements this change replaces or removes (one index a
    look-up, as for the grants)."""
    r_view, e_view = R.c.run_id == view, E.c.run_id == view
    resources = (_ids_where(session, R, r_view, R.c.container, containers)
                 | _ids_where(session, R, r_view, R.c.id, staged_ids[R] | deleted))
    # owned resources (e.g. a deleted user's API tokens), by the (run_id, parent) index
    resources |= _ids_where(session, R, r_view, R.c.parent, deleted)
    entitlements = (_ids_where(session, E, e_view, E.c.container, containers)
                    | _ids_where(session, E, e_view, E.c.id, staged_ids[E])
                    | _ids_where(session, E, e_view, E.c.resource, deleted))
    return {R: resources, E: entitlements}


def _grant_rows(session: Session, view: int, ids: Collection[str]) -> dict[str, tuple[str, str, str, bool]]:
    """The view's grants of `ids`, as access_changes record them."""
    return {r.id: (r.entitlement_id, r.principal_type, r.principal_id, bool(r.expanded))
            for chunk in chunks_of(ids) for r in session.execute(
                sa.select(G.c.id, G.c.entitlement_id, G.c.principal_type, G.c.principal_id, G.c.expanded).where(
                    G.c.run_id == view, G.c.id.in_(chunk)))}


def _unchanged_in_view(run_id: int, view: int) -> Any:
    """Where a staged grant of the run has a view row of the same id with the same value in every
    column but run_id (JSON compared as stored: a difference in form only counts as a change)."""
    v = G.alias("v")
    same = [v.c[c.name].is_not_distinct_from(c) for c in G.columns if c.name not in ("run_id", "id")]
    return sa.and_(G.c.run_id == run_id, sa.exists().where(v.c.run_id == view, v.c.id == G.c.id, *same))


def _delete_ids(session: Session, table: sa.Table, view: int, ids: Collection[str]) -> int:
    return sum(_rows(session, sa.delete(table).where(table.c.run_id == view, table.c.id.in_(chunk)))
               for chunk in chunks_of(ids))


def _touched_entitlements(session: Session, view: int, grants: dict[str, tuple[str, str, str, bool]],
                          deleted: set[str]) -> tuple[set[str], dict[str, set[str]]]:
    """What to re-expand: (entitlements whole, entitlement -> the users to re-expand it for).
    Whole: those of the grants removed or added other than memberships (a group gained or lost a
    grant), and those held by a deleted group. For the users only: those held by a group whose
    membership changed, for the members who joined or left it (a user added to a 20,000-member
    group holding an app re-expands that app for that user, not for the 20,000)."""
    whole: set[str] = set()
    joined_or_left: dict[str, set[str]] = {}  # group id -> users
    for ent, ptype, pid, _x in grants.values():
        if not (ent.startswith("group:") and ent.endswith(":member")):
            whole.add(ent)
        elif ptype == "user":
            joined_or_left.setdefault(ent.split(":")[1], set()).add(pid)
    # No DISTINCT: SQLite would walk the view's entitlement index to return them in order, rather
    # than read the principal index for these groups' grants.
    for chunk in chunks_of({d.split(":", 1)[1] for d in deleted if d.startswith("group:")}):
        whole |= select_ids(session, sa.select(G.c.entitlement_id).where(
            G.c.run_id == view, G.c.principal_type == "group", G.c.principal_id.in_(chunk)))
    for_users: dict[str, set[str]] = {}
    for chunk in chunks_of(joined_or_left):
        for ent, gid in session.execute(sa.select(G.c.entitlement_id, G.c.principal_id).where(
                G.c.run_id == view, G.c.principal_type == "group", G.c.principal_id.in_(chunk))):
            for_users.setdefault(str(ent), set()).update(joined_or_left[str(gid)])
    return whole, for_users


def _record(session: Session, tenant_id: int, run_id: int, before: dict[str, tuple[str, str, str, bool]],
            after: dict[str, tuple[str, str, str, bool]]) -> tuple[int, int]:
    now = utcnow()
    rows = [{"tenant_id": tenant_id, "run_id": run_id, "grant_id": gid, "change": change, "entitlement_id": ent,
             "principal_type": pt, "principal_id": pid, "expanded": x, "created_at": now}
            for change, have, other in (("added", after, before), ("removed", before, after))
            for gid, (ent, pt, pid, x) in sorted(have.items()) if gid not in other]
    if rows:
        session.execute(sa.insert(AccessChange.__table__), rows)
    added = sum(1 for r in rows if r["change"] == "added")
    return added, len(rows) - added


def containers_holding(session: Session, tenant_id: int, pairs: Collection[tuple[str, str]],
                       ) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """For each (principal `user:00u1`, container kind): the containers of that kind in the
    tenant's current view that list grants to the principal, with each container's grant count.
    Two statements for all pairs (the planner's one look-up)."""
    view = session.execute(sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id)).scalar()
    kinds = {kind for _p, kind in pairs}
    by_type: dict[str, set[str]] = {}
    for principal, _kind in pairs:
        ptype, _, pid = principal.partition(":")
        by_type.setdefault(ptype, set()).add(pid)
    found: dict[tuple[str, str], set[str]] = {}
    for ptype, ids in by_type.items():
        for chunk in chunks_of(ids):
            for pid, container in session.execute(sa.select(G.c.principal_id, G.c.container).where(
                    G.c.run_id == view, G.c.principal_type == ptype, G.c.principal_id.in_(chunk)).distinct()):
                pair = (f"{ptype}:{pid}", str(container).partition(":")[0])
                if pair[1] in kinds and pair in pairs:
                    found.setdefault(pair, set()).add(str(container))
    counts: dict[str, int] = {}
    for chunk in chunks_of({c for cs in found.values() for c in cs}):
        counts.update({str(c): int(n) for c, n in session.execute(sa.select(G.c.container, sa.func.count()).where(
            G.c.run_id == view, G.c.container.in_(chunk)).group_by(G.c.container))})
    return {pair: [(c, counts.get(c, 0)) for c in sorted(cs)] for pair, cs in found.items()}


def resources_with(session: Session, tenant_id: int, rtype: str, field: str, value: str) -> list[str]:
    """Keys of the current view's resources of `rtype` whose profile `field` equals `value`."""
    view = sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id).scalar_subquery()
    return sorted(select_ids(session, sa.select(R.c.id).where(
        R.c.run_id == view, R.c.resource_type == rtype, R.c.profile[field].as_string() == value)))


def resource_values(session: Session, tenant_id: int, keys: Collection[str], field: str) -> dict[str, str]:
    """{key: profile[field]} of those of `keys` that are resources of the tenant's current view with
    a value there."""
    view = sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id).scalar_subquery()
    return {str(k): str(v) for chunk in chunks_of(set(keys)) for k, v in session.execute(
        sa.select(R.c.id, R.c.profile[field].as_string()).where(R.c.run_id == view, R.c.id.in_(chunk))) if v}


def _still_valid(session: Session, run_id: int, validated: Collection[Mapping[str, str]]) -> set[str]:
    """Containers of `validated` whose parent the run staged with the validator the view stored:
    the page left them unopened, so their rows stay (types/base.py Validated)."""
    staged = {str(k): dict(p or {}) for chunk in chunks_of({v["resource"] for v in validated})
              for k, p in session.execute(sa.select(R.c.id, R.c.profile).where(R.c.run_id == run_id, R.c.id.in_(chunk)))}
    return {v["container"] for v in validated if v["value"] and staged.get(v["resource"], {}).get(v["field"]) == v["value"]}


def resources_present(session: Session, tenant_id: int, keys: Collection[str]) -> set[str]:
    """Those of `keys` (`user:00u1`) that are resources of the tenant's current view."""
    view = sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id).scalar_subquery()
    return {k for chunk in chunks_of(set(keys)) for k in select_ids(session, sa.select(R.c.id).where(
        R.c.run_id == view, R.c.id.in_(chunk)))}


def _derive_members(session: Session, view: int, derived: Collection[Mapping[str, str]],
                    staged_users: set[str]) -> set[str]:
    """Give each user the run staged (now in the view) its grant of every derived container's
    entitlement, where it has none yet; returns the ids added."""
    users = {u for chunk in chunks_of(staged_users) for u in select_ids(session, sa.select(R.c.id).where(
        R.c.run_id == view, R.c.id.in_(chunk)))}
    wanted = {Grant(d["entitlement"], *split_resource_key(u)): d["container"] for d in derived for u in users}
    have = {i for chunk in chunks_of({g.id for g in wanted}) for i in select_ids(session, sa.select(G.c.id).where(
        G.c.run_id == view, G.c.id.in_(chunk)))}
    rows = [grant_row(view, g, container) for g, container in wanted.items() if g.id not in have]
    upsert_rows(session, G, rows)
    return {r["id"] for r in rows}


def _unopened_children(session: Session, run_id: int, partial_kinds: Collection[str],
                       partial_children: Collection[str], relisted: set[str]) -> set[str]:
    """Child containers of objects a partial list returned that the run did not open: a full
    run would not open them either (e.g. a group now without members), so they are empty."""
    if not partial_kinds or not partial_children:
        return set()
    parents = select_ids(session, sa.select(R.c.id).where(R.c.run_id == run_id, R.c.container.in_(list(partial_kinds))))
    return {container_key(k, p) for p in parents for k in partial_children} - relisted


def finalize_incremental(session: Session, tenant_id: int, run_id: int, *, partial_kinds: Collection[str] = (),
                         partial_children: Collection[str] = (), row_kinds: Collection[str] = (),
                         deleted: Collection[str] = (), derived: Collection[Mapping[str, str]] = (),
                         validated: Collection[Mapping[str, str]] = (),
                         cursor: Cursor | None = None,
                         expand_types: tuple[str, ...] = DEFAULT_EXPAND_TYPES,
                         next_sync_at: Any = None) -> IncrementalResult:
    """Apply incremental run `run_id` to the tenant's current view in one transaction (module doc).

    `partial_kinds`: stream kinds whose rows are upserted by id rather than replacing their
    container (the timestamp-filtered lists); `partial_children`: the kinds those lists open for
    each object (one not opened is empty now). `row_kinds`: kinds that re-read one principal's row
    of a container (its rows there are replaced, or removed when the read found none). `deleted`: resource keys (`user:00u1`) to remove.
    `derived`: containers not re-listed but derived from the users the run staged
    ({"container", "entitlement"}: each such user holds the entitlement). `validated`: child
    containers a partial list left unopened because their parent's validator did not change
    ({"container", "resource", "field", "value"}): kept when the staged parent still has it.
    """
    tenant, run = lock_finalizable(session, tenant_id, run_id)
    view = tenant.current_run_id
    if view is None:
        raise RunStateError(f"tenant {tenant.name!r} has no current view; an incremental run needs a full one first")
    containers = relisted_containers(session, run_id, (*partial_kinds, *row_kinds))
    rows = reread_rows(session, run_id, row_kinds)
    containers |= _unopened_children(session, run_id, partial_kinds, partial_children, containers) \
        - _still_valid(session, run_id, validated)
    containers -= {d["container"] for d in derived}
    staged_ids = {t: select_ids(session, sa.select(t.c.id).where(t.c.run_id == run_id)) for t in ROW_TABLES}
    # Resources a whole list no longer holds are gone, like those delete events name (an app
    # deactivated while inactive apps are not synced, a resource set removed).
    deleted_set = set(deleted) | {rid for c in chunks_of(containers) for rid in select_ids(session, sa.select(R.c.id).where(
        R.c.run_id == view, R.c.container.in_(c)))} - staged_ids[R]
    # A list whose parent is gone or not synced (an inactive app's users, read because an event
    # named the app, or a row of it read alone) is not kept: a full run would not have opened it.
    parents = {c.partition(":")[2] for c in containers | set(rows)} - {""}
    kept = {p for chunk in chunks_of(parents) for p in select_ids(session, sa.select(R.c.id).where(
        R.c.run_id.in_((view, run_id)), R.c.id.in_(chunk)))} - deleted_set
    orphans = {c for c in containers | set(rows) if c.partition(":")[2] not in kept | {""}}
    for t in ROW_TABLES:
        for chunk in chunks_of(orphans):
            _rows(session, sa.delete(t).where(t.c.run_id == run_id, t.c.container.in_(chunk)))
    if orphans:
        staged_ids = {t: select_ids(session, sa.select(t.c.id).where(t.c.run_id == run_id)) for t in ROW_TABLES}

    # 1. What the change replaces, then delete it. Only grants gone or new are access changes (and
    # can change an expansion): a grant the run staged again under its id is neither, and is not
    # read back (a re-listed 6,000-member group that lost one member reads one row, not 12,000).
    scope_ids = _view_grant_scope(session, view, run_id, containers, deleted_set, rows)
    before = _grant_rows(session, view, scope_ids - staged_ids[G])
    v = G.alias("v")
    fresh = select_ids(session, sa.select(G.c.id).where(
        G.c.run_id == run_id, ~sa.exists().where(v.c.run_id == view, v.c.id == G.c.id)))
    scope = _view_scope(session, view, staged_ids, containers, deleted_set)
    rows_removed = sum(_delete_ids(session, t, view, ids) for t, ids in scope.items())

    # 2. Prune staged grants to users/groups that are resources of neither the view nor the run.
    principal = G.c.principal_type + ":" + G.c.principal_id
    pruned = _rows(session, sa.delete(G).where(
        G.c.run_id == run_id, G.c.principal_type.in_(PRUNED_PRINCIPAL_TYPES),
        ~sa.exists().where(R.c.run_id.in_((run_id, view)), R.c.id == principal)))

    # A staged grant equal in every column to the view's grant of its id would replace it by
    # itself: the view keeps its row and the staged copy goes, so a re-listed container writes
    # only the grants that changed (its unchanged rows are neither deleted nor moved).
    unchanged_where = _unchanged_in_view(run_id, view)
    unchanged = select_ids(session, sa.select(G.c.id).where(unchanged_where))
    _rows(session, sa.delete(G).where(unchanged_where))
    rows_removed += _delete_ids(session, G, view, scope_ids - unchanged)

    # 3. Move the staged rows into the view.
    moved = sum(_rows(session, sa.update(t).where(t.c.run_id == run_id).values(run_id=view)) for t in ROW_TABLES)

    # 4. Derived memberships of the staged users, then re-expand group grants on the entitlements
    # the change touched, writing only the difference (worker/store/reexpand.py).
    staged_users = {r for r in staged_ids[R] if r.startswith("user:")}
    # (a fresh grant pruned in step 2 is not in the view: the read below leaves it out)
    new_ids = fresh | _derive_members(session, view, derived, staged_users)
    new_direct = _grant_rows(session, view, new_ids)
    whole, for_users = _touched_entitlements(session, view, {**before, **new_direct}, deleted_set)
    gone, new_expanded = reexpand(session, view, whole, for_users, tuple(expand_types))
    before |= gone
    rows_removed += len(gone)
    expanded = len(new_expanded)
    after = new_direct | new_expanded

    # 5. Access changes, cursor, run state.
    added, removed = _record(session, tenant_id, run_id, before, after)
    if cursor is not None:
        save_cursor(session, tenant_id, run_id, cursor)
    if next_sync_at is not None:
        tenant.next_sync_at = next_sync_at
    result = IncrementalResult(run_id, view, len(containers), len(deleted_set), moved, rows_removed, pruned,
                               expanded, added, removed)
    run.state = "succeeded"
    run.finished_at = utcnow()
    run.counts = {**(run.counts or {}), **result.as_dict()}
    session.commit()
    return result
