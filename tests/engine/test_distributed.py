"""The distributed mode end to end: real Celery workers and Beat on Redis, PostgreSQL, oktasim."""

from __future__ import annotations

import time

import sqlalchemy as sa

from tests.support.sim import SMALL
from worker.engine import steps
from worker.engine.release import release_streams
from worker.engine.runtime import Runtime
from worker.store import runs
from worker.store.tables import GrantRow, ResourceRow, SyncRun, SyncStream, Tenant


class Collect:
    """A sender that only records what a step enqueued (the test then delivers it itself)."""

    def __init__(self):
        self.sent: list[tuple[str, list, float | None]] = []

    def enqueue(self, task, args, countdown=None, priority=0):
        self.sent.append((task, list(args), countdown))


def test_two_workers_three_tenants_match_their_orgs(cluster, oktasim):
    sims = [oktasim([*SMALL, "--seed", str(seed)]) for seed in (1, 2, 3)]
    tenants = [cluster.add_tenant(f"org{i}", sim.url, due=True) for i, sim in enumerate(sims)]
    cluster.worker("w1")
    cluster.worker("w2")
    cluster.beat()
    for tid in tenants:
        cluster.wait_runs(lambda tid=tid: any(r.state == "succeeded" for r in cluster.runs(tid)), 120,
                          f"tenant {tid} synced")
    for tid, sim in zip(tenants, sims, strict=True):
        cluster.assert_matches(tid, sim)
    # Both workers did pages (fan-out across processes, not one worker doing everything).
    assert "oktasync.sync.page" in cluster.log("w1") and "oktasync.sync.page" in cluster.log("w2")


def test_redelivered_pages_change_nothing(cluster, oktasim):
    sim = oktasim(["--users", "450", "--groups", "5", "--apps", "3", "--seed", "4", "--window-seconds", "5"])
    tid = cluster.add_tenant("dup", sim.url)
    collect = Collect()
    rt = Runtime(sessions=cluster.sessions, sender=collect, make_tenant=lambda row: None)
    with cluster.sessions() as s:
        runs.begin_write(s)
        run_id = runs.create_run(s, tid)
        s.commit()
    # Start the run in the test with a recording sender, then deliver every first page TWICE.
    from worker.connector.tenant_client import tenant_factory

    rt.make_tenant = tenant_factory(None)
    steps.start_run(rt, run_id)
    first_pages = [(t, a) for t, a, _ in collect.sent if t == steps.PAGE]
    assert first_pages, collect.sent
    celery = cluster.sender()
    for task, args in first_pages:
        celery.enqueue(task, args)
        celery.enqueue(task, args)
    cluster.worker("w1")
    cluster.worker("w2")
    run = cluster.wait_state(run_id, ("succeeded", "failed"), timeout=120)
    assert run.state == "succeeded", run.error
    cluster.assert_matches(tid, sim)
    # Each page was taken once: 450 users at 200 a page = 3 pages and 450 items, not 6 and 900.
    assert run.counts["resources_by_type"]["user"] == 450
    with cluster.sessions() as s:
        pages, items = s.execute(sa.select(SyncStream.pages, SyncStream.items).where(
            SyncStream.run_id == run_id, SyncStream.kind == "users")).one()
    assert (pages, items) == (3, 450)
    log = cluster.log("w1") + cluster.log("w2")
    assert log.count("oktasync.sync.page") >= len(first_pages) * 2  # the duplicates were delivered


def test_failed_run_leaves_the_previous_view(cluster, oktasim):
    sim = oktasim([*SMALL, "--seed", "5"])
    tid = cluster.add_tenant("keep", sim.url)
    cluster.worker("w1")
    celery = cluster.sender()

    def sync_now() -> int:
        with cluster.sessions() as s:
            runs.begin_write(s)
            run_id = runs.create_run(s, tid)
            s.commit()
        celery.enqueue(steps.START, [run_id])
        return run_id

    first = cluster.wait_state(sync_now(), ("succeeded", "failed"))
    assert first.state == "succeeded", first.error
    before = cluster.picture(tid)
    # Break the credentials: the next run fails at its first page.
    from worker.store.tenants import update_tenant

    with cluster.sessions() as s:
        update_tenant(s, tid, credentials={"api_token": "00wrong-token-000000000000000000000000000"})
        s.commit()
    second = cluster.wait_state(sync_now(), ("succeeded", "failed"))
    assert second.state == "failed"
    assert "401" in second.error or "uthentic" in second.error, second.error
    with cluster.sessions() as s:
        assert s.execute(sa.select(Tenant.current_run_id).where(Tenant.id == tid)).scalar() == first.id

    def rows_left() -> int:
        with cluster.sessions() as s:
            return s.execute(sa.select(sa.func.count()).select_from(ResourceRow).where(
                ResourceRow.run_id == second.id)).scalar()
    # The failed state is committed first, then the run's rows are deleted in batches.
    cluster.wait_runs(lambda: rows_left() == 0, 30, f"the rows of failed run {second.id} to be deleted")
    assert cluster.picture(tid) == before
    cluster.assert_matches(tid, sim)


