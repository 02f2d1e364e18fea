"""release_streams on a real SQLite file: a kind of list whose streams wait for the limiter gets no
new stream once `kind_waiting_cap` of them wait, so lists of other kinds (other Okta buckets) start."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from worker.connector import SyncOptions
from worker.engine.embedded import _prepare
from worker.engine.release import (
    DEFERRED_HEADROOM,
    ReleasePlan,
    kind_waiting_cap,
    plan_release,
    release_streams,
)
from worker.store import runs
from worker.store.db import make_session_factory
from worker.store.tables import SyncStream, utcnow


def _run_with_streams(tmp_path, waiting_apps: int):
    engine, _keys, tenant_id = _prepare(tmp_path / "r.db", "http://127.0.0.1:9", {"api_token": "x" * 40},
                                        SyncOptions())
    sessions = make_session_factory(engine)
    with sessions() as s:
        runs.begin_write(s)
        run_id = runs.create_run(s, tenant_id)
        assert runs.start_run(s, run_id)
        specs = [(kind, f"{kind}:{i}", f"/u/{kind}/{i}", f"/u/{kind}/{i}")
                 for kind in ("app-users", "group-members") for i in range(10)]
        runs.add_streams(s, run_id, specs)
        ids = s.execute(sa.select(SyncStream.id).where(SyncStream.kind == "app-users").order_by(SyncStream.id)
                        ).scalars().all()
        s.execute(sa.update(SyncStream).where(SyncStream.id.in_(ids[:waiting_apps])).values(
            state="active", deferred_until=utcnow() + timedelta(seconds=60)))
        s.commit()
    return engine, sessions, run_id


def _released_kinds(sessions, picked):
    with sessions() as s:
        return [s.get(SyncStream, sid).kind for sid, _cursor in picked]


def test_a_kind_with_cap_waiting_streams_gets_no_new_stream(tmp_path):
    cap = 16
    engine, sessions, _run = _run_with_streams(tmp_path, waiting_apps=kind_waiting_cap(cap))
    with sessions() as s:
        picked = release_streams(s, cap, 256)
        s.commit()
    kinds = _released_kinds(sessions, picked)
    assert kinds and set(kinds) == {"group-members"}  # all 10 of them; no app list is opened
    assert len(kinds) == 10
    engine.dispose()


def test_a_kind_under_the_cap_still_gets_streams_round_robin(tmp_path):
    cap = 16
    engine, sessions, _run = _run_with_streams(tmp_path, waiting_apps=kind_waiting_cap(cap) - 1)
    with sessions() as s:
        picked = release_streams(s, cap, 256)
        s.commit()
    kinds = _released_kinds(sessions, picked)
    # Round-robin until the busy cap (16): all 7 pending app lists, 9 group-member lists.
    assert len(kinds) == cap
    assert kinds.count("app-users") == 10 - (kind_waiting_cap(cap) - 1)
    assert kinds.count("group-members") == cap - kinds.count("app-users")
    engine.dispose()


# ---------------------------------------------------------------- the plan alone, no database

def test_plan_serves_the_run_with_fewest_busy_streams_first():
    counts = [(1, "users", "active", False, 3), (1, "groups", "pending", False, 5),
              (2, "users", "pending", False, 5)]
    plan = plan_release(counts, tenant_cap=4, global_cap=5)
    # Two free slots in all: run 2 (nothing busy) is served first, then run 1.
    assert plan.slots == {2: 1, 1: 1}


def test_plan_keeps_each_run_under_its_cap_and_all_under_the_global_cap():
    counts = [(1, "users", "pending", False, 50), (2, "users", "pending", False, 50)]
    assert plan_release(counts, tenant_cap=8, global_cap=100).slots == {1: 8, 2: 8}
    assert sum(plan_release(counts, tenant_cap=8, global_cap=10).slots.values()) == 10
    assert plan_release([(1, "users", "active", False, 10), *counts], tenant_cap=8, global_cap=10).slots == {}


def test_plan_holds_back_a_kind_whose_streams_wait_for_the_limiter():
    cap = 16
    waiting = kind_waiting_cap(cap)
    counts = [(1, "app-users", "active", True, waiting), (1, "app-users", "pending", False, 10),
              (1, "group-members", "pending", False, 10)]
    plan = plan_release(counts, tenant_cap=cap, global_cap=256)
    assert plan.held == {(1, "app-users")}
    assert plan.slots == {1: 10}  # only the group-member lists


def test_plan_bounds_open_streams_by_the_deferred_headroom():
    cap = 2
    # Waiting streams spread over kinds (none held back), filling the open headroom.
    counts = [(1, f"k{i}", "active", True, 1) for i in range(DEFERRED_HEADROOM * cap)]
    counts.append((1, "users", "pending", False, 5))
    assert plan_release(counts, tenant_cap=cap, global_cap=256).slots == {}
    assert plan_release(counts[1:], tenant_cap=cap, global_cap=256).slots == {1: 1}


def test_plan_with_nothing_pending_is_empty():
    assert plan_release([(1, "users", "active", False, 2)], 8, 256) == ReleasePlan()


# ---------------------------------------------------------------- one run's release (SQLite and PostgreSQL)

def _runs_with_streams(db_url, layout: dict[str, tuple[int, int]]):
    """One running run per name, with (active busy streams, pending streams); returns sessions and
    {name: run id}."""
    from worker.store.db import make_engine
    from worker.store.migrate import migrate
    from worker.store.secrets import generate_key, load_keys
    from worker.store.tenants import create_tenant

    migrate(db_url)
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    keys = load_keys(generate_key())
    ids = {}
    with sessions() as s:
        for name, (active, pending) in layout.items():
            tenant = create_tenant(s, name, "http://127.0.0.1:9", {"api_token": "x" * 40}, keys=keys)
            s.flush()
            run_id = runs.create_run(s, tenant.id)
            assert runs.start_run(s, run_id)
            runs.add_streams(s, run_id, [("group-members", f"g{i}", f"/g/{i}", f"/g/{i}")
                                         for i in range(active + pending)])
            first = s.execute(sa.select(SyncStream.id).where(SyncStream.run_id == run_id)
                              .order_by(SyncStream.id).limit(active)).scalars().all()
            s.execute(sa.update(SyncStream).where(SyncStream.id.in_(first)).values(state="active"))
            ids[name] = run_id
        s.commit()
    return engine, sessions, ids


def _active_by_run(sessions) -> dict[int, int]:
    with sessions() as s:
        return dict(s.execute(sa.select(SyncStream.run_id, sa.func.count()).where(SyncStream.state == "active")
                              .group_by(SyncStream.run_id)).all())


def test_a_runs_release_activates_only_that_runs_streams(db_url):
    engine, sessions, ids = _runs_with_streams(db_url, {"a": (1, 10), "b": (0, 10)})
    with sessions() as s:
        picked = release_streams(s, 4, 256, run_id=ids["a"])
        s.commit()
    assert len(picked) == 3  # up to a's cap of 4 busy; b (nothing busy) is not touched
    assert _active_by_run(sessions) == {ids["a"]: 4}
    engine.dispose()


def test_a_runs_release_counts_other_runs_against_the_global_cap(db_url):
    engine, sessions, ids = _runs_with_streams(db_url, {"a": (0, 10), "z": (6, 0)})
    with sessions() as s:
        picked = release_streams(s, 4, 10, run_id=ids["a"])  # 4 free: a may take its whole cap
        s.commit()
    assert len(picked) == 4 and _active_by_run(sessions) == {ids["a"]: 4, ids["z"]: 6}
    engine.dispose()


def test_when_slots_are_scarce_a_runs_release_serves_the_fewest_busy_run_first(db_url):
    # 3 slots free of 8, fewer than a run's cap: the release after a's page plans over every run,
    # and b (nothing busy) gets two of them, a one.
    engine, sessions, ids = _runs_with_streams(db_url, {"a": (1, 10), "b": (0, 10), "z": (4, 0)})
    with sessions() as s:
        release_streams(s, 4, 8, run_id=ids["a"])
        s.commit()
    assert _active_by_run(sessions) == {ids["a"]: 2, ids["b"]: 2, ids["z"]: 4}
    engine.dispose()


def test_when_slots_are_scarce_a_run_keeps_a_freed_slot_within_its_share(db_url):
    # 1 slot free of 8 (z holds 6, a 1), 3 runs running: a's share is 8 // 3 = 2, so the release
    # after a's page keeps the slot for a (the stream that ended was most likely a's own) instead
    # of planning over every run under the global lock, which would give it to b.
    engine, sessions, ids = _runs_with_streams(db_url, {"a": (1, 10), "b": (0, 10), "z": (6, 0)})
    with sessions() as s:
        release_streams(s, 4, 8, run_id=ids["a"])
        s.commit()
    assert _active_by_run(sessions) == {ids["a"]: 2, ids["z"]: 6}
    with sessions() as s:  # now nothing is free: a release starts nothing, for a or anyone
        assert release_streams(s, 4, 8, run_id=ids["b"]) == []
        s.commit()
    assert _active_by_run(sessions) == {ids["a"]: 2, ids["z"]: 6}
    engine.dispose()


def test_releases_of_different_runs_do_not_wait_for_each_other(pg_url):
    from sqlalchemy.exc import OperationalError

    engine, sessions, ids = _runs_with_streams(pg_url, {"a": (0, 10), "b": (0, 10)})
    with sessions() as holding, sessions() as other:
        assert release_streams(holding, 4, 256, run_id=ids["a"])  # a's release, not committed yet
        other.execute(sa.text("SET lock_timeout = '1s'"))
        assert len(release_streams(other, 4, 256, run_id=ids["b"])) == 4  # b's goes through
        other.commit()
        other.execute(sa.text("SET lock_timeout = '1s'"))
        for blocked in (lambda: release_streams(other, 4, 256, run_id=ids["a"]),  # a's next release waits
                        lambda: release_streams(other, 4, 256)):  # and so does a tick's global one
            try:
                blocked()
                raise AssertionError("a release that should wait for a's lock went through")
            except OperationalError as exc:
                assert "lock timeout" in str(exc)
            other.rollback()
            other.execute(sa.text("SET lock_timeout = '1s'"))
        holding.commit()
    assert _active_by_run(sessions) == {ids["a"]: 4, ids["b"]: 4}
    engine.dispose()


def test_of_two_pages_ending_a_runs_last_lists_at_once_the_later_sees_nothing_open(pg_url):
    """A page's release runs in its write transaction, after the page ended its list: the second
    of two such pages waits for the first's run lock, then sees the first's list ended, so exactly
    the last one finds nothing open and completes the run (neither would, reading uncommitted)."""
    import threading

    from worker.engine.release import release_run

    engine, sessions, ids = _runs_with_streams(pg_url, {"a": (2, 0)})
    run_id = ids["a"]
    with sessions() as s:
        first, second = s.execute(sa.select(SyncStream.id).where(SyncStream.run_id == run_id)
                                  .order_by(SyncStream.id)).scalars().all()
    seen: dict[str, int] = {}

    def end_list(name: str, stream_id: int, session) -> None:
        session.execute(sa.update(SyncStream).where(SyncStream.id == stream_id).values(state="done"))
        seen[name] = release_run(session, 4, 256, run_id).open_streams

    with sessions() as one, sessions() as two, sessions() as watch:
        end_list("first", first, one)  # not committed yet: the second list is still active
        later = threading.Thread(target=end_list, args=("second", second, two))
        later.start()
        # The second page waits for the run's lock (no timing: until PostgreSQL shows it waiting).
        while not watch.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                        "AND NOT granted")).scalar():
            watch.rollback()
            later.join(0.05)
            assert later.is_alive(), "the second release did not wait for the first's lock"
        one.commit()
        later.join(30)
        two.commit()
    assert seen == {"first": 1, "second": 0}
    with sessions() as s:
        assert runs.try_complete(s, run_id)  # what the second page then does, in its own transaction
        s.commit()
    engine.dispose()
