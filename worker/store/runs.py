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

import functools
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
    `kind` "incremental" asks for an incremental run: its start may still make it a full one;
    "verify" asks for a drift check."""
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


@dataclass(frozen=True)
class Schedule:
    """One kind of scheduled run: the tenants column saying when it is next due (indexed with
    `enabled`) and the one holding its interval."""

    kind: str
    due: sa.Column
    interval: sa.Column
    never_ran_is_due: bool  # full: NULL means never synced, so due; the others: NULL means off

    def is_due(self, now: datetime) -> Any:
        return sa.or_(self.due.is_(None), self.due <= now) if self.never_ran_is_due else self.due <= now

    def not_due(self, now: datetime) -> Any:
        return sa.and_(self.due.is_not(None), self.due > now) if self.never_ran_is_due \
            else sa.or_(self.due.is_(None), self.due > now)


FULL = Schedule("full", TENANTS.c.next_sync_at, TENANTS.c.sync_interval, True)
INCREMENTAL = Schedule("incremental", TENANTS.c.next_incremental_at, TENANTS.c.incremental_interval, False)
VERIFY = Schedule("verify", TENANTS.c.next_verify_at, TENANTS.c.verify_interval, False)
# In precedence order: a tenant due for several kinds gets the first (a full run re-reads
# everything an incremental one would, and a drift check waits for the view to be current).
SCHEDULES = (FULL, INCREMENTAL, VERIFY)

# Tenants claimed per transaction, and at most per tick: a backlog (after an outage or a bulk add)
# is queued within a few ticks, and no transaction holds thousands of row locks.
CLAIM_BATCH = 500
CLAIM_MAX_PER_TICK = 10_000


def claim_due(session: Session, now: datetime, limit: int = CLAIM_MAX_PER_TICK,
              batch: int = CLAIM_BATCH, max_active: int | None = None) -> list[int]:
    """Claim tenants whose full, incremental or verify run is due: move that kind's due time an
    interval on and create a run of that kind, in batches, kind after kind in SCHEDULES' order.

    Each batch is one transaction that locks its due tenants with FOR UPDATE SKIP LOCKED (on
    SQLite the write lock serializes claims), so two dispatchers claim disjoint tenants; each reads
    its kind's index, and a tenant still due for an earlier kind is left to that kind's claim. A
    tenant with an active run is not due yet (it keeps its due times). Returns the new run ids, to
    start.

    `max_active` (admission): claim only while fewer runs than that are active in the cluster,
    oldest due first across the kinds (a tenant never synced first); the others stay due, unclaimed,
    and keep their due times, so they are admitted in order on later ticks as runs finish.
    """
    if max_active is not None:
        return _admit(session, now, min(limit, batch), max_active)
    started: list[int] = []
    for schedule in SCHEDULES:
        while len(started) < limit:
            size = min(batch, limit - len(started))
            run_ids, found = claim_batch(session, now, size, schedule)
            started.extend(run_ids)
            if found < size:  # the last due ones (the rest are locked by another dispatcher)
                break
    return started


# Any constant: serializes bounded claims, so two dispatchers cannot both fill the same free places.
_CLAIM_LOCK = 0x6F6B7462


def active_runs(session: Session) -> int:
    """Runs queued, running or finalizing (counted from the partial unique index on active runs)."""
    return int(session.execute(sa.select(sa.func.count()).select_from(RUNS)
                               .where(RUNS.c.state.in_(ACTIVE_RUN_STATES))).scalar_one())


def _due(schedule: Schedule, now: datetime, *columns: Any) -> sa.Select:
    """`columns` of the enabled tenants due for `schedule`'s kind (and not for an earlier kind)
    without an active run, longest-waiting first (never ran first), along the kind's index."""
    has_active_run = sa.select(RUNS.c.id).where(
        RUNS.c.tenant_id == TENANTS.c.id, RUNS.c.state.in_(ACTIVE_RUN_STATES)).exists()
    earlier = SCHEDULES[:SCHEDULES.index(schedule)]
    return (sa.select(*columns)
            .where(TENANTS.c.enabled.is_(True), schedule.is_due(now), *(e.not_due(now) for e in earlier),
                   ~has_active_run)
            .order_by(schedule.due.asc().nulls_first(), TENANTS.c.id))


