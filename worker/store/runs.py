"""The run/stream state machine, as conditional SQL statements on sync_runs and sync_streams.

Every transition is one UPDATE whose WHERE clause names the state (and, for a stream, the cursor)
it expects, so a task that runs twice (Redis + acks_late deliver at least once) finds the row
already moved and does nothing. The functions here only touch the database; the engine's steps
(worker/engine/steps.py) decide what to enqueue after each commit, and which streams to release
(worker/engine/release.py).

Run:    queued -> running -> finalizing -> succeeded;  queued|running|finalizing -> failed
Stream: pending -> active -> done | skipped;           pending|active -> failed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session

from worker.store.db import immediate, is_sqlite
from worker.store.tables import (
    ACTIVE_RUN_STATES,
    VERIFY_KIND,
    AccessChange,
    EntitlementRow,
    ResourceRow,
    SyncRun,
    SyncStream,
    Tenant,
    utcnow,
)

RUNS = SyncRun.__table__
STREAMS = SyncStream.__table__
TENANTS = Tenant.__table__

OPEN_STREAM_STATES = ("pending", "active")
# Any constant: serializes stream releases on PostgreSQL (SQLite serializes all writers anyway).
_RELEASE_LOCK = 0x6F6B7461


def begin_write(session: Session) -> None:
    """Start a read-then-write transaction (SQLite: take the write lock up front)."""
    immediate(session)


def _insert(session: Session, table: sa.Table) -> Any:
    return (sqlite_dialect.insert(table) if is_sqlite(session) else pg_dialect.insert(table))


# ---------------------------------------------------------------- runs

def create_run(session: Session, tenant_id: int, kind: str = "full") -> int | None:
    """Insert a queued run; None when the tenant already has an active one (unique index).
    `kind` "incremental" asks for an incremental run: its start may still make it a full one."""
    stmt = _insert(session, RUNS).values(tenant_id=tenant_id, state="queued", created_at=utcnow(),
                                         updated_at=utcnow(), counts={}, warnings=[], kind=kind, plan={})
    stmt = stmt.on_conflict_do_nothing().returning(RUNS.c.id)
    row = session.execute(stmt).first()
    return None if row is None else int(row[0])


def run_state(session: Session, run_id: int) -> str | None:
    return session.execute(sa.select(RUNS.c.state).where(RUNS.c.id == run_id)).scalar()


def active_run(session: Session, tenant_id: int) -> SyncRun | None:
    return session.scalars(sa.select(SyncRun).where(
        SyncRun.tenant_id == tenant_id, SyncRun.state.in_(ACTIVE_RUN_STATES))).first()


# Tenants claimed per transaction, and at most per tick: a backlog (after an outage or a bulk add)
# is queued within a few ticks, and no transaction holds thousands of row locks.
CLAIM_BATCH = 500
CLAIM_MAX_PER_TICK = 10_000


def claim_due(session: Session, now: datetime, limit: int = CLAIM_MAX_PER_TICK,
              batch: int = CLAIM_BATCH) -> list[int]:
    """Claim tenants whose sync is due: advance next_sync_at and create a run, in batches.

    Each batch is one transaction that locks its due tenants with FOR UPDATE SKIP LOCKED (on
    SQLite the write lock serializes claims), so two dispatchers claim disjoint tenants. A tenant
    with an active run is not due yet (it keeps its due time). Returns the new run ids, to start.
    """
    started: list[int] = []
    while len(started) < limit:
        claimed = _claim_batch(session, now, min(batch, limit - len(started)))
        if claimed is None:
            break
        started.extend(claimed)
    return started


def _claim_batch(session: Session, now: datetime, batch: int) -> list[int] | None:
    """One claim transaction; None when no tenant was due."""
    begin_write(session)
    has_active_run = sa.select(RUNS.c.id).where(
        RUNS.c.tenant_id == TENANTS.c.id, RUNS.c.state.in_(ACTIVE_RUN_STATES)).exists()
    due = session.execute(
        sa.select(TENANTS.c.id, TENANTS.c.next_sync_at, TENANTS.c.sync_interval)
        .where(TENANTS.c.enabled.is_(True),
               sa.or_(TENANTS.c.next_sync_at.is_(None), TENANTS.c.next_sync_at <= now), ~has_active_run)
        .order_by(TENANTS.c.next_sync_at.asc().nulls_first(), TENANTS.c.id).limit(batch)
        .with_for_update(of=TENANTS, skip_locked=True)).all()
    if not due:
        session.rollback()
        return None
    by_interval: dict[int, list[int]] = {}
    for tenant_id, _due_at, interval in due:
        by_interval.setdefault(max(1, interval or 1), []).append(tenant_id)
    for interval, ids in by_interval.items():
        session.execute(sa.update(TENANTS).where(TENANTS.c.id.in_(ids))
                        .values(next_sync_at=now + timedelta(seconds=interval)))
    stamp = utcnow()
    rows = [{"tenant_id": t, "state": "queued", "created_at": stamp, "updated_at": stamp, "counts": {},
             "warnings": [], "due_at": due_at or now} for t, due_at, _i in due]
    created = dict(session.execute(_insert(session, RUNS).values(rows).on_conflict_do_nothing()
                                   .returning(RUNS.c.tenant_id, RUNS.c.id)).all())
    for tenant_id, due_at, _interval in due:
        if tenant_id not in created:  # a run started meanwhile (`oktasync sync`): still due later
            session.execute(sa.update(TENANTS).where(TENANTS.c.id == tenant_id).values(next_sync_at=due_at))
    session.commit()
    return [int(created[t]) for t, _d, _i in due if t in created]


def start_run(session: Session, run_id: int, options_fingerprint: str | None = None, *,
              kind: str | None = None, plan: dict[str, Any] | None = None) -> bool:
    """queued -> running, recording the options' fingerprint (and the kind and plan the run was
    started as). The caller adds the run's streams in the same transaction."""
    now = utcnow()
    extra: dict[str, Any] = {}
    if kind is not None:
        extra["kind"] = kind
    if plan is not None:
        extra["plan"] = plan
    return session.execute(
        sa.update(RUNS).where(RUNS.c.id == run_id, RUNS.c.state == "queued")
        .values(state="running", started_at=now, updated_at=now,
                options_fingerprint=options_fingerprint, **extra)).rowcount == 1


