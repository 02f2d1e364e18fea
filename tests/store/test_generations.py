"""Generations: finalize (prune, expand, switch, diff), atomic switch, failed runs, cleanup."""

from __future__ import annotations

import multiprocessing

import pytest
import sqlalchemy as sa

from tests.support.store import (
    ORG1,
    access_ent,
    app,
    app_grant,
    group,
    member,
    member_ent,
    sync_and_finalize,
    user,
)
from worker.model import Grant
from worker.store import queries
from worker.store.db import make_engine, make_session_factory
from worker.store.generations import (
    RunStateError,
    collect_garbage,
    discard_run,
    finalize_generation,
)
from worker.store.tables import AccessChange, GrantRow, ResourceRow, SyncRun, Tenant
from worker.store.writes import write_page


def test_finalize_expands_group_grants_and_switches(store):
    t = store.tenant()
    run, res = sync_and_finalize(store, t, **ORG1)
    assert (res.previous_run_id, res.expanded, res.pruned, res.added, res.removed) == (None, 2, 0, 0, 0)
    with store.Session() as s:
        assert queries.current_run_id(s, "acme") == run
        assert s.get(SyncRun, run).state == "succeeded"
        by_id = {g.id: g for g in queries.app_access(s, "acme", "a1")}
        # u1 holds a1 only through g1: expanded; u2 is listed by Okta (kept as listed); u3 direct
        assert set(by_id) == {"app:a1:access:user:u1", "app:a1:access:user:u2", "app:a1:access:user:u3"}
        assert by_id["app:a1:access:user:u1"].expanded is True
        assert by_id["app:a1:access:user:u1"].sources == ("app:a1:access:group:g1",)
        assert (by_id["app:a1:access:user:u2"].expanded, by_id["app:a1:access:user:u2"].sources) == (False, ())
        assert by_id["app:a1:access:user:u3"].expanded is False
        eff = {g.id: g for g in queries.effective_access(s, "acme", "u2")}
        assert set(eff) == {"group:g1:member:user:u2", "group:g2:member:user:u2", "app:a1:access:user:u2",
                            "role:SUPER_ADMIN:assigned:user:u2"}
        assert eff["role:SUPER_ADMIN:assigned:user:u2"].sources == ("role:SUPER_ADMIN:assigned:group:g2",)
        # group membership itself is never "expanded"
        assert not any(g.expanded for g in queries.grants_for_entitlement(s, "acme", "group:g1:member"))


def test_one_member_through_several_groups_gets_one_grant_with_sorted_sources(store):
    t = store.tenant()
    sync_and_finalize(store, t, [user("u1"), group("g1"), group("g2"), app("a1")], [access_ent("a1")],
          [member("g2", "u1"), member("g1", "u1"), app_grant("a1", "group", "g2"), app_grant("a1", "group", "g1")])
    with store.Session() as s:
        [g] = queries.app_access(s, "acme", "a1")
    assert g.expanded and g.sources == ("app:a1:access:group:g1", "app:a1:access:group:g2")


def test_prune_drops_grants_to_principals_that_are_not_resources(store):
    t = store.tenant()
    # u9 was filtered out by email domain and g9 is a skipped APP_GROUP: the connector did not
    # emit them as resources, but grants naming them arrived from app/group listings.
    run, res = sync_and_finalize(store, t, [user("u1"), group("g1"), app("a1")], [access_ent("a1"), member_ent("g1")],
                     [member("g1", "u1"), member("g1", "u9"), app_grant("a1", "user", "u9"),
                      app_grant("a1", "group", "g9"), app_grant("a1", "group", "g1")])
    assert res.pruned == 3
    with store.Session() as s:
        ids = {g.id for g in queries.grants(s, "acme")}
    assert ids == {"group:g1:member:user:u1", "app:a1:access:group:g1", "app:a1:access:user:u1"}
    # Per-type counts are of the grants kept (pruned ones gone), direct ones only (not expanded).
    with store.Session() as s:
        counts = s.get(SyncRun, run).counts
    assert counts["grants_by_type"] == {"group": 1, "app": 1} and counts["grants"] == 3


