"""Beat's claim of due tenants and the reaper's choice of runs, at scale, on both dialects: the
claim takes every due tenant (in batches, no cap of 100 a tick) exactly once even with two
dispatchers at the same time, as a full, incremental or verify run (in that precedence), and the
reaper looks only at stalled runs. Admission (`max_active`): at most that many runs active in
the cluster, due tenants admitted oldest due first across the kinds (a tenant never synced
first), the others left due and unclaimed until places free up, and no tenant starves."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from worker.store import runs
from worker.store.tables import ACTIVE_RUN_STATES, SyncRun, SyncStream, Tenant, utcnow
from worker.store.tenants import TenantError, update_tenant

INCREMENTAL, VERIFY = 60, 86400


def _tenants(store, count: int, due: int, schedule=lambda i: {}) -> list[int]:
    """`count` tenant rows (direct inserts, as a bulk import would), the first `due` of them due
    for a full sync; `schedule(i)` adds columns to row i (incremental and verify schedules)."""
    now = utcnow()
    rows = [{"name": f"t{i:05d}", "domain": f"t{i:05d}.okta.com", "auth_method": "api_token",
             "credentials": b"not-a-real-token", "sync_interval": 3600, "enabled": True,
             "incremental_interval": None, "next_incremental_at": None, "verify_interval": None,
             "next_verify_at": None,
             "next_sync_at": now - timedelta(seconds=60) if i < due else now + timedelta(hours=1), **schedule(i)}
            for i in range(count)]
    with store.Session() as s:
        for i in range(0, count, 1000):
            s.execute(sa.insert(Tenant.__table__), rows[i:i + 1000])
        s.commit()
        return list(s.execute(sa.select(Tenant.id).order_by(Tenant.id).limit(due)).scalars())


def _claim_with_two_dispatchers(store, now, batch: int) -> list[int]:
    """Two Beats ticking at the same moment (threads, each with its own session): the run ids both claimed."""
    claimed: list[list[int]] = [[], []]

    def dispatcher(slot: int) -> None:
        with store.Session() as s:
            claimed[slot] = runs.claim_due(s, now, batch=batch)

    threads = [threading.Thread(target=dispatcher, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return claimed[0] + claimed[1]


def test_two_dispatchers_claim_every_due_tenant_once_among_10000_rows(store):
    due_ids = _tenants(store, 10_000, due=1_500)
    now = utcnow()
    run_ids = _claim_with_two_dispatchers(store, now, batch=100)
    assert len(run_ids) == len(set(run_ids)) == 1_500
    with store.Session() as s:
        tenants_with_runs = s.execute(sa.select(SyncRun.tenant_id).where(SyncRun.id.in_(run_ids))).scalars().all()
        assert sorted(tenants_with_runs) == due_ids  # every due tenant once, no tenant that was not due
        still_due = s.execute(sa.select(sa.func.count()).select_from(Tenant).where(Tenant.next_sync_at <= now)).scalar()
        assert still_due == 0
    with store.Session() as s:
        assert runs.claim_due(s, now) == []  # claimed tenants are due again an interval later


def test_claim_respects_its_per_tick_limit_and_continues_next_tick(store):
    _tenants(store, 50, due=30)
    with store.Session() as s:
        first = runs.claim_due(s, utcnow(), limit=20, batch=7)
        second = runs.claim_due(s, utcnow(), limit=20, batch=7)
    assert len(first) == 20 and len(second) == 10 and not set(first) & set(second)


def test_a_due_tenant_with_an_active_run_is_skipped_and_stays_due(store):
    busy, idle = _tenants(store, 2, due=2)
    store.start_run(busy)
    with store.Session() as s:
        due_at = s.get(Tenant, busy).next_sync_at
        idle_due_at = s.get(Tenant, idle).next_sync_at
        s.rollback()
        started = runs.claim_due(s, utcnow())
        assert [s.get(SyncRun, r).tenant_id for r in started] == [idle]
        assert s.get(SyncRun, started[0]).due_at == idle_due_at  # freshness lag counts from when it was due
        assert s.get(Tenant, busy, populate_existing=True).next_sync_at == due_at


def _all_ids(store) -> list[int]:
    with store.Session() as s:
        return list(s.execute(sa.select(Tenant.id).order_by(Tenant.id)).scalars())


def _on(kind: str, due_in: float) -> dict:
    """Columns of an incremental or verify schedule that is on, due in `due_in` seconds."""
    interval = {"incremental": INCREMENTAL, "verify": VERIFY}[kind]
    return {f"{kind}_interval": interval, f"next_{kind}_at": utcnow() + timedelta(seconds=due_in)}


def _claimed(s, run_ids: list[int]) -> dict[int, tuple[str, object]]:
    """tenant id -> (kind, due_at) of the claimed runs."""
    rows = s.execute(sa.select(SyncRun.tenant_id, SyncRun.kind, SyncRun.due_at).where(SyncRun.id.in_(run_ids))).all()
    assert len(rows) == len(run_ids)
    return {t: (k, d) for t, k, d in rows}


def test_each_kind_is_claimed_when_due_with_full_first_then_incremental_then_verify(store):
    # 0: full, incremental and verify due -> full (and its incremental moved on, verify kept)
    # 1: incremental and verify due -> incremental;  2: verify due -> verify
    # 3: incremental off, verify not due -> nothing;  4: both due but paused -> nothing
    # 5: incremental due with a run active -> nothing, still due
    schedules = [{**_on("incremental", -5), **_on("verify", -5)}, {**_on("incremental", -5), **_on("verify", -1)},
                 {**_on("incremental", 30), **_on("verify", -5)}, _on("verify", 600),
                 {**_on("incremental", -5), **_on("verify", -5), "enabled": False}, _on("incremental", -5)]
    _tenants(store, 6, due=1, schedule=lambda i: schedules[i])
    ids = _all_ids(store)
    store.start_run(ids[5])
    with store.Session() as s:
        before = {t.id: (t.next_incremental_at, t.next_verify_at, t.next_sync_at) for t in s.scalars(sa.select(Tenant))}
        s.rollback()
        now = utcnow()
        got = _claimed(s, runs.claim_due(s, now))
        # due_at (freshness lag counts from it) is when the claimed kind was due
        assert got == {ids[0]: ("full", before[ids[0]][2]), ids[1]: ("incremental", before[ids[1]][0]),
                       ids[2]: ("verify", before[ids[2]][1])}
        t = {row.id: row for row in s.scalars(sa.select(Tenant).execution_options(populate_existing=True))}
        assert t[ids[0]].next_sync_at == now + timedelta(seconds=3600)
        assert t[ids[0]].next_incremental_at == now + timedelta(seconds=INCREMENTAL)  # a full run covers it
        assert t[ids[0]].next_verify_at == before[ids[0]][1]
        assert t[ids[1]].next_incremental_at == now + timedelta(seconds=INCREMENTAL)
        assert t[ids[1]].next_verify_at == before[ids[1]][1]  # due, but waits: one run at a time
        assert t[ids[2]].next_verify_at == now + timedelta(seconds=VERIFY)
        assert t[ids[3]].next_incremental_at is None and (t[ids[5]].next_incremental_at == before[ids[5]][0])
        s.commit()
        assert runs.claim_due(s, now) == []  # everything claimed has a run now
    with store.Session() as s:
        s.execute(sa.update(SyncRun).values(state="succeeded"))
        s.commit()
        later = now + timedelta(seconds=INCREMENTAL + 1)
        got = _claimed(s, runs.claim_due(s, later))
    # An interval later: incremental runs again (0, 1, and 5 whose run ended); tenant 1's verify
    # is still due but incremental goes first; 2's verify is a day away; 3 never.
    assert {t: k for t, (k, _d) in got.items()} == {ids[0]: "incremental", ids[1]: "incremental",
                                                    ids[2]: "incremental", ids[5]: "incremental"}


def test_a_later_kinds_claim_leaves_tenants_due_for_an_earlier_kind(store):
    """Whatever order claims run in (another dispatcher's full claim rolled back, a batch cut
    short), an incremental or verify claim never takes a tenant that is due for a full run."""
    _tenants(store, 4, due=2, schedule=lambda i: {**_on("incremental", -5), **_on("verify", -5 if i % 2 else 60)})
    ids = _all_ids(store)
    with store.Session() as s:
        assert runs.claim_batch(s, utcnow(), 10, runs.VERIFY) == ([], 0)  # 1 is due for a full run, 3 for incremental
        got = _claimed(s, runs.claim_batch(s, utcnow(), 10, runs.INCREMENTAL)[0])
    assert {t: k for t, (k, _d) in got.items()} == {ids[2]: "incremental", ids[3]: "incremental"}


def test_turning_a_schedule_off_stops_its_claims(store):
    tid = store.tenant("acme", next_sync_at=utcnow() + timedelta(hours=1), incremental_interval=INCREMENTAL,
                       verify_interval=VERIFY)
    with store.Session() as s:
        assert s.get(Tenant, tid).next_incremental_at is not None  # turned on: due at once
        update_tenant(s, "acme", incremental_interval=None, verify_interval=None)
        s.commit()
        t = s.get(Tenant, tid)
        assert (t.next_incremental_at, t.next_verify_at) == (None, None)
        s.commit()
        assert runs.claim_due(s, utcnow() + timedelta(days=2)) != []  # the full sync still runs
        update_tenant(s, "acme", incremental_interval=INCREMENTAL)
        s.commit()
    with store.Session() as s:
        s.execute(sa.update(SyncRun).values(state="succeeded"))
        s.commit()
        got = _claimed(s, runs.claim_due(s, utcnow()))
    assert list(got.values())[0][0] == "incremental"


@pytest.mark.parametrize("change,reason", [
    ({"incremental_interval": 3600}, "incremental interval (3600s) must be shorter than the full sync interval (3600s)"),
    ({"sync_interval": 60}, "incremental interval (600s) must be shorter than the full sync interval (60s)"),
    ({"incremental_interval": 0}, "incremental_interval must be a whole number of seconds >= 1"),
    ({"verify_interval": -1}, "verify_interval must be a whole number of seconds >= 1"),
])
def test_intervals_are_checked_together(store, change, reason):
    store.tenant("acme", sync_interval=3600, incremental_interval=600)
    with store.Session() as s, pytest.raises(TenantError, match=re.escape(reason)):
        update_tenant(s, "acme", **change)


def test_two_dispatchers_claim_each_due_tenant_once_as_its_first_due_kind(store):
    # 0-299: full and incremental due -> full; 300-599: incremental and verify due -> incremental;
    # 600-799: verify due -> verify; the other 9,200 rows: nothing due (half with both schedules on).
    def schedule(i: int) -> dict:
        if i < 600:
            return {**_on("incremental", -5), **_on("verify", -5 if i >= 300 else 60)}
        if i < 800:
            return {**_on("incremental", 30), **_on("verify", -5)}
        return {**_on("incremental", 30), **_on("verify", 300)} if i % 2 else {}

    _tenants(store, 10_000, due=300, schedule=schedule)
    ids = _all_ids(store)[:800]
    now = utcnow()
    run_ids = _claim_with_two_dispatchers(store, now, batch=50)
    assert len(run_ids) == len(set(run_ids)) == 800
    with store.Session() as s:
        kinds = {t: k for t, (k, _d) in _claimed(s, run_ids).items()}
    assert kinds == {t: "full" if i < 300 else "incremental" if i < 600 else "verify" for i, t in enumerate(ids)}


def test_the_reaper_looks_only_at_stalled_runs(store):
    ids = _tenants(store, 6, due=6)
    old = utcnow() - timedelta(seconds=1000)
    with store.Session() as s:
        def run(tenant_id: int, state: str, at, open_stream: bool | None = None) -> int:
            r = SyncRun(tenant_id=tenant_id, state=state, created_at=at, updated_at=at)
            s.add(r)
            s.flush()
            if open_stream is not None:
                s.add(SyncStream(run_id=r.id, kind="users", parent="", state="active" if open_stream else "done"))
            return r.id

        progressing = run(ids[0], "running", old, open_stream=True)
        completion_lost = run(ids[1], "running", old, open_stream=False)
        fresh_queued = run(ids[2], "queued", utcnow())
        stale_queued = run(ids[3], "queued", old)
        fresh_finalizing = run(ids[4], "finalizing", utcnow())
        stale_finalizing = run(ids[5], "finalizing", old)
        s.commit()
        picked = {r for r, _state, _created in runs.runs_to_reap(s, utcnow(), stall=300)}
    assert picked == {completion_lost, stale_queued, stale_finalizing}
    assert not picked & {progressing, fresh_queued, fresh_finalizing}


def test_pruning_keeps_recent_runs_the_current_view_and_runs_with_access_changes(store):
    from worker.store.tables import AccessChange

    tenant_id, other = _tenants(store, 2, due=2)
    with store.Session() as s:
        ids = []
        for state in ["succeeded"] * 6 + ["failed"] * 4:
            r = SyncRun(tenant_id=tenant_id, state=state)
            s.add(r)
            s.flush()
            ids.append(r.id)
        s.get(Tenant, tenant_id).current_run_id = ids[1]
        changed = ids[2]
        s.add(AccessChange(**_change(tenant_id, changed)))
        other_run = SyncRun(tenant_id=other, state="failed")
        s.add(other_run)
        s.commit()

        assert runs.prune_runs(s, tenant_id, keep=3) == 5
        s.commit()
        left = s.execute(sa.select(SyncRun.id).where(SyncRun.tenant_id == tenant_id).order_by(SyncRun.id)).scalars()
        assert list(left) == [ids[1], changed, *ids[-3:]]
        assert s.get(SyncRun, other_run.id) is not None  # another tenant's runs are not touched


def _change(tenant_id: int, run_id: int) -> dict:
    return {"tenant_id": tenant_id, "run_id": run_id, "grant_id": "group:00g1:member|user:00u1", "change": "added",
            "entitlement_id": "group:00g1:member", "principal_type": "user", "principal_id": "00u1"}


# ---------------------------------------------------------------- admission

def _active(s) -> int:
    return s.execute(sa.select(sa.func.count()).select_from(SyncRun)
                     .where(SyncRun.state.in_(ACTIVE_RUN_STATES))).scalar_one()


def _tenant_of(s, run_ids: list[int]) -> list[int]:
    rows = dict(s.execute(sa.select(SyncRun.id, SyncRun.tenant_id).where(SyncRun.id.in_(run_ids))).all())
    s.rollback()  # a claim starts its own write transaction
    return [rows[r] for r in run_ids]


def _finish(s, run_ids: list[int]) -> None:
    s.execute(sa.update(SyncRun).where(SyncRun.id.in_(run_ids)).values(state="succeeded", finished_at=utcnow()))
    s.commit()


def test_admits_up_to_the_bound_oldest_due_first_and_more_as_runs_finish(store):
    ids = _tenants(store, 10, due=10)
    now = utcnow()
    with store.Session() as s:  # tenant i was due i minutes ago: the last ones waited longest
        for i, t in enumerate(ids):
            s.execute(sa.update(Tenant).where(Tenant.id == t).values(next_sync_at=now - timedelta(minutes=i)))
        s.commit()
        first = runs.claim_due(s, now, max_active=3)
        assert _tenant_of(s, first) == ids[9:6:-1]
        assert runs.claim_due(s, now, max_active=3) == []  # full: the rest wait, still due
        assert s.execute(sa.select(sa.func.count()).select_from(Tenant)
                         .where(Tenant.next_sync_at <= now)).scalar_one() == 7
        _finish(s, first[:2])
        second = runs.claim_due(s, now, max_active=3)
        assert _tenant_of(s, second) == ids[6:4:-1]
        assert _active(s) == 3


def test_a_tenant_never_synced_goes_first_then_the_longest_waiting_kind(store):
    # 0: full due an hour ago; 1: only its incremental due, two hours ago; 2: never synced.
    _tenants(store, 3, due=0, schedule=lambda i: [
        {"next_sync_at": utcnow() - timedelta(hours=1)},
        {**_on("incremental", -7200)},
        {"next_sync_at": None}][i])
    ids = list(store.Session().execute(sa.select(Tenant.id).order_by(Tenant.id)).scalars())
    order = []
    with store.Session() as s:
        for _ in range(3):
            got = runs.claim_due(s, utcnow(), max_active=1)
            assert len(got) == 1
            run = s.get(SyncRun, got[0])
            order.append((run.tenant_id, run.kind))
            _finish(s, got)
    assert order == [(ids[2], "full"), (ids[1], "incremental"), (ids[0], "full")]


def test_a_first_sync_counts_its_wait_for_admission_in_its_lag(store):
    tid = store.tenant("acme")  # never synced: due since it was added
    with store.Session() as s:
        added = s.get(Tenant, tid).created_at
        s.rollback()
        got = runs.claim_due(s, utcnow() + timedelta(minutes=5), max_active=1)
        assert s.get(SyncRun, got[0]).due_at == added


def test_two_dispatchers_never_admit_past_the_bound(store):
    _tenants(store, 200, due=200)
    claimed: list[list[int]] = [[], []]

    def dispatcher(slot: int) -> None:
        with store.Session() as s:
            claimed[slot] = runs.claim_due(s, utcnow(), batch=7, max_active=25)

    threads = [threading.Thread(target=dispatcher, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed[0]) + len(claimed[1]) == 25
    with store.Session() as s:
        assert _active(s) == 25


def test_no_tenant_starves_when_capacity_allows(store):
    """Simulated clock: 30 tenants every 100 s, 27 small runs of 5 s and 3 large of 50 s (285
    run-seconds a round) on 4 places (400 place-seconds a round): every tenant, large and small
    alike, must be re-admitted within twice its interval."""
    ids = _tenants(store, 30, due=30, schedule=lambda i: {"sync_interval": 100})
    length = {t: 50 if i % 10 == 0 else 5 for i, t in enumerate(ids)}  # 3 large, 27 small: 285 s a round
    t0 = utcnow()
    running: dict[int, tuple[int, float]] = {}  # run id -> (tenant, ends at)
    admitted: dict[int, list[float]] = {t: [] for t in ids}
    with store.Session() as s:
        for tick in range(0, 1000, 5):  # 1,000 simulated seconds, Beat every 5 s
            done = [r for r, (_t, end) in running.items() if end <= tick]
            if done:
                _finish(s, done)
                for r in done:
                    del running[r]
            got = runs.claim_due(s, t0 + timedelta(seconds=tick), max_active=4)
            for r, t in zip(got, _tenant_of(s, got), strict=True):
                running[r] = (t, tick + length[t])
                admitted[t].append(tick)
            assert len(running) <= 4
    for t, ticks in admitted.items():
        gaps = [b - a for a, b in zip([0, *ticks], [*ticks, 1000], strict=True)]
        assert max(gaps) <= 200, (t, length[t], ticks)
