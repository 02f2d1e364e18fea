"""The drift check: compare a verify run's scratch generation with the tenant's current view.

A verify run is a full sync whose rows stay a scratch generation under its own run id: it is never
published (`tenants.current_run_id`, the change cursor and `access_changes` stay as they are).
`finalize_verify`, in one transaction, prunes and expands the scratch rows by the rules a full
run's finalize uses (so both sides are built alike), compares them with the current view:
*missing* = in Okta (the scratch) but not in the view, *extra* = in the view but not in Okta (by
id), *changed* = in both, with different contents (the columns a reader sees besides the id: a group
renamed in Okta and not synced, a grant whose annotations differ; compared as values, so the key
order of a JSON column is no change); records the counts and the
first DRIFT_SAMPLE ids of each on the run (`counts["drift"]`) and marks it succeeded. Then the scratch rows are deleted in batches, as an old generation is; a crash
before that leaves rows of a finished, non-current run, which `collect_garbage` removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.store.generations import (
    RunStateError,
    _count,
    analyze,
    expand_group_grants,
    grants_by_type,
    lock_finalizable,
    prune_grants,
    remove_generation,
)
from worker.store.queries import options_changed
from worker.store.tables import VERIFY_KIND, EntitlementRow, GrantRow, ResourceRow, SyncRun, Tenant, utcnow

# Ids kept per table and direction on the run: enough to act on, bounded whatever the drift.
DRIFT_SAMPLE = 1000
COMPARED = (("grants", GrantRow.__table__), ("entitlements", EntitlementRow.__table__),
            ("resources", ResourceRow.__table__))
# The columns a reader sees besides the id (the id already names the type, resource and principal).
CONTENTS = {"grants": ("expanded", "sources", "annotations"), "entitlements": ("display_name",),
            "resources": ("display_name", "profile", "parent")}
CHUNK = 2000  # view rows compared per pair of range queries: memory stays bounded whatever the org


@dataclass(frozen=True, slots=True)
class VerifyResult:
    run_id: int
    view_run_id: int
    grants: int    # grants Okta holds (the scratch generation, after prune and expansion)
    missing: int   # grants in Okta, not in the view
    extra: int     # grants in the view, not in Okta
    changed: int   # grants in both whose contents differ
    drift: dict[str, Any]  # what counts["drift"] holds


def _only_in(session: Session, table: sa.Table, have: int, other: int, sample: int) -> dict[str, Any]:
    """Rows of run `have` whose id run `other` lacks: how many, and the first `sample` ids."""
    o = table.alias("o")
    where = sa.and_(table.c.run_id == have, ~sa.exists().where(o.c.run_id == other, o.c.id == table.c.id))
    count = session.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
    ids = list(session.execute(sa.select(table.c.id).where(where).order_by(table.c.id).limit(sample)).scalars())
    return {"count": int(count), "ids": ids}


def _changed(session: Session, table: sa.Table, columns: tuple[str, ...], run_id: int, view_run_id: int,
             sample: int) -> dict[str, Any]:
    """Rows of both runs whose contents differ. PostgreSQL compares in one query (JSONB equality
    ignores key order); SQLite stores JSON as text, so its rows are compared here (_changed_rows)."""
    if session.get_bind().dialect.name != "postgresql":
        return _changed_rows(session, table, columns, run_id, view_run_id, sample)
    o = table.alias("o")
    where = sa.and_(table.c.run_id == view_run_id, o.c.run_id == run_id, o.c.id == table.c.id,
                    sa.or_(*(table.c[c].is_distinct_from(o.c[c]) for c in columns)))
    count = session.execute(sa.select(sa.func.count()).select_from(table).join(o, sa.true()).where(where)).scalar_one()
    ids = list(session.execute(sa.select(table.c.id).select_from(table).join(o, sa.true()).where(where)
                               .order_by(table.c.id).limit(sample)).scalars())
    return {"count": int(count), "ids": ids}


def _changed_rows(session: Session, table: sa.Table, columns: tuple[str, ...], run_id: int, view_run_id: int,
                  sample: int) -> dict[str, Any]:
    """The view's rows in id order, CHUNK at a time, each
    chunk's id range read from `run_id` too (the primary key's index answers both). Values compare
    as Python values: JSON objects come back as dicts on both dialects, so key order is no change."""
    cols = [table.c.id, *(table.c[c] for c in columns)]
    count, ids, after = 0, [], None
    while True:
        where = [table.c.run_id == view_run_id] + ([table.c.id > after] if after is not None else [])
        mine = session.execute(sa.select(*cols).where(*where).order_by(table.c.id).limit(CHUNK)).all()
        if not mine:
            break
        bounds = [table.c.id >= mine[0].id, table.c.id <= mine[-1].id]
        theirs = {r[0]: tuple(r[1:]) for r in session.execute(
            sa.select(*cols).where(table.c.run_id == run_id, *bounds))}
        for row in mine:
            other = theirs.get(row[0])
            if other is not None and other != tuple(row[1:]):
                count += 1
                if len(ids) < sample:
                    ids.append(row[0])
        after = mine[-1].id
    return {"count": count, "ids": ids}


def compare_generations(session: Session, run_id: int, view_run_id: int, sample: int = DRIFT_SAMPLE
                        ) -> dict[str, Any]:
    """Per table (grants, entitlements, resources): the rows of `run_id` missing from
    `view_run_id`, the rows of `view_run_id` extra to `run_id` (by id), and the rows of both whose
    contents differ (counts and samples)."""
    out: dict[str, Any] = {"view_run_id": view_run_id, "sample_limit": sample}
    for name, table in COMPARED:
        missing = _only_in(session, table, run_id, view_run_id, sample)
        extra = _only_in(session, table, view_run_id, run_id, sample)
        changed = _changed(session, table, CONTENTS[name], run_id, view_run_id, sample)
        out[name] = {"missing": missing["count"], "extra": extra["count"], "changed": changed["count"],
                     "missing_ids": missing["ids"], "extra_ids": extra["ids"], "changed_ids": changed["ids"]}
    return out


def finalize_verify(session: Session, tenant_id: int, run_id: int, *, sample: int = DRIFT_SAMPLE) -> VerifyResult:
    """Compare verify run `run_id` with the tenant's current view and record the drift on the run
    (module doc); the view, the cursor and access_changes are not touched. Then delete the run's rows."""
    tenant, run = lock_finalizable(session, tenant_id, run_id)
    if run.kind != VERIFY_KIND:
        raise RunStateError(f"sync run {run_id} is a {run.kind} run, not a verify run")
    view = tenant.current_run_id
    if view is None:
        raise RunStateError(f"tenant {tenant.name!r} has no current view to compare with")
    analyze(session)
    pruned = prune_grants(session, run_id)
    by_type = grants_by_type(session, run_id)
    expanded = expand_group_grants(session, run_id)
    drift = compare_generations(session, run_id, view, sample)
    counts = {name: _count(session, table, run_id) for name, table in COMPARED}
    run.state = "succeeded"
    run.finished_at = utcnow()
    run.counts = {**(run.counts or {}), **counts, "grants_by_type": by_type, "pruned": pruned,
                  "expanded": expanded, "drift": drift}
    session.commit()
    remove_generation(session, run_id)
    grants = drift["grants"]
    return VerifyResult(run_id, view, counts["grants"], grants["missing"], grants["extra"], grants["changed"], drift)