def _oldest_due(session: Session, now: datetime, schedule: Schedule) -> tuple[bool, datetime] | None:
    """(never ran, due time) of `schedule`'s longest-waiting due tenant without an active run, for
    ordering the kinds; None when none is due. One read down the kind's index."""
    row = session.execute(_due(schedule, now, schedule.due, TENANTS.c.created_at).limit(1)).first()
    if row is None:
        return None
    return (row[0] is None, row[0] or row[1])


def _admit(session: Session, now: datetime, batch: int, max_active: int) -> list[int]:
    """claim_due under the admission bound: each transaction locks the claim, counts the active
    runs and claims up to the free places from the kind whose longest-waiting tenant waited
    longest (a tenant never synced counts as due since it was added, and goes first)."""
    started: list[int] = []
    while True:
        begin_write(session)
        if not is_sqlite(session):
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIM_LOCK)))
        free = min(batch, max_active - active_runs(session))
        heads = [(h, schedule) for schedule in SCHEDULES if free > 0
                 and (h := _oldest_due(session, now, schedule)) is not None]
        if not heads:
            session.rollback()
            return started
        schedule = min(heads, key=lambda x: (not x[0][0], x[0][1], SCHEDULES.index(x[1])))[1]
        run_ids, found = claim_batch(session, now, free, schedule, begun=True)
        started.extend(run_ids)
        if not found:
            return started


def claim_batch(session: Session, now: datetime, batch: int, schedule: Schedule,
                begun: bool = False) -> tuple[list[int], int]:
    """One claim transaction of `schedule`'s kind: (the runs created, the due tenants found).
    `begun`: the caller already started the write transaction (and took the claim lock)."""
    if not begun:
        begin_write(session)
    due = session.execute(
        _due(schedule, now, TENANTS.c.id, schedule.due, schedule.interval, INCREMENTAL.due, INCREMENTAL.interval,
             TENANTS.c.created_at).limit(batch).with_for_update(of=TENANTS, skip_locked=True)).all()
    if not due:
        session.rollback()
        return [], 0
    _move_on(session, schedule.due, [(t, interval) for t, _d, interval, _i, _ii, _c in due], now)
    if schedule is FULL:  # a full run makes an incremental one due meanwhile pointless
        _move_on(session, INCREMENTAL.due, [(t, ii) for t, _d, _iv, _i, ii, _c in due if ii], now)
    stamp = utcnow()
    # A first sync was due from the moment the tenant was added (it may have waited for admission).
    rows = [{"tenant_id": t, "state": "queued", "created_at": stamp, "updated_at": stamp, "counts": {},
             "warnings": [], "kind": schedule.kind, "plan": {}, "due_at": due_at or min(created, now)}
            for t, due_at, _iv, _i, _ii, created in due]
    created = dict(session.execute(_insert(session, RUNS).values(rows).on_conflict_do_nothing()
                                   .returning(RUNS.c.tenant_id, RUNS.c.id)).all())
    for tenant_id, due_at, _iv, incremental_at, _ii, _c in due:
        if tenant_id not in created:  # a run started meanwhile (`oktasync sync`): still due later
            kept = {schedule.due.name: due_at}
            if schedule is FULL:
                kept[INCREMENTAL.due.name] = incremental_at
            session.execute(sa.update(TENANTS).where(TENANTS.c.id == tenant_id).values(**kept))
    session.commit()
    return [int(created[t]) for t, *_ in due if t in created], len(due)


def _move_on(session: Session, due: sa.Column, tenants: list[tuple[int, int | None]], now: datetime) -> None:
    """Set `due` to now + each tenant's interval, one UPDATE per distinct interval."""
    by_interval: dict[int, list[int]] = {}
    for tenant_id, interval in tenants:
        by_interval.setdefault(max(1, interval or 1), []).append(tenant_id)
    for interval, ids in by_interval.items():
        session.execute(sa.update(TENANTS).where(TENANTS.c.id.in_(ids))
                        .values({due: now + timedelta(seconds=interval)}))


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


_TRY_COMPLETE = (
    sa.update(RUNS).where(RUNS.c.id == sa.bindparam("p_run"), RUNS.c.state == "running",
                          ~sa.select(STREAMS.c.id).where(STREAMS.c.run_id == sa.bindparam("p_run"),
                                                         STREAMS.c.state.in_(OPEN_STREAM_STATES)).exists())
    .values(state="finalizing", updated_at=sa.bindparam("p_now", type_=RUNS.c.updated_at.type)))


