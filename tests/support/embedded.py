"""Embedded syncs into a SQLite file against oktasim, as the incremental and verify tests run them:
the org, the options, a sync, the file's whole current view, and a kill once a run has staged rows."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import sqlalchemy as sa

from tests.support.sim import SIM_TOKEN
from worker.connector import SyncOptions
from worker.engine.embedded import run_embedded
from worker.store.db import make_engine
from worker.store.tables import EntitlementRow, GrantRow, ResourceRow, SyncRun, Tenant

OPTIONS = SyncOptions(sync_custom_roles=True, sync_secrets=True)
ORG = ["--users", "150", "--groups", "20", "--apps", "8", "--seed", "21", "--window-seconds", "5"]


def view(file, ignore: tuple[str, ...] = ()) -> tuple[set, set, set]:
    """The file's current view, whole: every column a reader sees (but the profile keys `ignore`)."""
    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        run = c.execute(sa.select(Tenant.current_run_id)).scalar()
        r, e, g = ResourceRow, EntitlementRow, GrantRow
        res = {(x.id, x.display_name, repr(sorted(i for i in x.profile.items() if i[0] not in ignore)), x.parent)
               for x in c.execute(sa.select(r.id, r.display_name, r.profile, r.parent).where(r.run_id == run))}
        ents = {tuple(x) for x in c.execute(sa.select(e.id, e.display_name).where(e.run_id == run))}
        grants = {(x.id, x.expanded, tuple(x.sources), repr(sorted(x.annotations.items()))) for x in c.execute(
            sa.select(g.id, g.expanded, g.sources, g.annotations).where(g.run_id == run))}
    engine.dispose()
    return res, ents, grants


def sync(sim, file, **kw):
    result = run_embedded(sim.url, {"api_token": SIM_TOKEN}, kw.pop("options", OPTIONS), file=str(file),
                          concurrency=4, **kw)
    assert result.state == "succeeded", result.error
    return result


def kill_once_staged(proc: subprocess.Popen, file, kind: str, timeout: float = 60) -> int:
    """kill -9 `proc` (an embedded oktasync) as soon as its running run of `kind` has staged grant
    rows in `file`; returns how many it had (0: it never did before the deadline)."""
    engine = make_engine(f"sqlite:///{file}")
    deadline = time.monotonic() + timeout
    staged = 0
    while time.monotonic() < deadline and not staged:
        with engine.connect() as c:
            staged = c.execute(sa.select(sa.func.count()).select_from(GrantRow).join(
                SyncRun, SyncRun.id == GrantRow.run_id).where(SyncRun.kind == kind, SyncRun.state == "running")).scalar()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    engine.dispose()
    return staged