def test_beat_schedules_by_interval_and_never_overlaps(cluster, oktasim):
    fast_sim = oktasim([*SMALL, "--seed", "6"])
    slow_sim = oktasim([*SMALL, "--seed", "7"])
    fast = cluster.add_tenant("fast", fast_sim.url, interval=3, due=True)
    slow = cluster.add_tenant("slow", slow_sim.url, interval=3600, due=True)
    paused = cluster.add_tenant("paused", slow_sim.url, interval=1, due=True, enabled=False)
    cluster.worker("w1")
    cluster.worker("w2")
    cluster.beat("beat1")
    cluster.beat("beat2")  # a second Beat must be harmless
    cluster.wait_runs(lambda: sum(r.state == "succeeded" for r in cluster.runs(fast)) >= 3, 180,
                      "three runs of the fast tenant")
    time.sleep(1)
    slow_runs, fast_runs = cluster.runs(slow), cluster.runs(fast)
    assert len([r for r in slow_runs if r.state != "failed"]) == 1
    assert cluster.runs(paused) == []
    for tenant_runs in (fast_runs, slow_runs):
        done = [r for r in tenant_runs if r.started_at]
        for a, b in zip(done, done[1:], strict=False):
            assert a.finished_at is not None and b.started_at >= a.finished_at, (a, b)
    assert all(r.state != "failed" for r in fast_runs), [r.error for r in fast_runs]
    # A tenant resumed is picked up without restarting Beat.
    from worker.store.tenants import update_tenant

    with cluster.sessions() as s:
        update_tenant(s, paused, enabled=True)
        s.commit()
    cluster.wait_runs(lambda: any(r.state == "succeeded" for r in cluster.runs(paused)), 120, "resumed tenant")


def test_beat_schedules_incremental_runs_that_follow_the_org(cluster, oktasim):
    """A tenant with a short incremental interval: Beat starts a full sync, then incremental runs by
    itself; after changes in the org the store equals the org again, without another full sync."""
    sim = oktasim([*SMALL, "--seed", "12", "--log-delay-ms", "1000"])
    tid = cluster.add_tenant("live", sim.url, interval=3600, incremental_interval=2, due=True,
                             options={"sync_custom_roles": True, "sync_secrets": True})
    cluster.worker("w1")
    cluster.beat()
    cluster.wait_runs(lambda: any(r.state == "succeeded" for r in cluster.runs(tid)), 120, "the first sync")
    sim.admin.post("/__sim/churn", json={"changes": 12, "seed": 5}).raise_for_status()
    after = max(r.id for r in cluster.runs(tid))

    def caught_up() -> bool:
        if not any(r.id > after and r.state == "succeeded" for r in cluster.runs(tid)):
            return False
        try:
            cluster.assert_matches(tid, sim, sync_custom_roles=True, sync_secrets=True)
            return True
        except AssertionError:
            return False  # the change's events may not be readable yet (--log-delay-ms): a later run

    cluster.wait_runs(caught_up, 120, "incremental runs to bring the store to the org")
    runs_ = [r for r in cluster.runs(tid) if r.state != "failed"]
    assert [r.kind for r in runs_][:1] == ["full"] and {r.kind for r in runs_[1:]} == {"incremental"}, \
        [(r.id, r.kind, (r.plan or {}).get("reason")) for r in runs_]
    assert all(r.due_at is not None for r in runs_)  # all started by Beat, none by hand
    assert [r.state for r in cluster.runs(tid)].count("failed") == 0, [r.error for r in cluster.runs(tid)]