def closed_kinds(session: Session, run_id: int) -> set[str]:
    """Of an incremental run: the whole-listed kinds whose children it does not re-list."""
    row = session.execute(sa.select(RUNS.c.kind, RUNS.c.plan).where(RUNS.c.id == run_id)).first()
    if row is None or row[0] != "incremental":
        return set()
    return set((row[1] or {}).get("closed_kinds") or ())


def lock_running(session: Session, run_id: int) -> bool:
    """Inside a page's transaction: hold a share lock on the run so nobody fails or deletes it
    until this page is committed; False when the run is no longer running (stop quietly)."""
    row = session.execute(sa.select(RUNS.c.state).where(RUNS.c.id == run_id)
                          .with_for_update(read=True)).first()
    return row is not None and row[0] == "running"


def try_complete(session: Session, run_id: int) -> bool:
    """running -> finalizing when no stream is pending or active; exactly one caller wins."""
    open_streams = sa.select(STREAMS.c.id).where(
        STREAMS.c.run_id == run_id, STREAMS.c.state.in_(OPEN_STREAM_STATES)).exists()
    return session.execute(
        sa.update(RUNS).where(RUNS.c.id == run_id, RUNS.c.state == "running", ~open_streams)
        .values(state="finalizing", updated_at=utcnow())).rowcount == 1


def succeed(session: Session, run_id: int, counts: dict[str, Any], warnings: list[str]) -> bool:
    now = utcnow()
    return session.execute(
        sa.update(RUNS).where(RUNS.c.id == run_id, RUNS.c.state == "finalizing")
        .values(state="succeeded", finished_at=now, updated_at=now, counts=counts, warnings=warnings)
    ).rowcount == 1


def fail(session: Session, run_id: int, error: str) -> bool:
    """Any active state -> failed; open streams are closed too. True if this call failed it."""
    now = utcnow()
    moved = session.execute(
        sa.update(RUNS).where(RUNS.c.id == run_id, RUNS.c.state.in_(ACTIVE_RUN_STATES))
        .values(state="failed", finished_at=now, updated_at=now, error=error[:4000])).rowcount == 1
    if moved:
        session.execute(sa.update(STREAMS).where(
            STREAMS.c.run_id == run_id, STREAMS.c.state.in_(OPEN_STREAM_STATES)).values(state="failed"))
    return moved


