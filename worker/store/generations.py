"""Generations: finalize a run (expand, prune, switch, diff) and remove old generations.

A run's rows live under its own run id. `finalize_generation` makes the run the tenant's
current view in ONE transaction; readers follow `tenants.current_run_id`, so they see the old
complete run or the new complete run, never a mix. The previous generation is deleted after the
switch in small batches, each its own short transaction, so PostgreSQL readers and writers are
never held up by one huge DELETE.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from worker.store.db import immediate
from worker.store.tables import (
    ACTIVE_RUN_STATES,
    AccessChange,
    EntitlementRow,
    GrantRow,
    JSONType,
    ResourceRow,
    SyncRun,
    SyncStream,
    Tenant,
    UTCDateTime,
    utcnow,
)

# Entitlement types whose group grants are expanded to the group's members: holding the group's
# grant means holding it (an app assigned to a group, a role assigned to a group, ...).
DEFAULT_EXPAND_TYPES: tuple[str, ...] = ("app", "role", "custom-role", "resourceset-binding")
# Principals that must be resources of the run; grants to others are pruned (filtered users,
# skipped APP_GROUP groups, inactive service apps when inactive apps are not synced: the connector
# simply does not emit those resources).
PRUNED_PRINCIPAL_TYPES = ("user", "group", "app")
DELETE_BATCH = 5000
FINALIZABLE_STATES = ("running", "finalizing")


class RunStateError(RuntimeError):
    """The run cannot be finalized/discarded in its current state; the message says why."""


@dataclass(frozen=True, slots=True)
class FinalizeResult:
    run_id: int
    previous_run_id: int | None
    pruned: int          # grants dropped because their principal is not a resource of the run
    expanded: int        # grants added by expanding group grants to members
    added: int           # access_changes rows recorded (0 on a tenant's first run: no baseline)
    removed: int
    resources: int
    entitlements: int
    grants: int
    old_rows_removed: int  # rows of the previous generation deleted after the switch

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


G = GrantRow.__table__


def _rows(session: Session, stmt: Any) -> int:
    # SQLAlchemy 2.1 reports INSERT ... SELECT rowcount only when asked to keep it.
    return session.execute(stmt.execution_options(preserve_rowcount=True)).rowcount or 0


# Bound parameters per IN list: under SQLite's limit, and few statements for a typical change.
IN_CHUNK = 5000


def chunks_of(values: Collection[str], size: int = IN_CHUNK) -> Iterable[list[str]]:
    """`values` sorted, in lists of at most `size` (one IN list each)."""
    items = sorted(values)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def select_ids(session: Session, stmt: Any) -> set[str]:
    """The first column of `stmt`'s rows, as strings."""
    return {str(v) for v in session.execute(stmt).scalars()}


def _locked(session: Session, model: Any, key: int) -> Any:
    """Load a row fresh (sessions keep attributes after commit) and lock it on PostgreSQL."""
    stmt = sa.select(model).where(model.id == key).with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def prune_grants(session: Session, run_id: int) -> int:
    """Delete grants of the run whose user/group/app principal is not a resource of the run."""
    r = ResourceRow.__table__
    principal_key = G.c.principal_type + ":" + G.c.principal_id
    stmt = sa.delete(G).where(
        G.c.run_id == run_id,
        G.c.principal_type.in_(PRUNED_PRINCIPAL_TYPES),
        ~sa.exists().where(r.c.run_id == run_id, r.c.id == principal_key),
    )
    return _rows(session, stmt)


def grants_by_type(session: Session, run_id: int) -> dict[str, int]:
    """The run's grants per entitlement type (the entitlement id's prefix, e.g. `app`)."""
    prefix = (sa.func.substr(G.c.entitlement_id, 1, sa.func.instr(G.c.entitlement_id, ":") - 1)
              if session.get_bind().dialect.name == "sqlite" else sa.func.split_part(G.c.entitlement_id, ":", 1))
    return {str(k): int(n) for k, n in session.execute(
        sa.select(prefix, sa.func.count()).where(G.c.run_id == run_id).group_by(prefix)).all()}


