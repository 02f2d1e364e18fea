"""Task labels (tenant, run, stream) for log lines and Flower: a stream's owner is looked up once,
and the run's next streams come with it (a run publishes its child streams one message each)."""

from __future__ import annotations

from types import SimpleNamespace

import sqlalchemy as sa

from worker.connector import SyncOptions
from worker.engine.embedded import _prepare
from worker.observability import taskinfo
from worker.store import runs
from worker.store.db import make_session_factory
from worker.store.tables import SyncRun, SyncStream


def _runs_with_streams(tmp_path):
    """Two runs of one tenant whose streams interleave by id: (tenant_id, {run_id: [stream ids]})."""
    engine, _keys, tenant_id = _prepare(tmp_path / "t.db", "http://127.0.0.1:9", {"api_token": "x" * 40},
                                        SyncOptions())
    streams: dict[int, list[int]] = {}
    with make_session_factory(engine)() as s:
        runs.begin_write(s)
        first = runs.create_run(s, tenant_id)
        s.execute(sa.update(SyncRun).where(SyncRun.id == first).values(state="succeeded"))  # one open run a tenant
        run_ids = [first, runs.create_run(s, tenant_id)]
        for i in range(3):
            for run_id in run_ids:
                runs.add_streams(s, run_id, [("group-members", f"g{i}", f"/g/{i}", f"/g/{i}")])
        s.commit()
        for run_id in run_ids:
            streams[run_id] = s.execute(sa.select(SyncStream.id).where(SyncStream.run_id == run_id)
                                        .order_by(SyncStream.id)).scalars().all()
    engine.dispose()
    return tenant_id, streams


def test_a_stream_lookup_caches_its_runs_next_streams_and_no_other_runs(tmp_path):
    tenant_id, streams = _runs_with_streams(tmp_path)
    settings = SimpleNamespace(database_url=f"sqlite:///{tmp_path / 't.db'}")
    (run_a, ids_a), (run_b, ids_b) = streams.items()
    taskinfo._cache.clear()

    label = taskinfo.describe("oktasync.sync.page", [ids_a[1], None], {}, settings)

    assert label == {"tenant_id": tenant_id, "run_id": run_a, "stream_id": ids_a[1], "stream": "group-members"}
    assert {k[1] for k in taskinfo._cache if k[0] == "stream"} == set(ids_a[1:])  # not ids_a[0], not run b's
    assert taskinfo.describe("oktasync.sync.page", [ids_a[2], None], {}, settings)["run_id"] == run_a
    assert taskinfo.describe("oktasync.sync.page", [ids_b[0], None], {}, settings)["run_id"] == run_b
    assert taskinfo.describe("oktasync.sync.page", [10**9, None], {}, settings) == {"stream_id": 10**9}
