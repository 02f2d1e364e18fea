"""A page's state statements: the stream read with its tenant's version, the cursor advance fenced
by the run's state, and page tasks' transactions on one connection."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event

from worker.engine.release import release_streams
from worker.store import runs
from worker.store.db import one_connection
from worker.store.tables import SyncStream, Tenant


def _active_stream(store, cursor: str = "c1") -> tuple[int, int, int]:
    """(tenant, run, stream) with one active stream at `cursor`."""
    t = store.tenant()
    with store.Session() as s:
        run = runs.create_run(s, t)
        runs.start_run(s, run)
        runs.add_streams(s, run, [("users", "", "{}", cursor)])
        s.commit()
        release_streams(s, 8, 8)
        s.commit()
        stream = s.execute(sa.select(SyncStream.id).where(SyncStream.run_id == run)).scalar_one()
    return t, run, stream


def test_the_stream_read_carries_the_tenants_version(store):
    t, run, stream = _active_stream(store)
    with store.Session() as s:
        st = runs.load_stream(s, stream)
        version = s.execute(sa.select(Tenant.updated_at).where(Tenant.id == t)).scalar_one()
    assert st is not None and (st.run_id, st.tenant_id, st.cursor, st.state, st.run_state) == (run, t, "c1", "active", "running")
    assert st.tenant_version == version
    with store.Session() as s:
        assert runs.load_stream(s, stream + 1000) is None


def test_a_fenced_advance_moves_only_a_running_runs_stream_from_the_given_cursor(store):
    _t, run, stream = _active_stream(store)
    with store.Session() as s:
        assert not runs.advance(s, stream, "elsewhere", "c2", 5, run_id=run)  # not the stream's cursor
        assert runs.advance(s, stream, "c1", "c2", 5, ["one odd object"], run_id=run)
        s.commit()
        assert runs.fail(s, run, "stopped")
        s.commit()
        assert not runs.advance(s, stream, "c2", None, 5, run_id=run)  # the run stopped: no page lands
        s.rollback()
        row = s.execute(sa.select(SyncStream.cursor, SyncStream.pages, SyncStream.items, SyncStream.error)
                        .where(SyncStream.id == stream)).one()
    assert tuple(row) == ("c2", 1, 5, "one odd object")


def test_the_last_page_closes_the_stream_and_completion_follows(store):
    _t, run, stream = _active_stream(store)
    with store.Session() as s:
        assert not runs.try_complete(s, run)  # a stream is still open
        assert runs.advance(s, stream, "c1", None, 3, final_state="skipped", run_id=run)
        s.commit()
        assert runs.try_complete(s, run) and not runs.try_complete(s, run)  # exactly one caller wins
        s.commit()
        assert s.execute(sa.select(SyncStream.state).where(SyncStream.id == stream)).scalar_one() == "skipped"
        assert runs.run_state(s, run) == "finalizing"


def test_one_connection_serves_several_transactions_with_one_checkout(store):
    t = store.tenant()
    checkouts: list[object] = []
    event.listen(store.engine, "checkout", lambda dbapi_conn, *_: checkouts.append(dbapi_conn))
    with one_connection(store.Session) as sessions:
        for name in ("one", "two", "three"):
            with sessions() as s:
                s.execute(sa.update(Tenant).where(Tenant.id == t).values(name=name))
                s.commit()
        with sessions() as s:  # a rolled back transaction leaves the connection usable
            s.execute(sa.update(Tenant).where(Tenant.id == t).values(name="never"))
            s.rollback()
    with store.Session() as s:  # committed work is visible elsewhere
        assert s.execute(sa.select(Tenant.name).where(Tenant.id == t)).scalar_one() == "three"
    if store.engine.dialect.name == "postgresql":
        assert len(checkouts) == 2  # the held connection, then this last session's
    else:
        assert len(checkouts) == 5  # SQLite keeps a checkout per transaction (its BEGIN mode)
