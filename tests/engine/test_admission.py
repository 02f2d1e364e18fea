"""Admission is crash-safe: a run Beat admitted is a queued run row before its start message is
sent, so a dispatcher killed between the two (or a lost message) loses nothing: the reaper sends
the start again, and the run keeps its place within the bound meanwhile."""

from __future__ import annotations

import time

import sqlalchemy as sa

from worker.engine import steps
from worker.engine.runtime import Runtime
from worker.store.db import make_engine, make_session_factory
from worker.store.migrate import migrate
from worker.store.tables import SyncRun
from worker.store.tenants import create_tenant


class Collect:
    def __init__(self):
        self.sent: list[tuple[str, list]] = []

    def enqueue(self, task, args, countdown=None, priority=0):
        self.sent.append((task, list(args)))


def test_an_admitted_run_whose_start_was_lost_is_started_again_and_keeps_its_place(db_url, secret_key):
    migrate(db_url)
    sessions = make_session_factory(make_engine(db_url))
    with sessions() as s:
        tenants = [create_tenant(s, f"t{i}", f"t{i}.okta.com", {"api_token": "x" * 40}).id for i in range(3)]
        s.commit()
    sender = Collect()
    rt = Runtime(sessions=sessions, sender=sender, make_tenant=lambda row: None, max_active_runs=2,
                 stall_timeout=0.01, run_stall_factor=10_000)
    admitted = steps.claim_and_start(rt)
    assert len(admitted) == 2
    sender.sent.clear()  # the dispatcher died before (or its messages were lost after) sending them

    time.sleep(0.05)  # past the (tiny) stall timeout
    steps.dispatch(rt)
    assert sorted(args[0] for task, args in sender.sent if task == steps.START) == sorted(admitted)
    with sessions() as s:
        rows = s.execute(sa.select(SyncRun.tenant_id, SyncRun.state)).all()
        assert sorted(t for t, _state in rows) == tenants[:2] and {st for _t, st in rows} == {"queued"}
        s.execute(sa.update(SyncRun).where(SyncRun.id == admitted[0]).values(state="succeeded"))
        s.commit()
    assert steps.claim_and_start(rt)  # a place freed: the third tenant is admitted
    with sessions() as s:
        assert tenants[2] in s.execute(sa.select(SyncRun.tenant_id)).scalars().all()