def run_counts(s: Session, run_id: int) -> dict[str, Any]:
    """Per-type counts of what the run stored, plus pages and items fetched."""
    def by(col: Any, table: Any) -> dict[str, int]:
        return {str(k): int(n) for k, n in s.execute(
            sa.select(col, sa.func.count()).where(table.c.run_id == run_id).group_by(col)).all()}

    # Grants per type are counted by finalize_generation, after grants to principals the run did
    # not keep (e.g. --filter-email-domains) are pruned.
    r, e, st = ResourceRow.__table__, EntitlementRow.__table__, STREAMS
    pages, items, streams = s.execute(sa.select(sa.func.coalesce(sa.func.sum(st.c.pages), 0),
                                                sa.func.coalesce(sa.func.sum(st.c["items"]), 0), sa.func.count())
                                      .where(st.c.run_id == run_id)).one()
    return {"resources_by_type": by(r.c.resource_type, r), "entitlements_by_type": by(e.c.resource_type, e),
            "pages": int(pages), "items": int(items), "streams": int(streams)}


def run_warnings(s: Session, run_id: int) -> list[str]:
    st = STREAMS
    seen: dict[str, None] = {}
    for (text,) in s.execute(sa.select(st.c.error).where(
            st.c.run_id == run_id, st.c.state.in_(("done", "skipped")), st.c.error.is_not(None)).order_by(st.c.id)):
        for line in str(text).splitlines():
            if line.strip():
                seen.setdefault(line.strip(), None)
    return list(seen)


def record_results(session: Session, run_id: int, counts: dict[str, Any], warnings: list[str]) -> None:
    """Store a finalizing run's counts and warnings (before its view is switched)."""
    session.execute(sa.update(RUNS).where(RUNS.c.id == run_id, RUNS.c.state == "finalizing")
                    .values(counts=counts, warnings=warnings))


# Finished runs kept per tenant (history for `oktasync runs`), besides the current view's run,
# the last successful verify run (the drift metrics read it) and runs that recorded access changes
# (the audit trail has its own retention).
KEEP_FINISHED_RUNS = 20


def prune_runs(session: Session, tenant_id: int, keep: int = KEEP_FINISHED_RUNS) -> int:
    """Delete the tenant's finished runs older than its last `keep`, except its current view's run,
    its last successful verify run and runs with access changes. Returns how many were deleted;
    the caller commits."""
    kept = sa.select(RUNS.c.id).where(RUNS.c.tenant_id == tenant_id).order_by(RUNS.c.id.desc()).limit(keep)
    current = sa.select(TENANTS.c.current_run_id).where(TENANTS.c.id == tenant_id).scalar_subquery()
    last_verify = sa.select(sa.func.max(RUNS.c.id)).where(
        RUNS.c.tenant_id == tenant_id, RUNS.c.kind == VERIFY_KIND, RUNS.c.state == "succeeded").scalar_subquery()
    changes = AccessChange.__table__
    has_changes = sa.select(changes.c.id).where(changes.c.tenant_id == tenant_id, changes.c.run_id == RUNS.c.id).exists()
    return session.execute(sa.delete(RUNS).where(
        RUNS.c.tenant_id == tenant_id, RUNS.c.state.in_(("succeeded", "failed")),
        RUNS.c.id.not_in(kept), RUNS.c.id.not_in([sa.func.coalesce(current, 0), sa.func.coalesce(last_verify, 0)]),
        ~has_changes)).rowcount


# ---------------------------------------------------------------- streams

@dataclass(frozen=True)
class StreamRow:
    id: int
    run_id: int
    tenant_id: int
    kind: str
    parent: str
    url: str | None
    cursor: str | None
    state: str
    run_state: str
    attempts: int


def load_stream(session: Session, stream_id: int) -> StreamRow | None:
    row = session.execute(
        sa.select(STREAMS.c.id, STREAMS.c.run_id, RUNS.c.tenant_id, STREAMS.c.kind, STREAMS.c.parent,
                  STREAMS.c.url, STREAMS.c.cursor, STREAMS.c.state, RUNS.c.state, STREAMS.c.attempts)
        .join(RUNS, RUNS.c.id == STREAMS.c.run_id).where(STREAMS.c.id == stream_id)).first()
    return None if row is None else StreamRow(*row)


