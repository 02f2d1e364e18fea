"""Which pending streams to activate: round-robin across running runs within the caps.

`plan_release` is pure (counts and caps in, slots per run out), so the fairness rules are tested
without a database; `release_streams` reads the counts and applies the plan through the store
(worker/store/runs.py) in one serialized transaction.

After a page, a start or a wait, only that run's streams are released, under that run's lock, from
its own counts and one count of the busy streams elsewhere (the global cap): pages of different
runs do not wait for each other, and a release costs what its run holds, not what every running
run holds. When free slots are scarce (fewer than one run's cap), who gets them matters, so
that release, like Beat's tick, plans over every running run (fewest busy first) under the one
global lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from worker.store import runs

# A stream waiting for the limiter (deferred) holds no worker slot, only a countdown message; up
# to this many times the cap may be open per run so other lists (other Okta buckets) keep going.
DEFERRED_HEADROOM = 4


def kind_waiting_cap(tenant_cap: int) -> int:
    """Waiting streams of one kind past which that kind gets no new stream. Each kind of list
    mostly hits one Okta bucket: once this many of its lists wait for the limiter, its bucket
    (not the number of open lists) holds it back, and opening more of them would only fill the
    open headroom with waiters and keep lists of other buckets (e.g. group members behind app
    assignments) from starting."""
    return max(2, tenant_cap // 4)


@dataclass(frozen=True)
class ReleasePlan:
    slots: dict[int, int] = field(default_factory=dict)  # run id -> streams to activate
    held: set[tuple[int, str]] = field(default_factory=set)  # (run id, kind) held back by its bucket


def plan_release(counts: Iterable[tuple[int, str, str, bool, int]], tenant_cap: int,
                 global_cap: int, busy_elsewhere: int = 0) -> ReleasePlan:
    """From (run id, kind, state, waiting, count) of the open streams: how many pending streams
    each run may activate, keeping at most `tenant_cap` busy per run and `global_cap` busy in all.
    Busy = active and not waiting for the limiter; with waiting ones, at most DEFERRED_HEADROOM x
    `tenant_cap` streams of a run are open at once, and a kind with `kind_waiting_cap(tenant_cap)`
    streams waiting gets no new one. Runs with the fewest busy streams are served first.
    `busy_elsewhere`: busy streams of runs not in `counts` (they count against `global_cap`)."""
    busy: dict[int, int] = {}
    opened: dict[int, int] = {}
    waiting_by_kind: dict[tuple[int, str], int] = {}
    pending_by_kind: dict[tuple[int, str], int] = {}
    for run_id, kind, state, waiting, n in counts:
        if state == "pending":
            pending_by_kind[(run_id, kind)] = pending_by_kind.get((run_id, kind), 0) + n
            continue
        opened[run_id] = opened.get(run_id, 0) + n
        if waiting:
            waiting_by_kind[(run_id, kind)] = waiting_by_kind.get((run_id, kind), 0) + n
        else:
            busy[run_id] = busy.get(run_id, 0) + n
    kind_cap = kind_waiting_cap(tenant_cap)
    held = {rk for rk, n in waiting_by_kind.items() if n >= kind_cap}
    pending: dict[int, int] = {}
    for (run_id, kind), n in pending_by_kind.items():
        if (run_id, kind) not in held:
            pending[run_id] = pending.get(run_id, 0) + n
    free = global_cap - busy_elsewhere - sum(busy.values())
    if free <= 0 or not pending:
        return ReleasePlan()
    slots: dict[int, int] = {}
    order = sorted(pending, key=lambda r: (busy.get(r, 0), r))
    progressed = True
    while free > 0 and progressed:
        progressed = False
        for run_id in order:
            if free <= 0:
                break
            g = slots.get(run_id, 0)
            if (g < pending[run_id] and busy.get(run_id, 0) + g < tenant_cap
                    and opened.get(run_id, 0) + g < tenant_cap * DEFERRED_HEADROOM):
                slots[run_id] = g + 1
                free -= 1
                progressed = True
    return ReleasePlan(slots, held)


@dataclass(frozen=True)
class RunRelease:
    """What a run's release did: the streams it activated (to enqueue once committed), how many of
    the run's streams were open (pending or active) under its lock before it, and whether slots
    were scarce so the plan must be made over every run instead (`release_streams(..., None)`, in
    a transaction of its own)."""

    picked: list[tuple[int, str]] = field(default_factory=list)
    open_streams: int = 0
    plan_globally: bool = False


def release_run(session: Session, tenant_cap: int, global_cap: int, run_id: int) -> RunRelease:
    """The release of one run's pending streams under that run's lock, inside the caller's write
    transaction (a page's, which then commits its rows and the activations at once); it never
    rolls back. The lock is taken after the caller's writes, so whoever takes it last sees every
    other release and finished stream of the run committed: `open_streams == 0` then means the run
    has nothing left open (the caller checks completion)."""
    runs.lock_release(session, run_id)
    counts, elsewhere = runs.run_stream_counts(session, run_id)
    open_streams = sum(n for *_rest, n in counts)
    busy_here = sum(n for _r, _k, state, waiting, n in counts if state == "active" and not waiting)
    free = global_cap - elsewhere - busy_here
    if free <= 0:  # nothing to give: the release after the next stream ends will find its slot
        return RunRelease(open_streams=open_streams)
    # Scarce (fewer free than one run's cap): the run may keep what fits in its share of the cap
    # (a slot its own ended stream freed, mostly); more goes to the fewest-busy runs.
    scarce = free < tenant_cap
    if not scarce and not any(state == "pending" for _r, _k, state, _w, _n in counts):
        return RunRelease(open_streams=open_streams)  # nothing of this run waits for a slot
    if not scarce or free <= max(1, global_cap // max(1, runs.running_count(session))) - busy_here:
        plan = plan_release(counts, tenant_cap, global_cap, elsewhere)
        if plan.slots or not scarce:
            picked = runs.activate_streams(session, plan.slots, plan.held) if plan.slots else []
            return RunRelease(picked, open_streams)
    return RunRelease(open_streams=open_streams, plan_globally=True)


def release_streams(session: Session, tenant_cap: int, global_cap: int, run_id: int | None = None
                    ) -> list[tuple[int, str]]:
    """Activate the planned streams (of `run_id` only, if given and slots are not scarce); returns
    (stream id, cursor) to enqueue. Call inside a fresh transaction; the caller commits."""
    if run_id is not None:
        released = release_run(session, tenant_cap, global_cap, run_id)
        if not released.plan_globally:
            return released.picked
        session.rollback()  # plan over every run instead
    return _release_all(session, tenant_cap, global_cap)


def _release_all(session: Session, tenant_cap: int, global_cap: int) -> list[tuple[int, str]]:
    """The global plan, under the exclusive release lock: every running run, fewest busy first."""
    runs.lock_release(session)
    plan = plan_release(runs.open_stream_counts(session), tenant_cap, global_cap)
    if not plan.slots:
        return []
    return runs.activate_streams(session, plan.slots, plan.held)