def try_complete(session: Session, run_id: int) -> bool:
    """running -> finalizing when no stream is pending or active; exactly one caller wins.
    (Called after every finished list: the statement is built once.)"""
    return session.execute(_TRY_COMPLETE, {"p_run": run_id, "p_now": utcnow()}).rowcount == 1


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
    # The tenant row's updated_at (None: the tenant is gone), for Runtime.tenant's cache: read
    # with the stream so a page costs one statement before its fetch.
    tenant_version: datetime | None = None


_LOAD_STREAM = (
    sa.select(STREAMS.c.id, STREAMS.c.run_id, RUNS.c.tenant_id, STREAMS.c.kind, STREAMS.c.parent,
              STREAMS.c.url, STREAMS.c.cursor, STREAMS.c.state, RUNS.c.state, STREAMS.c.attempts,
              TENANTS.c.updated_at)
    .join(RUNS, RUNS.c.id == STREAMS.c.run_id).outerjoin(TENANTS, TENANTS.c.id == RUNS.c.tenant_id)
    .where(STREAMS.c.id == sa.bindparam("p_stream")))


def load_stream(session: Session, stream_id: int) -> StreamRow | None:
    row = session.execute(_LOAD_STREAM, {"p_stream": stream_id}).first()
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
    stmt = _add_streams_statement("sqlite" if is_sqlite(session) else "postgresql")
    return len(session.execute(stmt, rows).all())


@functools.cache
def _add_streams_statement(dialect: str) -> Any:
    """add_streams' INSERT, built once and run with a list of rows (SQLAlchemy's insertmanyvalues
    batches them with RETURNING): a multi-row VALUES statement was compiled on every page that
    opened lists, ~10 % of a sync worker's CPU at 1,000 tenants (py-spy)."""
    ins = (sqlite_dialect.insert if dialect == "sqlite" else pg_dialect.insert)(STREAMS)
    return ins.on_conflict_do_nothing().returning(STREAMS.c.id)


def advance(session: Session, stream_id: int, given: str, next_cursor: str | None, items: int,
            warnings: list[str] | None = None, final_state: str = "done", *, run_id: int | None = None) -> bool:
    """Move the cursor from `given` to `next_cursor` (done when None). Only from `given`: a
    redelivered task whose page was already taken finds 0 rows and must roll back.

    With `run_id` (a page's transaction), only while that run is running, holding a share lock on
    the run row until commit so nobody fails or deletes the run under the page's writes; the
    same statement, so a page pays no extra round trip for it."""
    # Bind names are no column's: an UPDATE would take a column-named parameter as one more SET.
    params: dict[str, Any] = {"p_stream": stream_id, "p_given": given, "p_next": next_cursor, "p_items": items,
                              "p_now": utcnow()}
    if next_cursor is None:
        params["p_state"] = final_state
    if warnings:
        # Warnings ride on the stream row (no contention on the run row); the finalizer gathers them.
        params["p_error"] = "\n".join(warnings)[:4000]
    if run_id is not None:
        params["p_run"] = run_id
    stmt = _advance_statement(next_cursor is None, bool(warnings), run_id is not None)
    return session.execute(stmt, params).rowcount == 1


@functools.cache
def _advance_statement(done: bool, warned: bool, fenced: bool) -> sa.Update:
    """advance()'s UPDATE, built once per shape (a page's hottest statement: building it per call
    cost as much client CPU as running it)."""
    now = sa.bindparam("p_now", type_=STREAMS.c.updated_at.type)
    values: dict[str, Any] = {
        "cursor": sa.bindparam("p_next", type_=STREAMS.c.cursor.type), "pages": STREAMS.c.pages + 1,
        "items": STREAMS.c["items"] + sa.bindparam("p_items", type_=sa.Integer()), "heartbeat_at": now,
        "deferred_until": None, "attempts": 0, "updated_at": now,
    }
    if done:
        values["state"] = sa.bindparam("p_state", type_=STREAMS.c.state.type)
    if warned:
        values["error"] = sa.bindparam("p_error", type_=STREAMS.c.error.type)
    where = [STREAMS.c.id == sa.bindparam("p_stream"), STREAMS.c.state == "active",
             STREAMS.c.cursor == sa.bindparam("p_given")]
    if fenced:
        where.append(sa.select(RUNS.c.id).where(RUNS.c.id == sa.bindparam("p_run"), RUNS.c.state == "running")
                     .with_for_update(read=True).exists())
    return sa.update(STREAMS).where(*where).values(**values)


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