def test_removed_tenant_stops_cleanly(cluster, oktasim):
    from worker.commands.tenant import remove_tenant_cleanly

    sim = oktasim(["--users", "2000", "--groups", "60", "--apps", "20", "--seed", "8", "--latency-ms", "50", "--window-seconds", "5"])
    other_sim = oktasim([*SMALL, "--seed", "9"])
    tid = cluster.add_tenant("gone", sim.url, due=True)
    other = cluster.add_tenant("stays", other_sim.url)
    cluster.worker("w1")
    cluster.beat()

    def some_pages() -> bool:
        with cluster.sessions() as s:
            return (s.execute(sa.select(sa.func.coalesce(sa.func.sum(SyncStream.pages), 0))
                              .join(SyncRun, SyncRun.id == SyncStream.run_id)
                              .where(SyncRun.tenant_id == tid, SyncRun.state == "running")).scalar() or 0) >= 3

    cluster.wait_runs(some_pages, 120, "the run to be under way")
    run_id = cluster.runs(tid)[0].id
    remove_tenant_cleanly(cluster.sessions, "gone")
    time.sleep(3)  # page tasks already queued run now and must find nothing to do
    with cluster.sessions() as s:
        assert s.get(Tenant, tid) is None
        for model in (ResourceRow, GrantRow, SyncStream):
            n = s.execute(sa.select(sa.func.count()).select_from(model).where(model.run_id == run_id)).scalar()
            assert n == 0, model
    # The workers are healthy: another tenant still syncs.
    with cluster.sessions() as s:
        runs.begin_write(s)
        other_run = runs.create_run(s, other)
        s.commit()
    cluster.sender().enqueue(steps.START, [other_run])
    assert cluster.wait_state(other_run, ("succeeded", "failed")).state == "succeeded"
    assert "Traceback" not in cluster.log("w1"), cluster.log("w1")[-3000:]


def test_tenant_and_sync_commands(cluster, oktasim):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.sim import SIM_TOKEN

    exe = str(Path(sys.executable).with_name("oktasync"))

    def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        got = subprocess.run([exe, *args], env=cluster.env, capture_output=True, text=True, timeout=180)
        if ok:
            assert got.returncode == 0, (args, got.stdout, got.stderr)
        return got

    sim = oktasim([*SMALL, "--seed", "10"])
    cli("tenant", "add", "acme", "--domain", sim.url, "--api-token", SIM_TOKEN, "--interval", "86400",
        "--paused", "--sync-custom-roles")
    listed = json.loads(cli("tenant", "list", "--json").stdout)
    assert [(t["name"], t["enabled"], t["options"]["sync_custom_roles"]) for t in listed] == [("acme", False, True)]
    shown = cli("tenant", "show", "acme").stdout
    assert SIM_TOKEN not in shown and "api_token" in shown
    cluster.worker("w1")
    done = cli("sync", "acme", "--wait", "--timeout", "150")
    assert "resources:" in done.stdout
    listed = json.loads(cli("runs", "acme", "--json").stdout)
    assert listed[0]["state"] == "succeeded" and listed[0]["counts"]["resources_by_type"]["user"] == 60
    with cluster.sessions() as s:
        from worker.store.tenants import get_tenant

        tenant_id = get_tenant(s, "acme").id
    cluster.assert_matches(tenant_id, sim, sync_custom_roles=True)
    # Again: incremental (the first run saved a change cursor); --full forces a full one.
    sim.admin.post("/__sim/churn", json={"changes": 5, "seed": 4}).raise_for_status()
    again = cli("sync", "acme", "--wait", "--timeout", "150")
    assert "sync:         incremental" in again.stdout
    cluster.assert_matches(tenant_id, sim, sync_custom_roles=True)
    forced = cli("sync", "acme", "--full", "--wait", "--timeout", "150")
    assert "sync:         full (asked for a full sync)" in forced.stdout
    listed = json.loads(cli("runs", "acme", "--json").stdout)
    assert [r["kind"] for r in listed] == ["full", "incremental", "full"]
    # A failing run: exit 1 with a message, and the runs list shows the error.
    cli("tenant", "update", "acme", "--api-token", "00bad-token-00000000000000000000000000000")
    bad = cli("sync", "acme", "--wait", "--timeout", "150", ok=False)
    assert bad.returncode == 1 and "failed" in bad.stderr and "credentials" in bad.stderr
    listed = json.loads(cli("runs", "acme", "--json").stdout)
    assert [r["state"] for r in listed] == ["failed", "succeeded", "succeeded", "succeeded"] and listed[0]["error"]
    cli("tenant", "resume", "acme")
    cli("tenant", "pause", "acme")
    cli("tenant", "remove", "acme", "--yes")
    assert json.loads(cli("tenant", "list", "--json").stdout) == []
    missing = cli("sync", "acme", ok=False)
    assert missing.returncode == 1 and "no tenant 'acme'" in missing.stderr


