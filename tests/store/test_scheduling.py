"""Beat's claim of due tenants and the reaper's choice of runs, at scale, on both dialects: the
claim takes every due tenant (in batches, no cap of 100 a tick) exactly once even with two
dispatchers at the same time, and the reaper looks only at stalled runs."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from worker.store import runs
from worker.store.tables import SyncRun, SyncStream, Tenant, utcnow


def _tenants(store, count: int, due: int) -> list[int]:
    """`count` tenant rows (direct inserts, as a bulk import would), the first `due` of them due."""
    now = utcnow()
    rows = [{"name": f"t{i:05d}", "domain": f"t{i:05d}.okta.com", "auth_method": "api_token",
             "credentials": b"not-a-real-token", "sync_interval": 3600, "enabled": True,
             "next_sync_at": now - timedelta(seconds=60) if i < due else now + timedelta(hours=1)}
            for i in range(count)]
    with store.Session() as s:
        for i in range(0, count, 1000):
            s.execute(sa.insert(Tenant.__table__), rows[i:i + 1000])
        s.commit()
        return list(s.execute(sa.select(Tenant.id).order_by(Tenant.id).limit(due)).scalars())


def test_two_dispatchers_claim_every_due_tenant_once_among_10000_rows(store):
    due_ids = _tenants(store, 10_000, due=1_500)
    now = utcnow()
    claimed: list[list[int]] = [[], []]

    def dispatcher(slot: int) -> None:
        with store.Session() as s:
            claimed[slot] = runs.claim_due(s, now, batch=100)

    threads = [threading.Thread(target=dispatcher, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    run_ids = claimed[0] + claimed[1]
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