def lock_release(session: Session, run_id: int | None = None) -> None:
    """Serialize stream releases so two callers cannot both see a free slot and overfill it; held
    until the transaction ends. With `run_id`: only releases of that run wait for each other (and a
    global release waits for them); without: the global release, alone. PostgreSQL: advisory locks
    (the global one taken shared by per-run releases); SQLite: its write lock serializes all."""
    if is_sqlite(session):
        if not session.in_transaction():  # in a page's write transaction it is a writer already
            begin_write(session)
    elif run_id is None:
        session.execute(_GLOBAL_RELEASE_LOCK)
    else:
        session.execute(_RUN_RELEASE_LOCK, {"p_key": run_id % 2**31})


# The statements of a page's release, built once (building them per call cost about as much client
# CPU as running them, with up to ~30 pages a second going through them).
_GLOBAL_RELEASE_LOCK = sa.select(sa.func.pg_advisory_xact_lock(_RELEASE_LOCK))
_RUN_RELEASE_LOCK = sa.select(sa.func.pg_advisory_xact_lock_shared(_RELEASE_LOCK),
                              sa.func.pg_advisory_xact_lock(_RELEASE_LOCK, sa.bindparam("p_key", type_=sa.Integer())))


def _waiting(now: Any) -> Any:
    """An active stream deferred for the limiter past now (its message is a countdown, no slot)."""
    return sa.and_(STREAMS.c.state == "active", STREAMS.c.deferred_until.is_not(None), STREAMS.c.deferred_until > now)


_NOW = sa.bindparam("p_now", type_=STREAMS.c.updated_at.type)


# The active states spelled as the partial unique index on sync_runs spells them, so PostgreSQL
# reads running runs from that (small) index instead of scanning every finished run.
_RUNNING = sa.and_(RUNS.c.state.in_(ACTIVE_RUN_STATES), RUNS.c.state == "running")


def open_stream_counts(session: Session) -> list[tuple[int, str, str, bool, int]]:
    """(run id, kind, state, waiting, count) of the open streams of running runs; waiting = active
    and deferred for the limiter past now (one run's: run_stream_counts)."""
    rows = session.execute(_open_stream_counts(False), {"p_now": utcnow()}).all()
    return [(int(r), str(k), str(st), bool(w), int(n)) for r, k, st, w, n in rows]


@functools.cache
def _open_stream_counts(one_run: bool) -> sa.Select:
    running = sa.select(RUNS.c.id).where(_RUNNING)
    if one_run:
        running = running.where(RUNS.c.id == sa.bindparam("p_run"))
    return (sa.select(STREAMS.c.run_id, STREAMS.c.kind, STREAMS.c.state,
                      sa.case((_waiting(_NOW), 1), else_=0).label("w"), sa.func.count())
            .where(STREAMS.c.run_id.in_(running), STREAMS.c.state.in_(OPEN_STREAM_STATES))
            .group_by(STREAMS.c.run_id, STREAMS.c.kind, STREAMS.c.state, "w"))


def running_count(session: Session) -> int:
    """How many runs are running (from the partial index on active runs)."""
    return int(session.execute(_RUNNING_COUNT).scalar_one())


_RUNNING_COUNT = sa.select(sa.func.count()).select_from(RUNS).where(_RUNNING)


def run_stream_counts(session: Session, run_id: int) -> tuple[list[tuple[int, str, str, bool, int]], int]:
    """open_stream_counts of `run_id` only, and the busy streams (active, not waiting for the
    limiter) of the running runs other than `run_id`, in one statement (a page's release: one
    round trip fewer). The second is 0 when the run has no open stream (nothing to release)."""
    rows = session.execute(_RUN_STREAM_COUNTS, {"p_run": run_id, "p_now": utcnow()}).all()
    counts = [(int(r), str(k), str(st), bool(w), int(n)) for r, k, st, w, n, _e in rows]
    return counts, int(rows[0][5]) if rows else 0