def expand_group_grants(session: Session, run_id: int, expand_types: tuple[str, ...] = DEFAULT_EXPAND_TYPES, *,
                        entitlements: Collection[str] | None = None) -> int:
    """Add expanded=True grants for each member of each group holding an entitlement of `expand_types`.

    A member that already holds a grant listed by Okta on that entitlement (e.g. an app user
    Okta lists with scope GROUP) keeps that grant as is: it stays Okta's word (expanded=False),
    and the group path remains answerable from the group's grant and the membership grant.
    Several groups giving one member the same entitlement make one grant with sorted sources.
    `entitlements` limits the expansion to those entitlement ids (an incremental run's change).
    """
    if not expand_types:
        return 0
    stmt = sa.insert(G).from_select(
        ["run_id", "id", "entitlement_id", "principal_type", "principal_id", "expanded", "sources", "annotations"],
        expansion(session, run_id, expand_types, entitlements))
    return _rows(session, stmt)


def expansion(session: Session, run_id: int, expand_types: tuple[str, ...], entitlements: Collection[str] | None = None,
              *, listed_only: bool = False, members: Collection[str] | None = None) -> sa.Select:
    """The expanded grants the groups of generation `run_id` give, as grant rows (run_id, id,
    entitlement_id, principal_type, principal_id, expanded, sources, annotations), leaving out
    members holding a grant of that id already (`listed_only`: only one Okta listed, expanded=False,
    so the generation's current expanded grants are not in the way); `members`: for these user
    ids only."""
    g, m, x = G.alias("g"), G.alias("m"), G.alias("x")
    sqlite = session.get_bind().dialect.name == "sqlite"
    # For a few entitlements, SQLite (no statistics) would read every group grant of the run by
    # the principal index; `+g.principal_type` (an expression) leaves it the entitlement index.
    group_grant = (sa.literal_column("+g.principal_type") if sqlite and entitlements is not None
                   else g.c.principal_type) == "group"
    # Members by their group's membership entitlement; SQLite, given one entitlement (equality
    # rather than IN), would read every user grant of the run by the principal index instead.
    # Only for given `members` is the principal index the right one.
    member_user = (sa.literal_column("+m.principal_type") if sqlite and entitlements is not None and members is None
                   else m.c.principal_type) == "user"
    new_id = g.c.entitlement_id + ":user:" + m.c.principal_id
    present = sa.exists().where(x.c.run_id == run_id, x.c.id == new_id)
    if listed_only:
        present = present.where(x.c.expanded.is_(False))
    pairs = (
        sa.select(g.c.entitlement_id.label("ent"), m.c.principal_id.label("uid"), g.c.id.label("src"))
        .join(m, sa.and_(m.c.run_id == g.c.run_id,
                         m.c.entitlement_id == "group:" + g.c.principal_id + ":member"))
        .where(
            g.c.run_id == run_id,
            group_grant,
            member_user,
            sa.or_(*[g.c.entitlement_id.startswith(f"{t}:", autoescape=True) for t in expand_types]),
            ~present,
        )
    )
    if entitlements is not None:
        pairs = pairs.where(g.c.entitlement_id.in_(list(entitlements)))
    if members is not None:
        pairs = pairs.where(m.c.principal_id.in_(list(members)))
    if sqlite:
        # json_group_array keeps the order rows arrive in: sort them in the subquery. For a few
        # entitlements sort by an expression (`+g.id`), which no index provides, so SQLite reads
        # the entitlement index for them instead of walking every grant of the run in id order.
        pairs = pairs.order_by(g.c.id if entitlements is None else sa.text("+g.id"))
    p = pairs.subquery("p")
    sources = (sa.func.json_group_array(p.c.src) if sqlite
               else sa.func.jsonb_agg(aggregate_order_by(p.c.src, p.c.src)))
    return sa.select(
        sa.literal(run_id), p.c.ent + ":user:" + p.c.uid, p.c.ent, sa.literal("user"), p.c.uid,
        sa.true(), sources, sa.literal({}, JSONType),
    ).group_by(p.c.ent, p.c.uid)


