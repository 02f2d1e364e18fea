"""Beat's ticks keep running while every sync pool process is busy with slow pages: the dispatcher
task has its own queue and worker (Procfile `dispatcher`), so a tenant that comes due is claimed
on time instead of its tick expiring behind page tasks on the `sync` queue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
import sqlalchemy as sa

from worker.store.tables import SyncRun, SyncStream, Tenant


# ~21 s on a quiet machine (three Celery processes, a sync of slow pages).
@pytest.mark.slow
def test_a_tenant_due_while_the_sync_pool_is_saturated_is_claimed(cluster, oktasim, redis_url):
    # Slow pages (1 s a request, plus 5 ms an item) and limits far above what one worker uses, so
    # the only thing holding the worker is page work.
    sim = oktasim(["--users", "400", "--groups", "30", "--apps", "6", "--latency-ms", "1000",
                   "--rate-limit-scale", "100", "--seed", "21"])
    busy = cluster.add_tenant("busy", sim.url, due=True)
    later = cluster.add_tenant("later", sim.url)  # due in a day
    cluster.worker("w1", concurrency=1)  # one pool process, kept busy by `busy`'s 4 open lists
    cluster.beat()
    broker = redis.Redis.from_url(redis_url)

    def saturated() -> bool:
        with cluster.sessions() as s:
            active = s.execute(sa.select(sa.func.count()).select_from(SyncStream).join(
                SyncRun, SyncRun.id == SyncStream.run_id).where(
                SyncRun.tenant_id == busy, SyncStream.state == "active")).scalar()
        # More open lists than pool processes: page messages wait on `sync` for the one process.
        return active >= 3 and broker.llen("sync") >= 1

    cluster.wait_runs(saturated, 90, "the busy tenant's pages to queue up behind the one pool process")
    with cluster.sessions() as s:
        s.execute(sa.update(Tenant).where(Tenant.id == later).values(next_sync_at=datetime.now(UTC)))
        s.commit()

    # Ticks expire after one interval (1 s here); pages take over a second each, so a tick queued
    # behind them on `sync` would never run while `busy` syncs. On its own queue it runs at once.
    cluster.wait_runs(lambda: bool(cluster.runs(later)), 20, "a claim of the tenant that came due")
    assert [r.state for r in cluster.runs(busy)] == ["running"], "the pool was not busy during the claim"
    ran = "task oktasync.sync.dispatch SUCCESS"
    assert ran in cluster.log("beat-dispatcher") and ran not in cluster.log("w1")  # no tick took a sync slot
    broker.close()