# Busy streams (active, not waiting for the limiter) of the running runs other than `p_run`: one
# index probe per running run, whatever the history.
_BUSY_ELSEWHERE = (
    sa.select(sa.func.count()).select_from(STREAMS).join(RUNS, RUNS.c.id == STREAMS.c.run_id)
    .where(_RUNNING, RUNS.c.id != sa.bindparam("p_run"), STREAMS.c.state == "active", ~_waiting(_NOW)))
# The elsewhere count rides on each of the run's rows as an uncorrelated scalar subquery
# (PostgreSQL evaluates it once).
_RUN_STREAM_COUNTS = _open_stream_counts(True).add_columns(_BUSY_ELSEWHERE.scalar_subquery().label("elsewhere"))


def activate_streams(session: Session, slots: dict[int, int], held: set[tuple[int, str]]
                     ) -> list[tuple[int, str]]:
    """Activate up to `slots[run]` pending streams per run, skipping the (run, kind)s in `held`;
    returns (stream id, cursor) to enqueue, round-robin across kinds. Call after lock_release, in
    the same transaction (one statement a run: pick and activate)."""
    now = utcnow()
    out: list[tuple[int, str]] = []
    for run_id, n in slots.items():
        held_kinds = [k for r, k in held if r == run_id]
        rows = session.execute(_ACTIVATE_PICKED, {"p_run": run_id, "p_held": held_kinds, "p_n": n, "p_now": now}).all()
        out.extend((int(i), str(c)) for i, c, _k in _round_robin(rows))
    return out


def _round_robin(rows: Any) -> list[Any]:
    """(id, cursor, kind) rows in the pick's order: the first of each kind, then the second, ..."""
    rank: dict[str, int] = {}
    ordered = []
    for row in sorted(rows, key=lambda r: r[0]):
        rank[row[2]] = rank.get(row[2], 0) + 1
        ordered.append((rank[row[2]], row[2], row))
    return [row for _rank, _kind, row in sorted(ordered, key=lambda t: (t[0], t[1]))]


def _pending_to_pick() -> sa.Select:
    # Round-robin across kinds too: each kind of list mostly hits its own Okta bucket, so
    # spreading the slots lets every bucket work from the start (the slowest bounds the run).
    rn = sa.func.row_number().over(partition_by=STREAMS.c.kind, order_by=STREAMS.c.id).label("rn")
    sub = (sa.select(STREAMS.c.id, STREAMS.c.cursor, STREAMS.c.kind, rn)
           .where(STREAMS.c.run_id == sa.bindparam("p_run"), STREAMS.c.state == "pending",
                  STREAMS.c.kind.not_in(sa.bindparam("p_held", expanding=True))).subquery())
    return sa.select(sub.c.id).order_by(sub.c.rn, sub.c.kind).limit(sa.bindparam("p_n"))


# Pick and activate in one statement; RETURNING gives no order, so _round_robin restores the pick's.
_ACTIVATE_PICKED = (sa.update(STREAMS).where(STREAMS.c.id.in_(_pending_to_pick()), STREAMS.c.state == "pending")
                    .values(state="active", heartbeat_at=_NOW, updated_at=_NOW, attempts=0)
                    .returning(STREAMS.c.id, STREAMS.c.cursor, STREAMS.c.kind))


# ---------------------------------------------------------------- reaper queries

def stale_streams(session: Session, now: datetime, stall: float) -> list[tuple[int, str, int]]:
    """Active streams of running runs with no heartbeat (or past their deferral) for `stall` s."""
    cutoff = now - timedelta(seconds=stall)
    last = sa.func.coalesce(STREAMS.c.deferred_until, STREAMS.c.heartbeat_at, STREAMS.c.updated_at)
    return [(int(a), str(b), int(c)) for a, b, c in session.execute(
        sa.select(STREAMS.c.id, STREAMS.c.cursor, STREAMS.c.attempts).join(RUNS, RUNS.c.id == STREAMS.c.run_id)
        .where(_RUNNING, STREAMS.c.state == "active", last < cutoff)).all()]


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
        sa.select(RUNS.c.id, RUNS.c.state, RUNS.c.created_at).where(RUNS.c.state.in_(ACTIVE_RUN_STATES), stalled)
        .order_by(RUNS.c.id)).all()]