def record_changes(session: Session, tenant_id: int, run_id: int, previous_run_id: int) -> tuple[int, int]:
    """Insert access_changes for grants added/removed vs the previous generation (all in SQL)."""
    now = sa.literal(utcnow(), UTCDateTime())
    cols = ["tenant_id", "run_id", "grant_id", "change", "entitlement_id", "principal_type",
            "principal_id", "expanded", "created_at"]
    counts = []
    for change, have, other in (("added", run_id, previous_run_id), ("removed", previous_run_id, run_id)):
        n, o = G.alias("n"), G.alias("o")
        select = sa.select(
            sa.literal(tenant_id), sa.literal(run_id), n.c.id, sa.literal(change), n.c.entitlement_id,
            n.c.principal_type, n.c.principal_id, n.c.expanded, now,
        ).where(n.c.run_id == have, ~sa.exists().where(o.c.run_id == other, o.c.id == n.c.id))
        counts.append(_rows(session, sa.insert(AccessChange.__table__).from_select(cols, select)))
    return counts[0], counts[1]


def _count(session: Session, table: sa.Table, run_id: int) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(table).where(table.c.run_id == run_id)).scalar_one()


def analyze(session: Session) -> None:
    """PostgreSQL: fresh statistics for the rows a run just loaded; without them the planner picks
    nested loops over seq scans for the anti-joins of a finalize. ANALYZE samples a bounded number
    of rows and does not block readers or writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("ANALYZE grants, resources"))


def lock_finalizable(session: Session, tenant_id: int, run_id: int) -> tuple[Tenant, SyncRun]:
    """Begin (as a writer) unless a transaction is open, lock the tenant and the run, and check
    the run is the tenant's and running or finalizing; RunStateError says why not."""
    if not session.in_transaction():
        immediate(session)  # SQLite: take the write lock up front (no read-then-write upgrade)
    tenant = _locked(session, Tenant, tenant_id)
    if tenant is None:
        raise RunStateError(f"tenant {tenant_id} does not exist")
    run = _locked(session, SyncRun, run_id)
    if run is None or run.tenant_id != tenant_id:
        raise RunStateError(f"sync run {run_id} is not a run of tenant {tenant.name!r}")
    if run.state not in FINALIZABLE_STATES:
        raise RunStateError(f"sync run {run_id} is {run.state}; only a running or finalizing run can be finalized")
    return tenant, run


def finalize_generation(session: Session, tenant_id: int, run_id: int,
                        expand_types: tuple[str, ...] = DEFAULT_EXPAND_TYPES, *,
                        next_sync_at: Any = None, cleanup: bool = True,
                        batch_size: int = DELETE_BATCH) -> FinalizeResult:
    """Make run `run_id` the tenant's current view, in one transaction, then drop the old one.

    In one transaction: prune grants to principals that are not resources of the run, expand
    group grants (see expand_group_grants), record access_changes vs the previous current run
    (none on the first run: there is no baseline), set tenants.current_run_id (and
    next_sync_at if given), and mark the run succeeded with its counts. If `session` already
    has a transaction open, finalize runs inside it, so changes the caller made beforehand
    commit atomically with the switch (on SQLite, begin that transaction with
    `worker.store.db.immediate(session)`); otherwise it begins one as a writer. The run must be
    running or finalizing. Then, unless cleanup=False, the previous generation is removed in
    batches, each batch its own transaction.
    """
    tenant, run = lock_finalizable(session, tenant_id, run_id)
    previous = tenant.current_run_id
    analyze(session)
    pruned = prune_grants(session, run_id)
    by_type = grants_by_type(session, run_id)  # after pruning, before expansion: the direct grants kept
    expanded = expand_group_grants(session, run_id, tuple(expand_types))
    added = removed = 0
    if previous is not None and previous != run_id:
        added, removed = record_changes(session, tenant_id, run_id, previous)
    counts = {"resources": _count(session, ResourceRow.__table__, run_id),
              "entitlements": _count(session, EntitlementRow.__table__, run_id),
              "grants": _count(session, G, run_id), "grants_by_type": by_type}
    now = utcnow()
    tenant.current_run_id = run_id
    if next_sync_at is not None:
        tenant.next_sync_at = next_sync_at
    run.state = "succeeded"
    run.finished_at = now
    run.counts = {**(run.counts or {}), **counts, "pruned": pruned, "expanded": expanded,
                  "added": added, "removed": removed, "previous_run_id": previous}
    session.commit()
    old_removed = 0
    if cleanup and previous is not None and previous != run_id:
        old_removed = remove_generation(session, previous, batch_size=batch_size)
    return FinalizeResult(run_id, previous, pruned, expanded, added, removed, counts["resources"],
                          counts["entitlements"], counts["grants"], old_removed)


