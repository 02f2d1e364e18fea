"""kill -9 of sync workers (main process; pool children) and of a provisioning worker mid-request."""

from __future__ import annotations

import time

import pytest

from tests.support.chaos import assert_exact_once, children, kill9, start_run, wait_pages

# Minutes of real workers killed and restarted: left out of the default run (CI runs `-m slow`).
pytestmark = pytest.mark.slow

ORG = ["--users", "500", "--groups", "25", "--apps", "8", "--latency-ms", "60", "--window-seconds", "5"]


def test_kill9_sync_worker_main_process_mid_run(chaos, oktasim):
    sim = oktasim([*ORG, "--seed", "21"])
    tid = chaos.add_tenant("killmain", sim.url)
    w1 = chaos.worker("w1")
    chaos.beat()  # the reaper re-enqueues streams whose worker died
    run_id = start_run(chaos, tid)
    wait_pages(chaos, run_id, 4)
    assert chaos.runs(tid)[0].state == "running"
    kill9(w1.pid)  # the node dies: its pool children lose their parent, its unacked messages sit in Redis
    w1.wait()
    chaos.worker("w2")
    run = chaos.wait_state(run_id, ("succeeded", "failed"), timeout=120)
    assert run.state == "succeeded", run.error
    assert_exact_once(chaos, tid, run_id, sim)


def test_kill9_sync_pool_children_mid_run(chaos, oktasim):
    sim = oktasim([*ORG, "--seed", "22"])
    tid = chaos.add_tenant("killchild", sim.url)
    w1 = chaos.worker("w1")
    chaos.beat()
    run_id = start_run(chaos, tid)
    killed = 0
    for target in (3, 8):  # kill every pool child twice during the run (busy ones included)
        wait_pages(chaos, run_id, target)
        assert chaos.runs(tid)[0].state == "running"
        for pid in children(w1.pid):
            kill9(pid)
            killed += 1
        time.sleep(0.5)
    assert killed >= 2
    run = chaos.wait_state(run_id, ("succeeded", "failed"), timeout=120)
    assert run.state == "succeeded", run.error
    assert w1.poll() is None, "the main worker process must survive its children's death"
    assert_exact_once(chaos, tid, run_id, sim)
    assert "WorkerLostError" in chaos.log("w1") or "exited with 'signal 9" in chaos.log("w1")


def test_kill9_sync_worker_mid_verify_keeps_the_view_and_finds_the_drift(chaos, oktasim):
    """A verify run whose worker dies: its pages come back to another worker, the drift it reports
    is exactly the view's, and the view stays as it was."""
    from tests.support.store import tamper_view
    from worker.store.tables import Tenant

    sim = oktasim([*ORG, "--seed", "23"])
    tid = chaos.add_tenant("killverify", sim.url)
    w1 = chaos.worker("w1")
    chaos.beat()
    synced = chaos.wait_state(start_run(chaos, tid), ("succeeded", "failed"), timeout=120)
    assert synced.state == "succeeded", synced.error
    tampered = tamper_view(chaos.engine, tid)
    before = chaos.picture(tid)
    run_id = start_run(chaos, tid, "verify")
    wait_pages(chaos, run_id, 4)
    assert chaos.runs(tid)[-1].state == "running"
    kill9(w1.pid)
    w1.wait()
    chaos.worker("w2")
    run = chaos.wait_state(run_id, ("succeeded", "failed"), timeout=120)
    assert run.state == "succeeded", run.error
    got = run.counts["drift"]["grants"]
    assert (got["missing_ids"], got["extra_ids"]) == ([tampered["removed"]], [tampered["added"]])
    assert chaos.picture(tid) == before
    with chaos.sessions() as s:
        assert s.get(Tenant, tid).current_run_id == synced.id


def test_kill9_provisioning_worker_mid_grant_applies_once(oktasim, pg_url, secret_key, workers, celery_app):
    """A grant whose worker dies between its read and its write: the message comes back, the group
    gets the member once, the request succeeds once (attempts 2), and the view shows it."""
    from tests.support.provisioning import make_store, sim_args, wait_done
    from worker import client

    sim = oktasim(sim_args("--latency-ms", "700"))
    store = make_store(pg_url, sim.url)
    st = sim.state()
    g = next(x for x in st["groups"] if x["type"] == "OKTA_GROUP")
    uid = next(u["id"] for u in st["users"] if u["status"] == "ACTIVE" and u["id"] not in g["members"])
    first = workers(concurrency=1, OKTASYNC_VISIBILITY_TIMEOUT="20")
    ref = client.grant("super", f"group:{g['id']}:member", f"user:{uid}", "chaos-k9", database_url=pg_url,
                       app=celery_app)
    deadline = time.monotonic() + 30
    while store.request(ref.id).state != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # inside the 0.7 s read of the current state
    first.kill9()
    assert store.request(ref.id).state == "running"
    workers(concurrency=1, OKTASYNC_VISIBILITY_TIMEOUT="20")
    row = wait_done(store, ref.id, timeout=90)
    assert row.state == "succeeded", row.error
    members = next(x for x in sim.state()["groups"] if x["id"] == g["id"])["members"]
    assert members.count(uid) == 1
    assert f"group:{g['id']}:member:user:{uid}" in store.view()