def add_streams(session: Session, run_id: int, specs: list[tuple[str, str, str, str]]) -> int:
    """Insert (kind, parent, spec, first cursor) streams as pending; existing ones are left alone
    (a redelivered page opens the same children again). Returns how many were added."""
    if not specs:
        return 0
    now = utcnow()
    unique = {(k, p): (k, p, u, c) for k, p, u, c in specs}
    rows = [{"run_id": run_id, "kind": k, "parent": p, "url": u, "cursor": c, "state": "pending",
             "pages": 0, "items": 0, "attempts": 0, "created_at": now, "updated_at": now}
            for k, p, u, c in unique.values()]
    added = 0
    for i in range(0, len(rows), 500):
        stmt = _insert(session, STREAMS).values(rows[i:i + 500]).on_conflict_do_nothing().returning(STREAMS.c.id)
        added += len(session.execute(stmt).all())
    return added


def advance(session: Session, stream_id: int, given: str, next_cursor: str | None, items: int,
            warnings: list[str] | None = None, final_state: str = "done") -> bool:
    """Move the cursor from `given` to `next_cursor` (done when None). Only from `given`: a
    redelivered task whose page was already taken finds 0 rows and must roll back."""
    now = utcnow()
    values: dict[str, Any] = {
        "cursor": next_cursor, "pages": STREAMS.c.pages + 1, "items": STREAMS.c["items"] + items,
        "heartbeat_at": now, "deferred_until": None, "attempts": 0, "updated_at": now,
    }
    if next_cursor is None:
        values["state"] = final_state
    if warnings:
        # Warnings ride on the stream row (no contention on the run row); the finalizer gathers them.
        values["error"] = "\n".join(warnings)[:4000]
    return session.execute(
        sa.update(STREAMS).where(STREAMS.c.id == stream_id, STREAMS.c.state == "active",
                                 STREAMS.c.cursor == given).values(**values)).rowcount == 1


def defer(session: Session, stream_id: int, given: str, seconds: float) -> bool:
    """Record that the stream waits for the limiter (the reaper counts from deferred_until)."""
    now = utcnow()
    return session.execute(
        sa.update(STREAMS).where(STREAMS.c.id == stream_id, STREAMS.c.state == "active",
                                 STREAMS.c.cursor == given)
        .values(heartbeat_at=now, deferred_until=now + timedelta(seconds=seconds))).rowcount == 1


def record_attempt(session: Session, stream_id: int, given: str, error: str) -> int | None:
    """Count a failed attempt at this page; returns the new count (None if the stream moved on)."""
    now = utcnow()
    moved = session.execute(
        sa.update(STREAMS).where(STREAMS.c.id == stream_id, STREAMS.c.state == "active",
                                 STREAMS.c.cursor == given)
        .values(attempts=STREAMS.c.attempts + 1, heartbeat_at=now, error=error[:4000])).rowcount
    if not moved:
        return None
    return session.execute(sa.select(STREAMS.c.attempts).where(STREAMS.c.id == stream_id)).scalar_one()


def lock_release(session: Session) -> None:
    """Serialize stream releases (advisory lock on PostgreSQL, the write lock on SQLite) so two
    callers cannot both see a free slot and overfill it. Held until the transaction ends."""
    if is_sqlite(session):
        begin_write(session)
    else:
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_RELEASE_LOCK)))


def open_stream_counts(session: Session) -> list[tuple[int, str, str, bool, int]]:
    """(run id, kind, state, waiting, count) of the open streams of running runs; waiting = active
    and deferred for the limiter past now."""
    now = utcnow()
    running = sa.select(RUNS.c.id).where(RUNS.c.state == "running")
    waiting = sa.and_(STREAMS.c.state == "active", STREAMS.c.deferred_until.is_not(None),
                      STREAMS.c.deferred_until > now)
    rows = session.execute(
        sa.select(STREAMS.c.run_id, STREAMS.c.kind, STREAMS.c.state, sa.case((waiting, 1), else_=0).label("w"),
                  sa.func.count())
        .where(STREAMS.c.run_id.in_(running), STREAMS.c.state.in_(OPEN_STREAM_STATES))
        .group_by(STREAMS.c.run_id, STREAMS.c.kind, STREAMS.c.state, "w")).all()
    return [(int(r), str(k), str(st), bool(w), int(n)) for r, k, st, w, n in rows]


