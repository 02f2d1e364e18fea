"""The drift check's store side (worker/store/drift.py), on both dialects: a verify run's scratch
generation is pruned and expanded like a full run's, compared by id with the current view, recorded
on the run and removed; the view, the cursor and access_changes stay as they are."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.store import ORG1, app_grant, member, sync_and_finalize, user
from worker.model import Resource
from worker.store import queries, runs
from worker.store.drift import finalize_verify, last_verifies
from worker.store.generations import RunStateError
from worker.store.tables import AccessChange, EntitlementRow, GrantRow, ResourceRow, SyncRun, SyncStream
from worker.store.writes import write_page


def verify_run(store, t: int, resources, entitlements, grants, **kw):
    with store.Session() as s:
        run = SyncRun(tenant_id=t, state="finalizing", kind="verify")
        s.add(run)
        s.commit()
        write_page(s, t, run.id, resources, entitlements, grants, check_run=False)
        s.commit()
        return run.id, finalize_verify(s, t, run.id, **kw)


def view_grants(store) -> set[str]:
    with store.Session() as s:
        return {g.id for g in queries.grants(s, "acme")}


def rows_of(store, run_id: int) -> int:
    with store.Session() as s:
        return sum(s.execute(sa.select(sa.func.count()).select_from(t).where(t.run_id == run_id)).scalar()
                   for t in (GrantRow, EntitlementRow, ResourceRow, SyncStream))


def test_verify_reports_rows_whose_contents_changed(store, monkeypatch):
    """Same ids, other contents (a renamed group, a grant's annotations): reported as changed, across
    chunk boundaries; a profile whose keys come in another order is not a change."""
    from worker.store import drift

    monkeypatch.setattr(drift, "CHUNK", 2)  # several range reads over this small org
    t = store.tenant()
    profile = {"email": "u1@example.com", "title": "Auditor", "department": "Audit"}
    u1 = Resource("user", "u1", "User u1", profile)
    synced = [u1 if r.key == "user:u1" else r for r in ORG1["resources"]]
    sync_and_finalize(store, t, synced, ORG1["entitlements"], ORG1["grants"])
    reordered = Resource("user", "u1", "User u1", dict(reversed(list(profile.items()))))
    renamed = Resource("group", "g2", "Renamed in Okta", {"type": "OKTA_GROUP"})
    okta = {"user:u1": reordered, "group:g2": renamed}
    grants = [app_grant("a1", "user", "u3", annotations={"status": "INACTIVE"}) if g.id == "app:a1:access:user:u3"
              else g for g in ORG1["grants"]]
    _, result = verify_run(store, t, [okta.get(r.key, r) for r in synced], ORG1["entitlements"], grants)
    assert (result.missing, result.extra, result.changed) == (0, 0, 1)
    assert result.drift["grants"]["changed_ids"] == ["app:a1:access:user:u3"]
    assert result.drift["resources"]["changed_ids"] == ["group:g2"]
    assert result.drift["entitlements"]["changed"] == 0
    with store.Session() as s:
        assert [(v.changed, v.others) for v in last_verifies(s)] == [
            (1, (("resources", "missing", 0), ("resources", "extra", 0), ("resources", "changed", 1),
                 ("entitlements", "missing", 0), ("entitlements", "extra", 0), ("entitlements", "changed", 0)))]


def test_verify_counts_missing_and_extra_with_expansion_and_leaves_the_view(store):
    t = store.tenant()
    view_run, _ = sync_and_finalize(store, t, **ORG1)
    before = view_grants(store)
    # Okta now: u1 left g1 (its app a1 grant through g1 goes too); u3 joined g2 (so holds g2's
    # SUPER_ADMIN role); a new user u4.
    okta_grants = [g for g in ORG1["grants"] if g != member("g1", "u1")] + [member("g2", "u3")]
    run, result = verify_run(store, t, [*ORG1["resources"], user("u4")], ORG1["entitlements"], okta_grants)
    assert (result.view_run_id, result.missing, result.extra) == (view_run, 2, 2)
    drift = result.drift
    assert drift["grants"]["missing_ids"] == ["group:g2:member:user:u3", "role:SUPER_ADMIN:assigned:user:u3"]
    assert drift["grants"]["extra_ids"] == ["app:a1:access:user:u1", "group:g1:member:user:u1"]
    assert (drift["resources"]["missing_ids"], drift["resources"]["extra_ids"]) == (["user:u4"], [])
    assert (drift["entitlements"]["missing"], drift["entitlements"]["extra"]) == (0, 0)
    with store.Session() as s:
        assert queries.current_run_id(s, "acme") == view_run
        assert s.execute(sa.select(sa.func.count()).select_from(AccessChange)).scalar() == 0
        row = s.get(SyncRun, run)
        assert row.state == "succeeded" and row.finished_at is not None
        assert row.counts["drift"] == drift and row.counts["grants"] == len(before)  # 2 gone, 2 new
    assert view_grants(store) == before
    assert rows_of(store, run) == 0


def test_the_sample_is_bounded_and_the_counts_are_not(store):
    t = store.tenant()
    sync_and_finalize(store, t, **ORG1)
    _run, result = verify_run(store, t, [], [], [], sample=2)
    for table in ("grants", "entitlements", "resources"):
        got = result.drift[table]
        assert got["missing"] == 0 and got["extra"] > 2 and len(got["extra_ids"]) == 2
        assert got["extra_ids"] == sorted(got["extra_ids"])
    assert result.extra == len(view_grants(store))


def test_verify_refuses_a_tenant_without_a_view_and_other_kinds(store):
    t = store.tenant()
    with pytest.raises(RunStateError, match="no current view"):
        verify_run(store, t, *ORG1.values())
    with store.Session() as s:
        runs.fail(s, s.execute(sa.select(SyncRun.id)).scalar_one(), "test")
        s.commit()
    run, _ = sync_and_finalize(store, t, **ORG1)
    with store.Session() as s:
        s.get(SyncRun, run).state = "finalizing"
        s.commit()
        with pytest.raises(RunStateError, match="is a full run, not a verify run"):
            finalize_verify(s, t, run)


def test_the_last_verify_outlives_run_pruning_and_feeds_the_metrics(store):
    t = store.tenant()
    sync_and_finalize(store, t, **ORG1)
    run, result = verify_run(store, t, *ORG1.values())
    assert (result.missing, result.extra) == (0, 0)
    run2, _ = verify_run(store, t, [], [], [])
    with store.Session() as s:
        s.add_all([SyncRun(tenant_id=t, state="succeeded", kind="incremental") for _ in range(runs.KEEP_FINISHED_RUNS)])
        s.commit()
        assert runs.prune_runs(s, t) >= 1
        s.commit()
        kept = set(s.execute(sa.select(SyncRun.id)).scalars())
        [last] = last_verifies(s)
    assert run not in kept and run2 in kept
    assert (last.tenant, last.run_id, last.missing, last.extra) == ("acme", run2, 0, len(view_grants(store)))


def test_verify_baseline_refuses_without_a_view_and_warns_on_changed_options(store):
    from worker.connector import SyncOptions
    from worker.store.drift import verify_baseline
    from worker.store.tenants import update_tenant

    t = store.tenant()
    with store.Session() as s:
        refusal, caveat = verify_baseline(s, t)
    assert "no complete sync to compare with" in refusal and caveat is None
    run, _ = sync_and_finalize(store, t, **ORG1)
    with store.Session() as s:
        s.get(SyncRun, run).options_fingerprint = SyncOptions().fingerprint()
        s.commit()
        assert verify_baseline(s, t) == (None, None)
        update_tenant(s, t, options=SyncOptions(sync_custom_roles=True).to_dict())
        s.commit()
        refusal, caveat = verify_baseline(s, t)
    assert refusal is None and "options changed since its current view was synced" in caveat
