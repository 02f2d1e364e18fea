"""The sync's steps: start a run, fetch a page, finalize, fail, dispatch, reap.

These are the bodies of the Celery tasks (worker/tasks/sync.py) and of the embedded mode's
in-process tasks. Each takes ids, re-reads state, does one short piece of work, commits, and only
then enqueues what follows, so every step may run twice without effect (DESIGN.md "A sync, step
by step"; celery-patterns.md §1.5).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from datetime import timedelta
from typing import Any

from worker.connector import (
    Fail,
    PageResult,
    Skip,
    StreamSpec,
    handle_error,
    handle_page,
    static_resources,
)
from worker.connector.types.base import View
from worker.engine.kinds import INCREMENTAL, LISTS_EVERYTHING, VERIFY, apply_run, plan_run
from worker.engine.release import release_run, release_streams
from worker.engine.runtime import Runtime
from worker.engine.sender import NEW_LIST
from worker.model import container_key
from worker.store import runs
from worker.store.drift import verify_baseline
from worker.store.generations import RunStateError, discard_run
from worker.store.incremental import (
    containers_holding,
    load_cursor,
    resource_values,
    resources_present,
    resources_with,
)
from worker.store.tables import STATIC_CONTAINER, SyncRun, Tenant, utcnow
from worker.store.writes import write_page

log = logging.getLogger("oktasync.engine")

START = "oktasync.sync.start"
PAGE = "oktasync.sync.page"
FINALIZE = "oktasync.sync.finalize"
DISPATCH = "oktasync.sync.dispatch"
# A page told to wait at least this long (seconds) lets release() open another list meanwhile.
RELEASE_ON_WAIT = 0.5


# ---------------------------------------------------------------- stream specs in rows

def encode_spec(spec: StreamSpec) -> tuple[str, str, str]:
    """(kind, parent, spec JSON) for a sync_streams row; the row's `url` column keeps the whole
    spec (first page, headers, meta) so a page task can rebuild it from the row alone."""
    return spec.kind, spec.parent or "", json.dumps(spec.to_dict(), sort_keys=True)


def decode_spec(kind: str, parent: str, stored: str | None) -> StreamSpec:
    if stored and stored.startswith("{"):
        return StreamSpec.from_dict(json.loads(stored))
    return StreamSpec(kind, stored or "", parent or None)


def first_cursor(spec: StreamSpec) -> str:
    return spec.url


# ---------------------------------------------------------------- run start

def start_run(rt: Runtime, run_id: int) -> None:
    """queued -> running: plan the run (incremental, or full and why), then its first lists.

    The plan reads the System Log over HTTP, so it is made before the write transaction."""
    with rt.sessions() as s:
        run = s.get(SyncRun, run_id, populate_existing=True)
        if run is None or run.state != "queued":
            return
        tenant_id, asked = run.tenant_id, run.kind
        ctx = None
        try:
            ctx = rt.tenant(s, tenant_id)
        except Exception as exc:  # noqa: BLE001 - bad credentials/options: the run fails, says why
            s.rollback()
            fail_run(rt, run_id, f"cannot start: {exc}")
            return
        cursor = load_cursor(s, tenant_id) if asked == INCREMENTAL else None
        refusal, caveat = verify_baseline(s, tenant_id) if asked == VERIFY and ctx else (None, None)
        s.rollback()
    if ctx is None:
        fail_run(rt, run_id, "cannot start: the tenant was removed")
        return
    if refusal:
        fail_run(rt, run_id, refusal)
        return
    planning = time.monotonic()
    try:
        with rt.sessions() as s:
            view = View(holding=lambda pairs: containers_holding(s, tenant_id, pairs),
                        find=lambda rtype, key, value: resources_with(s, tenant_id, rtype, key, value),
                        present=lambda keys: resources_present(s, tenant_id, keys),
                        values=lambda keys, field: resource_values(s, tenant_id, keys, field))
            kind, plan, specs = plan_run(ctx.client.get_page, asked, cursor, ctx.options, utcnow(), view)
            s.rollback()
        if caveat:
            plan["warning"] = caveat
    except Exception as exc:  # noqa: BLE001 - the run fails and says why, rather than staying queued
        fail_run(rt, run_id, f"cannot plan the run: {type(exc).__name__}: {exc}")
        return
    with rt.sessions() as s:
        runs.begin_write(s)
        if not runs.start_run(s, run_id, ctx.options.fingerprint(), kind=kind, plan=plan):
            s.rollback()
            return
        if kind in LISTS_EVERYTHING:
            static = static_resources(ctx.options)
            write_page(s, tenant_id, run_id, static.resources, static.entitlements, static.grants, check_run=False,
                       container=STATIC_CONTAINER)
        runs.add_streams(s, run_id, [(*encode_spec(sp), first_cursor(sp)) for sp in specs])
        s.commit()
    rt.emit("run_started", run_id=run_id, tenant_id=tenant_id, streams=len(specs), run_kind=kind,
            reason=plan.get("reason"), plan_seconds=round(time.monotonic() - planning, 3))
    release(rt, run_id)


# ---------------------------------------------------------------- pages

def page(rt: Runtime, stream_id: int, cursor: str) -> None:
    """Fetch one page of a stream at `cursor`, write it, move the cursor, enqueue the next page.

    Its transactions (read; write with the release of its run's streams; completion, once the run has
    nothing open) share one database connection."""
    with rt.pinned() as pinned:
        _page(pinned, stream_id, cursor)


def _page(rt: Runtime, stream_id: int, cursor: str) -> None:
    with rt.sessions() as s:
        st = runs.load_stream(s, stream_id)
        if st is None or st.state != "active" or st.cursor != cursor or st.run_state != "running":
            return  # a duplicate, a stale message, or a run that stopped: nothing to do
        try:
            ctx = rt.tenant(s, st.tenant_id, st.tenant_version)
        except Exception as exc:  # noqa: BLE001
            s.rollback()
            fail_run(rt, st.run_id, f"cannot use the tenant's credentials: {exc}")
            return
    if ctx is None:
        return  # tenant removed; its run is being torn down
    spec = decode_spec(st.kind, st.parent, st.url)
    final_state = "done"
    next_url: str | None = None
    fetching = time.monotonic()
    try:
        got = (rt.read_ahead.get_page(ctx.client, cursor, spec.header_dict or None) if rt.read_ahead
               else ctx.client.get_page(cursor, headers=spec.header_dict or None))
        # The page's own URL, so first-page-only checks (an empty user list) stay exact.
        result = handle_page(dataclasses.replace(spec, url=cursor), got.items, ctx.options)
        next_url = got.next_url or result.next_url
    except Exception as exc:  # noqa: BLE001 - the connector decides what an error means
        decision = handle_error(spec, exc, ctx.options)
        if isinstance(decision, Skip):
            result, final_state = PageResult(warnings=[decision.warning] if decision.warning else []), "skipped"
        elif isinstance(decision, Fail):
            _page_failed(rt, st, cursor, decision.reason, fatal=True)
            return
        elif decision.counted:
            _page_failed(rt, st, cursor, decision.reason, countdown=decision.after)
            return
        else:
            _defer(rt, st, cursor, decision.after or 0.0, decision.reason)
            return
    # A list that only refines rows of its parent list (an admin role's targets) writes them into
    # the parent's container, so re-listing the parent replaces them too.
    container = spec.meta_value("container") or container_key(st.kind, st.parent)
    _commit_page(rt, st, cursor, next_url, result.items, result, final_state, container,
                 time.monotonic() - fetching)


def _commit_page(rt: Runtime, st: runs.StreamRow, cursor: str, next_url: str | None, items: int,
                 result: PageResult, final_state: str, container: str, fetch_seconds: float = 0.0) -> None:
    children = [(*encode_spec(c), first_cursor(c)) for c in result.children]
    writing = time.monotonic()
    with rt.sessions() as s:
        runs.begin_write(s)
        if not runs.advance(s, st.id, cursor, next_url, items, result.warnings, final_state, run_id=st.run_id):
            s.rollback()  # another delivery of this page got there first, or the run stopped
            return
        write_page(s, st.tenant_id, st.run_id, result.resources, result.entitlements, result.grants,
                   check_run=False, container=container)
        if children and st.kind in runs.closed_kinds(s, st.run_id):
            children = []  # an incremental run re-lists only the dirty children of a whole list
        opened = runs.add_streams(s, st.run_id, children)
        # A finished or branching list frees a slot or adds pending lists: release the run's
        # streams in this same transaction (under the run's lock, taken after the page's writes).
        released = (release_run(s, rt.tenant_max_streams, rt.global_max_streams, st.run_id)
                    if next_url is None or opened else None)
        s.commit()
    rt.emit("page", run_id=st.run_id, tenant_id=st.tenant_id, stream=st.kind, parent=st.parent,
            items=items, opened=opened, done=next_url is None, state=final_state if next_url is None else "active",
            warnings=list(result.warnings), fetch_seconds=round(fetch_seconds, 4),
            write_seconds=round(time.monotonic() - writing, 4))
    if next_url is not None:
        rt.sender.enqueue(PAGE, [st.id, next_url])
    if released is not None:
        for stream_id, first in released.picked:
            rt.sender.enqueue(PAGE, [stream_id, first], priority=NEW_LIST)
        if released.plan_globally:
            release(rt)  # slots are scarce: plan over every run, in a transaction of its own
    # Completion only when the release saw nothing of the run open: whoever took the run's lock
    # last saw every other finished list committed, so a run with lists still open is completed
    # by the page that finishes its last one (and by the reaper, if that page's worker died).
    if next_url is None and released is not None and released.open_streams == 0:
        complete(rt, st.run_id)


def _defer(rt: Runtime, st: runs.StreamRow, cursor: str, seconds: float, reason: str) -> None:
    """The limiter said wait: re-enqueue this page with a countdown instead of holding the slot."""
    countdown = min(max(0.05, seconds) * random.uniform(1.0, 1.1), rt.countdown_cap)
    with rt.sessions() as s:
        moved = runs.defer(s, st.id, cursor, countdown)
        s.commit()
    if moved:
        rt.emit("wait", run_id=st.run_id, tenant_id=st.tenant_id, stream=st.kind, seconds=round(countdown, 3),
                reason=reason)
        rt.sender.enqueue(PAGE, [st.id, cursor], countdown=countdown)
        if countdown >= RELEASE_ON_WAIT:
            release(rt, st.run_id)  # a waiting stream frees its slot for a list on another Okta bucket


def _page_failed(rt: Runtime, st: runs.StreamRow, cursor: str, reason: str,
                 countdown: float | None = None, fatal: bool = False) -> None:
    what = f"{st.kind}{' of ' + st.parent if st.parent else ''}"
    message = f"{what}: {reason}"
    with rt.sessions() as s:
        attempts = runs.record_attempt(s, st.id, cursor, message)
        s.commit()
    if attempts is None:
        return
    if fatal:
        # e.g. Okta refused the credentials (the client already fetched a fresh token once):
        # retrying cannot help, so say so now rather than after minutes of backoff.
        fail_run(rt, st.run_id, f"listing {message}")
        return
    log.warning("page of %s failed (attempt %s/%s): %s", what, attempts, rt.max_page_attempts, message)
    if attempts >= rt.max_page_attempts:
        fail_run(rt, st.run_id, f"listing {message} (after {attempts} attempts)")
        return
    rt.emit("retry", run_id=st.run_id, tenant_id=st.tenant_id, stream=st.kind, attempt=attempts, error=message)
    delay = countdown if countdown is not None else 2.0 ** attempts * random.uniform(0.5, 1.0)
    rt.sender.enqueue(PAGE, [st.id, cursor], countdown=min(rt.countdown_cap, delay))


# ---------------------------------------------------------------- release, completion, finalize

def release(rt: Runtime, run_id: int | None = None) -> int:
    """Activate pending streams within the caps (of `run_id`, after its page, start or wait; of
    every running run, round-robin, on Beat's tick or when slots are scarce), and enqueue them."""
    with rt.sessions() as s:
        picked = release_streams(s, rt.tenant_max_streams, rt.global_max_streams, run_id)
        s.commit()
    for stream_id, cursor in picked:
        rt.sender.enqueue(PAGE, [stream_id, cursor], priority=NEW_LIST)
    return len(picked)


def complete(rt: Runtime, run_id: int) -> bool:
    """running -> finalizing if nothing is open; the one caller that wins enqueues the finalizer."""
    with rt.sessions() as s:
        runs.begin_write(s)
        won = runs.try_complete(s, run_id)
        s.commit()
    if won:
        rt.emit("run_finalizing", run_id=run_id)
        rt.sender.enqueue(FINALIZE, [run_id])
    return won


def finalize(rt: Runtime, run_id: int) -> None:
    """Apply the run (kinds.apply_run: switch the view, patch it, or compare with it for a verify
    run), with counts and warnings."""
    with rt.sessions() as s:
        run = s.get(SyncRun, run_id, populate_existing=True)
        if run is None or run.state != "finalizing":
            return
        tenant = s.get(Tenant, run.tenant_id, populate_existing=True)
        if tenant is None:
            return
        counts = runs.run_counts(s, run_id)
        warnings = runs.run_warnings(s, run_id)
        interval = max(1, tenant.sync_interval or 1)
        base = run.started_at or run.created_at
        due = base + timedelta(seconds=interval)
        if tenant.next_sync_at is not None and tenant.next_sync_at > due:
            due = tenant.next_sync_at
        plan, kind = dict(run.plan or {}), run.kind
        warnings += [w for w in (plan.get("warning"),) if w and w not in warnings]
        counts["requests"] = counts.get("pages", 0) + int(plan.get("log_pages") or 0)
        s.rollback()
        runs.begin_write(s)
        runs.record_results(s, run_id, counts, warnings)
        s.commit()
        applying = time.monotonic()
        try:
            result = apply_run(s, run.tenant_id, run_id, kind, plan, run.options_fingerprint, next_sync_at=due)
        except RunStateError as exc:
            s.rollback()
            log.info("finalize of run %s skipped: %s", run_id, exc)
            return
        runs.begin_write(s)
        runs.prune_runs(s, run.tenant_id)  # bounded history, per tenant: cost follows the syncs
        s.commit()
    if kind == VERIFY and (result["missing"] or result["extra"] or result["changed"]):
        log.warning("drift in tenant %s (verify run %s): %s grants missing from the view, %s extra, %s changed",
                    run.tenant_id, run_id, result["missing"], result["extra"], result["changed"])
    rt.emit("run_succeeded", run_id=run_id, tenant_id=run.tenant_id, run_kind=kind, warnings=len(warnings),
            finalize_seconds=round(time.monotonic() - applying, 3), **result)


def fail_run(rt: Runtime, run_id: int, error: str) -> bool:
    """Fail the run (if still active): the previous view stays current; the run's rows are deleted."""
    with rt.sessions() as s:
        runs.begin_write(s)
        moved = runs.fail(s, run_id, error)
        s.commit()
        if moved:
            log.warning("sync run %s failed: %s", run_id, error)
            try:
                discard_run(s, run_id)
            except RunStateError:
                s.rollback()
    if moved:
        rt.emit("run_failed", run_id=run_id, error=error)
    return moved


# ---------------------------------------------------------------- Beat's dispatcher and the reaper

def claim_and_start(rt: Runtime) -> list[int]:
    """Create runs for due tenants (up to the admission bound, oldest due first) and enqueue their
    start."""
    with rt.sessions() as s:
        run_ids = runs.claim_due(s, utcnow(), max_active=rt.max_active_runs)
    for run_id in run_ids:
        rt.emit("run_queued", run_id=run_id)
        rt.sender.enqueue(START, [run_id])
    return run_ids


def reap(rt: Runtime) -> dict[str, int]:
    """Re-enqueue what was lost (a killed worker, a lost message) and fail what cannot progress."""
    now = utcnow()
    stall = rt.stall_timeout
    out = {"streams": 0, "starts": 0, "finalizes": 0, "completed": 0, "failed": 0}
    with rt.sessions() as s:
        stale = runs.stale_streams(s, now, stall)
        stalled = runs.runs_to_reap(s, now, stall)
        s.rollback()
        for stream_id, cursor, attempts in stale:
            if attempts >= rt.max_redeliveries:
                st = runs.load_stream(s, stream_id)
                s.rollback()
                if st is not None and fail_run(rt, st.run_id, f"{st.kind}{' of ' + st.parent if st.parent else ''}: "
                                               f"no progress after {attempts} re-deliveries (worker lost?)"):
                    out["failed"] += 1
                continue
            runs.begin_write(s)
            claimed = runs.touch_stream(s, stream_id, cursor)
            s.commit()
            if claimed:
                out["streams"] += 1
                rt.sender.enqueue(PAGE, [stream_id, cursor])
    for run_id, run_state, created_at in stalled:
        if run_state == "queued":
            if (now - created_at).total_seconds() > stall * rt.run_stall_factor:
                out["failed"] += fail_run(rt, run_id, "never started (no worker took it)")
            else:
                out["starts"] += 1
                rt.sender.enqueue(START, [run_id])
        elif run_state == "running":
            out["completed"] += complete(rt, run_id)  # the last page's completion may have been lost
        elif run_state == "finalizing":
            out["finalizes"] += 1
            rt.sender.enqueue(FINALIZE, [run_id])
    if any(out.values()):
        rt.emit("reaped", **out)
    return out


def dispatch(rt: Runtime) -> dict[str, Any]:
    """One Beat tick: claim due tenants, release pending streams round-robin, reap."""
    started = claim_and_start(rt)
    released = release(rt)
    reaped = reap(rt)
    return {"started": started, "released": released, "reaped": reaped}


def give_up(rt: Runtime, task: str, args: list[Any], reason: str) -> None:
    """A task message was delivered too often (it keeps killing its worker): fail its run."""
    run_id: int | None = None
    if task in (START, FINALIZE) and args:
        run_id = int(args[0])
    elif task == PAGE and args:
        with rt.sessions() as s:
            st = runs.load_stream(s, int(args[0]))
        run_id = st.run_id if st else None
    if run_id is not None:
        fail_run(rt, run_id, reason)