def activate_streams(session: Session, slots: dict[int, int], held: set[tuple[int, str]]
                     ) -> list[tuple[int, str]]:
    """Activate up to `slots[run]` pending streams per run, skipping the (run, kind)s in `held`;
    returns (stream id, cursor) to enqueue. Call after lock_release, in the same transaction."""
    now = utcnow()
    out: list[tuple[int, str]] = []
    for run_id, n in slots.items():
        # Round-robin across kinds too: each kind of list mostly hits its own Okta bucket, so
        # spreading the slots lets every bucket work from the start (the slowest bounds the run).
        rn = sa.func.row_number().over(partition_by=STREAMS.c.kind, order_by=STREAMS.c.id).label("rn")
        held_kinds = [k for r, k in held if r == run_id]
        sub = (sa.select(STREAMS.c.id, STREAMS.c.cursor, STREAMS.c.kind, rn)
               .where(STREAMS.c.run_id == run_id, STREAMS.c.state == "pending",
                      STREAMS.c.kind.not_in(held_kinds)).subquery())
        picked = session.execute(sa.select(sub.c.id, sub.c.cursor).order_by(sub.c.rn, sub.c.kind).limit(n)).all()
        ids = [r[0] for r in picked]
        if ids:
            session.execute(sa.update(STREAMS).where(STREAMS.c.id.in_(ids), STREAMS.c.state == "pending")
                            .values(state="active", heartbeat_at=now, updated_at=now, attempts=0))
            out.extend((int(i), str(c)) for i, c in picked)
    return out


# ---------------------------------------------------------------- reaper queries

def stale_streams(session: Session, now: datetime, stall: float) -> list[tuple[int, str, int]]:
    """Active streams of running runs with no heartbeat (or past their deferral) for `stall` s."""
    cutoff = now - timedelta(seconds=stall)
    last = sa.func.coalesce(STREAMS.c.deferred_until, STREAMS.c.heartbeat_at, STREAMS.c.updated_at)
    return [(int(a), str(b), int(c)) for a, b, c in session.execute(
        sa.select(STREAMS.c.id, STREAMS.c.cursor, STREAMS.c.attempts).join(RUNS, RUNS.c.id == STREAMS.c.run_id)
        .where(RUNS.c.state == "running", STREAMS.c.state == "active", last < cutoff)).all()]


def touch_stream(session: Session, stream_id: int, cursor: str, reaped: bool = True) -> bool:
    """Claim a stale stream for re-enqueueing (compare-and-set on its cursor), counting the reap."""
    now = utcnow()
    values: dict[str, Any] = {"heartbeat_at": now, "deferred_until": None}
    if reaped:
        values["attempts"] = STREAMS.c.attempts + 1
    return session.execute(sa.update(STREAMS).where(
        STREAMS.c.id == stream_id, STREAMS.c.state == "active", STREAMS.c.cursor == cursor)
        .values(**values)).rowcount == 1


def runs_to_reap(session: Session, now: datetime, stall: float) -> list[tuple[int, str, datetime]]:
    """(run id, state, created_at) of the runs the reaper must look at: queued or finalizing with
    no update for `stall` s, and running with no open stream (its completion was lost). A running
    run that is making progress is not returned, so a tick's cost follows the stalled runs only."""
    cutoff = now - timedelta(seconds=stall)
    open_streams = sa.select(STREAMS.c.id).where(
        STREAMS.c.run_id == RUNS.c.id, STREAMS.c.state.in_(OPEN_STREAM_STATES)).exists()
    stalled = sa.or_(
        sa.and_(RUNS.c.state == "queued", RUNS.c.created_at < cutoff),
        sa.and_(RUNS.c.state == "finalizing", RUNS.c.updated_at < cutoff),
        sa.and_(RUNS.c.state == "running", ~open_streams))
    return [(int(i), str(st), c) for i, st, c in session.execute(
        sa.select(RUNS.c.id, RUNS.c.state, RUNS.c.created_at).where(stalled).order_by(RUNS.c.id)).all()]
