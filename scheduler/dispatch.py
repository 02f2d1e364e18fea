"""The Beat-ticked dispatcher task: claim due tenants, release pending streams, reap.

Tenants' schedules are rows (tenants.sync_interval and next_sync_at for full syncs,
incremental_interval and next_incremental_at, verify_interval and next_verify_at, enabled), so
adding, changing, pausing or removing a tenant needs no Beat restart. A claim is a compare-and-set
on the kind's due time plus the insert of a sync_run of that kind that the partial unique index
refuses while a run is active, so a second Beat (or a duplicated tick) cannot start a second run;
a tenant due for several kinds gets a full run first, then incremental, then verify
(worker/store/runs.py, claim_due). Only OKTASYNC_MAX_RUNS runs are active at once: the claim
admits the longest-waiting due tenants into the free places and leaves the rest due.
"""

from __future__ import annotations

from typing import Any

from worker.app import app
from worker.engine import steps
from worker.tasks.base import OktasyncTask


@app.task(name=steps.DISPATCH, base=OktasyncTask, bind=True, max_retries=0)
def dispatch(self: OktasyncTask) -> dict[str, Any]:
    return steps.dispatch(self.runtime.engine)