def test_second_run_records_changes_and_removes_old_generation(store):
    t = store.tenant()
    run1, _ = sync_and_finalize(store, t, **ORG1)
    org2 = dict(ORG1, grants=[g for g in ORG1["grants"] if g.id != "group:g1:member:user:u1"]
                + [member("g1", "u3")])
    run2, res = sync_and_finalize(store, t, **org2)
    assert res.previous_run_id == run1
    with store.Session() as s:
        got_run, changes = queries.changes(s, "acme")
        assert got_run == run2
        seen = {(c.change, c.grant_id, c.expanded) for c in changes}
        assert seen == {
            ("added", "group:g1:member:user:u3", False),
            ("removed", "group:g1:member:user:u1", False),
            ("removed", "app:a1:access:user:u1", True),  # lost through the group
            # u3 already had a1 directly, so no expanded grant is added for it
        }
        assert (res.added, res.removed) == (1, 2)
        # the old generation's rows are gone, its run row (history) stays
        left = s.execute(sa.select(sa.func.count()).select_from(GrantRow).where(GrantRow.run_id == run1)).scalar()
        assert left == 0 and s.get(SyncRun, run1).state == "succeeded"
        assert queries.changes(s, "acme", run1) == (run1, [])


def test_failed_run_leaves_previous_view_and_is_cleaned_up(store):
    t = store.tenant()
    run1, _ = sync_and_finalize(store, t, **ORG1)
    with store.Session() as s:
        before = queries.grants(s, "acme")
    run2 = store.start_run(t)
    with store.Session() as s:
        write_page(s, t, run2, [user("x1")], [], [Grant("group:g1:member", "user", "x1")])
        s.commit()
        assert queries.grants(s, "acme") == before  # a running run is invisible
        removed = discard_run(s, run2, error="okta said no")
        assert removed == 2
        assert queries.grants(s, "acme") == before
        assert queries.current_run_id(s, "acme") == run1
        r2 = s.get(SyncRun, run2)
        assert (r2.state, r2.error) == ("failed", "okta said no")
        with pytest.raises(RunStateError, match="only a running or finalizing run"):
            finalize_generation(s, t, run2)
        with pytest.raises(RunStateError, match="current view"):
            discard_run(s, run1)


def test_reader_sees_old_or_new_view_never_a_mix(store):
    """At every commit point of finalize and of the batched cleanup, a separate connection
    reads the tenant's grants: it must see exactly the old or exactly the new generation."""
    t = store.tenant()
    users = [user(f"u{i}") for i in range(60)]
    old_grants = [member("g1", f"u{i}") for i in range(0, 60)]
    sync_and_finalize(store, t, users + [group("g1")], [member_ent("g1")], old_grants)
    new_grants = [member("g1", f"u{i}") for i in range(20, 60)] + [member("g2", f"u{i}") for i in range(30)]
    old_ids = {g.id for g in old_grants}
    new_ids = {g.id for g in new_grants}
    seen = []

    def read(*_args):
        with store.Session() as r:
            ids = {g.id for g in queries.grants(r, "acme")}
        assert ids in (old_ids, new_ids), f"mixed view: {len(ids & old_ids)} old, {len(ids - old_ids)} other"
        seen.append("old" if ids == old_ids else "new")

    run = store.start_run(t)
    with store.Session() as s:
        write_page(s, t, run, users + [group("g1"), group("g2")], [member_ent("g1"), member_ent("g2")], new_grants)
        s.commit()
        sa.event.listen(s, "before_commit", read)
        sa.event.listen(s, "after_commit", read)
        finalize_generation(s, t, run, batch_size=7)  # 60 old grants: 9 cleanup batches
    assert seen[0] == "old" and seen[-1] == "new" and seen.count("new") >= 9


def test_one_active_run_per_tenant(store):
    t1, t2 = store.tenant("one"), store.tenant("two")
    run = store.start_run(t1)
    store.start_run(t2)  # another tenant is independent
    for state in ("queued", "running", "finalizing"):
        with store.Session() as s:
            s.add(SyncRun(tenant_id=t1, state=state))
            with pytest.raises(sa.exc.IntegrityError):
                s.commit()
    with store.Session() as s:
        s.get(SyncRun, run).state = "failed"
        s.add(SyncRun(tenant_id=t1, state="succeeded"))
        s.commit()
        s.add(SyncRun(tenant_id=t1, state="queued"))  # allowed again once none is active
        s.commit()


def test_collect_garbage_removes_leftovers_of_interrupted_cleanups(store):
    t = store.tenant()
    run1, _ = sync_and_finalize(store, t, **ORG1)
    run2, res = sync_and_finalize(store, t, **ORG1, cleanup=False)
    assert res.old_rows_removed == 0 and res.added == res.removed == 0
    with store.Session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(ResourceRow).where(ResourceRow.run_id == run1)).scalar() > 0
        assert collect_garbage(s, t) > 0
        assert s.execute(sa.select(sa.func.count()).select_from(ResourceRow).where(ResourceRow.run_id == run1)).scalar() == 0
        assert queries.current_run_id(s, "acme") == run2
        assert collect_garbage(s) == 0
        assert len(queries.resources(s, "acme")) == len(ORG1["resources"])