def verify_baseline(session: Session, tenant_id: int) -> tuple[str | None, str | None]:
    """(why a verify of the tenant cannot run, or None; a caveat for its result, or None)."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        return None, None  # removed: the run's start says so
    if tenant.current_run_id is None:
        return "cannot verify: the tenant has no complete sync to compare with (sync it first)", None
    if options_changed(session, tenant_id):
        return None, ("the tenant's options changed since its current view was synced: the drift includes what "
                      "they add or leave out (a full sync applies them)")
    return None, None


@dataclass(frozen=True, slots=True)
class LastVerify:
    """A tenant's last successful verify run, as the metrics exporter reports it."""

    tenant: str
    run_id: int
    finished_at: datetime
    missing: int
    extra: int
    changed: int
    # (table, direction, count) for the resources and entitlements (a rename changes no grant)
    others: tuple[tuple[str, str, int], ...] = ()


OTHER_TABLES = ("resources", "entitlements")
DIRECTIONS = ("missing", "extra", "changed")


def last_verifies(session: Session) -> list[LastVerify]:
    """Each tenant's last succeeded verify run: one grouped query over the (pruned) run history."""
    last = (sa.select(SyncRun.tenant_id, sa.func.max(SyncRun.id).label("run_id"))
            .where(SyncRun.kind == VERIFY_KIND, SyncRun.state == "succeeded").group_by(SyncRun.tenant_id)
            .subquery())
    run = SyncRun.__table__
    missing = run.c.counts[("drift", "grants", "missing")].as_integer()
    extra = run.c.counts[("drift", "grants", "extra")].as_integer()
    changed = run.c.counts[("drift", "grants", "changed")].as_integer()  # absent on older runs: 0
    others = [run.c.counts[("drift", t, d)].as_integer() for t in OTHER_TABLES for d in DIRECTIONS]
    rows = session.execute(sa.select(Tenant.name, run.c.id, run.c.finished_at, missing, extra, changed, *others)
                           .join(last, last.c.tenant_id == Tenant.id).join(run, run.c.id == last.c.run_id)
                           .order_by(Tenant.name)).all()
    keys = [(t, d) for t in OTHER_TABLES for d in DIRECTIONS]
    return [LastVerify(str(row[0]), int(row[1]), row[2], int(row[3] or 0), int(row[4] or 0), int(row[5] or 0),
                       tuple((t, d, int(n or 0)) for (t, d), n in zip(keys, row[6:], strict=True)))
            for row in rows]
