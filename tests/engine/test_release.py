"""state.release on a real SQLite file: a kind of list whose streams wait for the limiter gets no
new stream once `kind_waiting_cap` of them wait, so lists of other kinds (other Okta buckets) start."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from worker.connector import SyncOptions
from worker.engine import state
from worker.engine.embedded import _prepare
from worker.store.db import make_session_factory
from worker.store.models import SyncStream, utcnow


def _run_with_streams(tmp_path, waiting_apps: int):
    engine, _keys, tenant_id = _prepare(tmp_path / "r.db", "http://127.0.0.1:9", {"api_token": "x" * 40},
                                        SyncOptions())
    sessions = make_session_factory(engine)
    with sessions() as s:
        state.begin_write(s)
        run_id = state.create_run(s, tenant_id)
        assert state.start_run(s, run_id)
        specs = [(kind, f"{kind}:{i}", f"/u/{kind}/{i}", f"/u/{kind}/{i}")
                 for kind in ("app-users", "group-members") for i in range(10)]
        state.add_streams(s, run_id, specs)
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
    engine, sessions, _run = _run_with_streams(tmp_path, waiting_apps=state.kind_waiting_cap(cap))
    with sessions() as s:
        picked = state.release(s, cap, 256)
        s.commit()
    kinds = _released_kinds(sessions, picked)
    assert kinds and set(kinds) == {"group-members"}  # all 10 of them; no app list is opened
    assert len(kinds) == 10
    engine.dispose()


def test_a_kind_under_the_cap_still_gets_streams_round_robin(tmp_path):
    cap = 16
    engine, sessions, _run = _run_with_streams(tmp_path, waiting_apps=state.kind_waiting_cap(cap) - 1)
    with sessions() as s:
        picked = state.release(s, cap, 256)
        s.commit()
    kinds = _released_kinds(sessions, picked)
    # Round-robin until the busy cap (16): all 7 pending app lists, 9 group-member lists.
    assert len(kinds) == cap
    assert kinds.count("app-users") == 10 - (state.kind_waiting_cap(cap) - 1)
    assert kinds.count("group-members") == cap - kinds.count("app-users")
    engine.dispose()