def _writer(sessions, t, run, worker: int, out) -> None:
    # Runs in a forked child: the parent's engine must hand out fresh connections here.
    try:
        for page in range(10):
            grants = [Grant("group:g1:member", "user", f"u{(worker * 7 + page * 13 + i) % 500}") for i in range(100)]
            with sessions() as s:
                write_page(s, t, run, grants=grants)
                s.commit()
        out.put(None)
    except Exception as exc:  # report to the parent, which fails the test
        out.put(repr(exc))


def _prefork_parent(url: str, t: int, run: int, out) -> None:
    """Like a Celery prefork parent: a fresh process that uses its engine, then forks writers.

    It runs in a spawned interpreter: forked straight from the test process, the children ran kombu's
    after-fork cleanup of connections earlier tests had opened and blocked reading the parent's socket
    (seen in the full suite) — a hang that is not the store's."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as s:  # the parent uses its pool before forking
        write_page(s, t, run, resources=[group("g1")])
        s.commit()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(sessions, t, run, w, out), daemon=True) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)


def test_concurrent_writers_from_several_processes(store):
    t = store.tenant()
    run = store.start_run(t)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    parent = ctx.Process(target=_prefork_parent, args=(store.url, t, run, out))
    parent.start()
    try:
        errors = [out.get(timeout=120) for _ in range(4)]
    finally:
        parent.join(30)
        if parent.is_alive():
            parent.kill()
    assert errors == [None] * 4
    expected = {f"u{(w * 7 + page * 13 + i) % 500}" for w in range(4) for page in range(10) for i in range(100)}
    with store.Session() as s:
        got = set(s.execute(sa.select(GrantRow.principal_id).where(GrantRow.run_id == run)).scalars())
        assert s.execute(sa.select(sa.func.count()).select_from(Tenant)).scalar() == 1
    assert got == expected


def test_changes_of_unknown_run_is_an_error(store):
    t = store.tenant()
    store.tenant("other")
    sync_and_finalize(store, t, **ORG1)
    with store.Session() as s:
        other_run = store.start_run(s.execute(sa.select(Tenant.id).where(Tenant.name == "other")).scalar())
        with pytest.raises(LookupError, match="not a run of tenant 'acme'"):
            queries.changes(s, "acme", other_run)
        assert s.execute(sa.select(sa.func.count()).select_from(AccessChange)).scalar() == 0


def test_finalize_inside_the_callers_transaction_commits_with_it(store):
    from datetime import UTC, datetime

    from worker.store.db import immediate

    t = store.tenant()
    run = store.start_run(t)
    with store.Session() as s:
        write_page(s, t, run, ORG1["resources"], ORG1["entitlements"], ORG1["grants"])
        s.commit()
        immediate(s)
        s.execute(sa.update(SyncRun).where(SyncRun.id == run).values(warnings=["partial: x"]))
        finalize_generation(s, t, run, next_sync_at=datetime(2030, 1, 1, tzinfo=UTC))
    with store.Session() as s:
        r = s.get(SyncRun, run)
        assert (r.state, r.warnings, r.counts["grants"]) == ("succeeded", ["partial: x"], len(ORG1["grants"]) + 2)
        assert s.get(Tenant, t).next_sync_at == datetime(2030, 1, 1, tzinfo=UTC)


def test_write_through_reaches_current_and_active_runs(store):
    from worker.model import GrantAdded, GrantRemoved
    from worker.store.writethrough import write_through

    t = store.tenant()
    run1, _ = sync_and_finalize(store, t, **ORG1)
    run2 = store.start_run(t)
    new = app_grant("a1", "user", "u1")  # u1 had it only through g1 so far (expanded)
    with store.Session() as s:
        assert write_through(s, t, [GrantAdded(Grant("app:a9:access", "user", "u3"))]) == [run1, run2]
        assert write_through(s, t, [GrantAdded(new)]) == [run1, run2]
        s.commit()
        [g] = [g for g in queries.app_access(s, "acme", "a1") if g.principal_id == "u1"]
        assert (g.expanded, g.sources) == (False, ())
        assert "app:a9:access:user:u3" in {g.id for g in queries.effective_access(s, "acme", "u3")}
        write_through(s, t, [GrantRemoved(Grant("app:a9:access", "user", "u3"))])
        s.commit()
        assert "app:a9:access:user:u3" not in {g.id for g in queries.effective_access(s, "acme", "u3")}
        in_run2 = set(s.execute(sa.select(GrantRow.id).where(GrantRow.run_id == run2)).scalars())
        assert in_run2 == {"app:a1:access:user:u1"}