def _is_current(session: Session, run_id: int) -> bool:
    return session.execute(sa.select(Tenant.id).where(Tenant.current_run_id == run_id)).first() is not None


def remove_generation(session: Session, run_id: int, *, batch_size: int = DELETE_BATCH) -> int:
    """Delete a (non-current) run's resources, entitlements, grants and streams in batches.

    Each batch is its own short transaction. The sync_runs row and its access_changes stay as
    history. Returns the number of rows deleted.
    """
    if session.in_transaction():
        session.commit()
    if _is_current(session, run_id):
        session.rollback()
        raise RunStateError(f"sync run {run_id} is a tenant's current view; it cannot be removed")
    session.commit()
    total = 0
    for table in (G, EntitlementRow.__table__, ResourceRow.__table__, SyncStream.__table__):
        while True:
            batch = sa.select(table.c.id).where(table.c.run_id == run_id).limit(batch_size)
            n = _rows(session, sa.delete(table).where(table.c.run_id == run_id, table.c.id.in_(batch)))
            session.commit()
            total += n
            if n < batch_size:
                break
    return total


def discard_run(session: Session, run_id: int, error: str | None = None, *,
                batch_size: int = DELETE_BATCH) -> int:
    """Fail a run that is still active (keeping the tenant's current view) and delete its rows.

    A run that already succeeded and is current cannot be discarded. Returns rows deleted.
    """
    if session.in_transaction():
        session.commit()
    immediate(session)
    run = _locked(session, SyncRun, run_id)
    if run is None:
        session.rollback()
        raise RunStateError(f"sync run {run_id} does not exist")
    if run.state in ACTIVE_RUN_STATES:
        run.state = "failed"
        run.finished_at = utcnow()
        if error is not None:
            run.error = error
    session.commit()
    return remove_generation(session, run_id, batch_size=batch_size)


def collect_garbage(session: Session, tenant_id: int | None = None, *, batch_size: int = DELETE_BATCH) -> int:
    """Remove the rows of finished runs that are not current (a cleanup interrupted by a crash,
    failed runs nobody discarded). Active runs and current views are left alone."""
    if session.in_transaction():
        session.commit()
    current = sa.select(Tenant.current_run_id).where(Tenant.current_run_id.is_not(None))
    candidates = sa.select(SyncRun.id).where(
        SyncRun.state.not_in(ACTIVE_RUN_STATES), SyncRun.id.not_in(current),
        sa.or_(*[sa.exists().where(t.c.run_id == SyncRun.id)
                 for t in (G, EntitlementRow.__table__, ResourceRow.__table__, SyncStream.__table__)]))
    if tenant_id is not None:
        candidates = candidates.where(SyncRun.tenant_id == tenant_id)
    run_ids = session.execute(candidates).scalars().all()
    session.commit()
    return sum(remove_generation(session, r, batch_size=batch_size) for r in run_ids)