def test_tenant_update_interval_moves_the_next_due_time(tmp_path):
    """A shorter interval applies at once, not after the old (long) interval has run out."""
    import json
    import os
    import subprocess
    import sys
    from datetime import datetime, timedelta
    from pathlib import Path

    from tests.support.sim import SIM_TOKEN
    from worker.store.db import make_engine, make_session_factory
    from worker.store.secrets import generate_key
    from worker.store.tables import utcnow

    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**os.environ, "OKTASYNC_DATABASE_URL": url, "OKTASYNC_SECRET_KEY": generate_key()}
    exe = str(Path(sys.executable).with_name("oktasync"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        got = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, (args, got.stdout, got.stderr)
        return got

    def due() -> datetime:
        return datetime.fromisoformat(json.loads(cli("tenant", "show", "acme", "--json").stdout)["next_sync_at"])

    cli("tenant", "add", "acme", "--domain", "acme.okta.com", "--api-token", SIM_TOKEN, "--interval", "86400")
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        claimed_at = utcnow()
        assert len(runs.claim_due(s, claimed_at)) == 1  # Beat's claim: next due a day later
    engine.dispose()
    assert due() > claimed_at + timedelta(hours=23)
    out = cli("tenant", "update", "acme", "--interval", "60").stdout
    assert "next sync due" in out
    assert claimed_at + timedelta(seconds=58) <= due() <= claimed_at + timedelta(seconds=61)
    cli("tenant", "update", "acme", "--interval", "7200")
    assert claimed_at + timedelta(seconds=7198) <= due() <= claimed_at + timedelta(seconds=7201)

    # Incremental runs: due at once when turned on, moved by a new interval, gone when off.
    def incremental_due() -> str | None:
        return json.loads(cli("tenant", "show", "acme", "--json").stdout)["next_incremental_at"]

    turned_on = utcnow()
    assert "updated tenant acme: incremental_interval" in cli("tenant", "update", "acme", "--incremental-interval",
                                                              "60").stdout
    first = datetime.fromisoformat(incremental_due())
    assert turned_on - timedelta(seconds=1) <= first <= utcnow()
    cli("tenant", "update", "acme", "--incremental-interval", "90")
    assert datetime.fromisoformat(incremental_due()) == first + timedelta(seconds=30)
    cli("tenant", "update", "acme", "--incremental-interval", "off")
    assert incremental_due() is None


def test_sync_with_the_broker_down_fails_the_run_and_says_so(tmp_path):
    """`oktasync sync` cannot enqueue: exit 1 naming the broker (no password), and no queued run
    left behind to block the next `oktasync sync` of that tenant."""
    import json
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.sim import SIM_TOKEN
    from worker.store.secrets import generate_key

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OKTASYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
           "OKTASYNC_SECRET_KEY": generate_key(), "OKTASYNC_BROKER_URL": f"redis://:pw-hunter2@127.0.0.1:{port}/0"}
    exe = str(Path(sys.executable).with_name("oktasync"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120)

    assert cli("tenant", "add", "acme", "--domain", "acme.okta.com", "--api-token", SIM_TOKEN, "--paused").returncode == 0
    for _ in range(2):  # the second try is refused for the same reason, not "already has a run"
        got = cli("sync", "acme", "--wait")
        assert got.returncode == 1, (got.stdout, got.stderr[-2000:])
        assert "cannot reach the broker" in got.stderr and "Traceback" not in got.stderr, got.stderr[-2000:]
        assert "pw-hunter2" not in got.stderr + got.stdout
    listed = json.loads(cli("runs", "acme", "--json").stdout)
    assert [r["state"] for r in listed] == ["failed", "failed"] and "enqueue" in listed[0]["error"]


def test_sync_wait_without_a_worker_says_so(tmp_path, redis_url):
    """--wait on a run no worker takes: a hint about the worker, then exit 1 at --timeout."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.sim import SIM_TOKEN
    from worker.store.secrets import generate_key

    env = {**os.environ, "OKTASYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
           "OKTASYNC_SECRET_KEY": generate_key(), "OKTASYNC_BROKER_URL": redis_url}
    exe = str(Path(sys.executable).with_name("oktasync"))
    add = [exe, "tenant", "add", "acme", "--domain", "acme.okta.com", "--api-token", SIM_TOKEN, "--paused"]
    assert subprocess.run(add, env=env, capture_output=True, timeout=60).returncode == 0
    got = subprocess.run([exe, "sync", "acme", "--wait", "--timeout", "12"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert got.returncode == 1, (got.stdout, got.stderr)
    assert "still queued" in got.stderr and "no worker has taken the run" in got.stderr, got.stderr
    assert "celery -A worker worker -Q sync" in got.stderr


def test_sync_with_bad_settings_says_which_and_starts_nothing(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.sim import SIM_TOKEN
    from worker.store.secrets import generate_key

    env = {**os.environ, "OKTASYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
           "OKTASYNC_SECRET_KEY": generate_key()}
    exe = str(Path(sys.executable).with_name("oktasync"))
    add = [exe, "tenant", "add", "acme", "--domain", "acme.okta.com", "--api-token", SIM_TOKEN, "--paused"]
    assert subprocess.run(add, env=env, capture_output=True, timeout=60).returncode == 0
    got = subprocess.run([exe, "sync", "acme"], env={**env, "OKTASYNC_VISIBILITY_TIMEOUT": "10"},
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 1 and "OKTASYNC_VISIBILITY_TIMEOUT=10 is too small" in got.stderr, got.stderr
    assert "Traceback" not in got.stderr
    listed = subprocess.run([exe, "runs", "acme", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(listed.stdout) == []  # no queued run left behind


def test_tenant_update_changes_only_what_its_flags_name(tmp_path):
    """An exported OKTASYNC_API_TOKEN or option must not silently replace a tenant's on an
    unrelated `tenant update`; a token piped in with `--api-token -` replaces it (kept out of ps)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.sim import SIM_TOKEN
    from worker.store.db import make_engine, make_session_factory
    from worker.store.secrets import generate_key, load_keys
    from worker.store.tenants import get_tenant, tenant_credentials

    url = f"sqlite:///{tmp_path / 'store.db'}"
    key = generate_key()
    env = {**os.environ, "OKTASYNC_DATABASE_URL": url, "OKTASYNC_SECRET_KEY": key}
    exe = str(Path(sys.executable).with_name("oktasync"))

    def cli(*args: str, extra_env: dict | None = None, stdin: str | None = None) -> str:
        got = subprocess.run([exe, *args], env={**env, **(extra_env or {})}, input=stdin,
                             capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, (args, got.stdout, got.stderr)
        return got.stdout + got.stderr

    def stored() -> tuple[dict, dict]:
        engine = make_engine(url)
        with make_session_factory(engine)() as s:
            t = get_tenant(s, "acme")
            out = dict(tenant_credentials(t, load_keys(key))), dict(t.options)
        engine.dispose()
        return out

    cli("tenant", "add", "acme", "--domain", "acme.okta.com", "--api-token", SIM_TOKEN)
    exported = {"OKTASYNC_API_TOKEN": "00exported-other-token-0000000000000000000", "OKTASYNC_SKIP_APP_GROUPS": "1"}
    out = cli("tenant", "update", "acme", "--interval", "60", extra_env=exported)
    assert "credentials" not in out and "options" not in out, out
    creds, options = stored()
    assert creds["api_token"] == SIM_TOKEN and not options.get("skip_app_groups")
    rotated = "00rotated-token-from-stdin-00000000000000"
    out = cli("tenant", "update", "acme", "--api-token", "-", stdin=rotated + "\n")
    assert "credentials" in out and rotated not in out
    assert stored()[0]["api_token"] == rotated


def test_runs_shows_how_far_an_active_run_got(tmp_path):
    """`oktasync runs` on a run still crawling: its lists done/opened, pages and items (its counts
    exist only once finalized), in the table and in --json."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.sim import SIM_TOKEN
    from worker.store.db import make_engine, make_session_factory
    from worker.store.secrets import generate_key

    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**os.environ, "OKTASYNC_DATABASE_URL": url, "OKTASYNC_SECRET_KEY": generate_key()}
    exe = str(Path(sys.executable).with_name("oktasync"))

    def cli(*args: str) -> str:
        got = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, (args, got.stdout, got.stderr)
        return got.stdout

    cli("tenant", "add", "acme", "--domain", "acme.okta.com", "--api-token", SIM_TOKEN, "--paused")
    engine = make_engine(url)
    with make_session_factory(engine)() as s:  # a run part way: users list at its 2nd page, groups done
        run_id = runs.create_run(s, 1)
        runs.start_run(s, run_id)
        runs.add_streams(s, run_id, [("users", "", "{}", "u1"), ("groups", "", "{}", "g1")])
        s.commit()
        release_streams(s, 8, 8)
        s.commit()
        ids = dict(s.execute(sa.select(SyncStream.kind, SyncStream.id).where(SyncStream.run_id == run_id)).all())
        assert runs.advance(s, ids["users"], "u1", "u2", 200)
        assert runs.advance(s, ids["groups"], "g1", None, 12)
        s.commit()
    engine.dispose()
    [row] = json.loads(cli("runs", "acme", "--json"))
    assert row["state"] == "running" and row["counts"] == {}
    assert row["progress"] == {"lists": 2, "done": 1, "pages": 2, "items": 212}
    assert "lists 1/2, pages 2, items 212" in cli("runs", "acme")
