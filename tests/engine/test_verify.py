"""The drift check in embedded mode (`oktasync verify --file`), end to end with real oktasim: no
drift -> exit 0; a view changed behind oktasync's back, or an Okta change not synced yet -> exit 1
naming exactly the drifted ids; the view, cursor and access-change log stay as they were."""

from __future__ import annotations

import fcntl
import json
import subprocess
import time

import pytest
import sqlalchemy as sa

from tests.support.embedded import ORG, kill_once_staged, sync, view
from tests.support.paths import BIN
from tests.support.sim import SIM_TOKEN
from tests.support.simhttp import client
from tests.support.store import tamper_view
from worker.store.db import make_engine
from worker.store.tables import (
    AccessChange,
    EntitlementRow,
    GrantRow,
    ResourceRow,
    SyncCursor,
    SyncRun,
    Tenant,
)

OKTASYNC = str(BIN / "oktasync")


def verify(file, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OKTASYNC, "verify", "--file", str(file), "--concurrency", "4", *args],
                          capture_output=True, text=True, timeout=180)


def bookkeeping(file) -> dict:
    """What a verify must leave alone, and the rows it must not leave behind."""
    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        verify_runs = sa.select(SyncRun.id).where(SyncRun.kind == "verify")
        out = {"current_run_id": c.execute(sa.select(Tenant.current_run_id)).scalar(),
               "next_sync_at": c.execute(sa.select(Tenant.next_sync_at)).scalar(),
               "cursor": tuple(c.execute(sa.select(SyncCursor)).one()),
               "access_changes": c.execute(sa.select(sa.func.count()).select_from(AccessChange)).scalar(),
               "scratch_rows": sum(c.execute(sa.select(sa.func.count()).select_from(t).where(
                   t.run_id.in_(verify_runs))).scalar() for t in (GrantRow, EntitlementRow, ResourceRow))}
    engine.dispose()
    return out


def drift_diff(file, full_file) -> tuple[set, set]:
    """(missing, extra) grant ids of the file's view against a full sync of the same org."""
    mine = {g[0] for g in view(file)[2]}
    okta = {g[0] for g in view(full_file)[2]}
    return okta - mine, mine - okta


def changed_ids(file, full_file) -> list[set]:
    """Per table (resources, entitlements, grants): ids in both views whose rows differ."""
    out = []
    for mine, okta in zip(view(file), view(full_file), strict=True):
        by_id = {row[0]: row for row in okta}
        out.append({row[0] for row in mine if row[0] in by_id and by_id[row[0]] != row})
    return out


def test_verify_no_drift_then_a_view_changed_behind_its_back(oktasim, tmp_path):
    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    clean = verify(file)
    assert clean.returncode == 0, (clean.stdout, clean.stderr)
    assert "no drift" in clean.stdout and "grants:       0 missing, 0 extra" in clean.stdout
    before_tamper = bookkeeping(file)
    assert before_tamper["scratch_rows"] == 0

    engine = make_engine(f"sqlite:///{file}")
    tampered = tamper_view(engine)
    engine.dispose()
    before, kept = view(file), bookkeeping(file)
    got = verify(file, "--json")
    assert got.returncode == 1, (got.stdout, got.stderr)
    report = json.loads(got.stdout)
    assert report["drift"] is True and report["warnings"] == []
    assert report["grants"] == {"missing": 1, "extra": 1, "changed": 0, "missing_ids": [tampered["removed"]],
                                "extra_ids": [tampered["added"]], "changed_ids": []}
    for table in ("entitlements", "resources"):
        assert (report[table]["missing"], report[table]["extra"], report[table]["changed"]) == (0, 0, 0), report[table]
    assert report["compared"]["grants"] == len(before[2])  # the org's grants, all of them
    # The verify changed nothing a reader or the next sync sees, and left no scratch rows.
    assert view(file) == before
    assert bookkeeping(file) == kept == {**before_tamper, "scratch_rows": 0}
    text = verify(file)
    assert text.returncode == 1
    assert f"  missing  {tampered['removed']}" in text.stdout and f"  extra    {tampered['added']}" in text.stdout
    # The next sync is still incremental (the cursor was left alone), and a full one repairs the
    # view, recording the two access changes a verify must not record.
    assert sync(sim, file).kind == "incremental"
    repaired = sync(sim, file, full=True)
    assert (repaired.counts["added"], repaired.counts["removed"]) == (1, 1)
    assert bookkeeping(file)["access_changes"] == kept["access_changes"] + 2
    assert verify(file).returncode == 0


def test_verify_shows_an_okta_change_not_synced_yet(oktasim, tmp_path):
    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    sim.admin.post("/__sim/churn", json={"changes": 10, "seed": 5}).raise_for_status()
    st = sim.state()  # and two changes whose drift is known, through Okta's API
    group = next(g for g in st["groups"] if g["type"] == "OKTA_GROUP" and g["members"])
    outsider = next(u["id"] for u in st["users"] if u["id"] not in group["members"] and u["status"] == "ACTIVE")
    okta = client(sim)
    okta.put(f"/api/v1/groups/{group['id']}/users/{outsider}").raise_for_status()
    okta.delete(f"/api/v1/groups/{group['id']}/users/{group['members'][0]}").raise_for_status()
    before = view(file)
    got = verify(file, "--json")
    assert got.returncode == 1, (got.stdout, got.stderr)
    report = json.loads(got.stdout)
    # Exactly what a full sync of the org now differs from the view by.
    sync(sim, tmp_path / "full.db", full=True)
    missing, extra = drift_diff(file, tmp_path / "full.db")
    assert (set(report["grants"]["missing_ids"]), set(report["grants"]["extra_ids"])) == (missing, extra)
    assert (report["grants"]["missing"], report["grants"]["extra"]) == (len(missing), len(extra))
    assert f"group:{group['id']}:member:user:{outsider}" in missing
    assert f"group:{group['id']}:member:user:{group['members'][0]}" in extra
    # Rows in both whose contents differ: exactly those (the churn's renames, edits, statuses, counts).
    res, ents, grants = changed_ids(file, tmp_path / "full.db")
    for table, ids in (("resources", res), ("entitlements", ents), ("grants", grants)):
        assert (set(report[table]["changed_ids"]), report[table]["changed"]) == (ids, len(ids)), table
    assert res  # the churn edited profiles, statuses or counts that ids alone would not show
    assert view(file) == before
    # An incremental sync catches up: no drift after it.
    assert sync(sim, file).kind == "incremental"
    assert verify(file).returncode == 0


def test_verify_reports_a_group_renamed_in_okta_as_changed(oktasim, tmp_path):
    """Ids alone miss it: the group, its entitlement and every grant stay; only their contents differ."""
    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    group = next(g for g in sim.state()["groups"] if g["type"] == "OKTA_GROUP")
    okta = client(sim)
    okta.put(f"/api/v1/groups/{group['id']}", json={"profile": {**group["profile"], "name": "Renamed Behind"}}
             ).raise_for_status()
    got = verify(file, "--json")
    assert got.returncode == 1, (got.stdout, got.stderr)
    report = json.loads(got.stdout)
    assert report["drift"] is True
    assert (report["resources"]["changed"], report["resources"]["changed_ids"]) == (1, [f"group:{group['id']}"])
    assert report["entitlements"]["changed_ids"] == [f"group:{group['id']}:member"]
    for table in ("grants", "entitlements", "resources"):
        assert (report[table]["missing"], report[table]["extra"]) == (0, 0), table
    assert report["grants"]["changed"] == 0
    text = verify(file)
    assert text.returncode == 1 and f"  changed  group:{group['id']}\n" in text.stdout, text.stdout
    assert "resources:    0 missing, 0 extra, 1 changed" in text.stdout
    assert sync(sim, file).kind == "incremental"  # the rename's group is re-listed: no drift after it
    assert verify(file).returncode == 0


def test_verify_refuses_what_it_cannot_check(oktasim, tmp_path):
    sim = oktasim(ORG)
    missing = verify(tmp_path / "none.db")
    assert missing.returncode == 2 and "does not exist" in missing.stderr, missing.stderr
    file = tmp_path / "a.db"
    sync(sim, file)
    other = verify(file, "--domain", "other.okta.com")
    assert other.returncode == 2 and "not other.okta.com" in other.stderr, other.stderr
    with open(f"{file}.lock", "w") as held:  # another oktasync syncing into the file
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = verify(file)
    assert busy.returncode == 2 and "is syncing into" in busy.stderr, busy.stderr
    both = subprocess.run([OKTASYNC, "verify", "acme", "--file", str(file)], capture_output=True, text=True)
    assert both.returncode == 2 and "not both" in both.stderr
    bad_token = verify(file, "--api-token", "00bad-token-00000000000000000000000000000")
    assert bad_token.returncode == 2 and "failed" in bad_token.stderr and "credentials" in bad_token.stderr


def test_a_killed_verify_leaves_the_view_and_the_next_run_goes_on(oktasim, tmp_path):
    sim = oktasim([*ORG, "--latency-ms", "300"])
    file = tmp_path / "a.db"
    sync(sim, file)
    before, kept = view(file), bookkeeping(file)
    proc = subprocess.Popen([OKTASYNC, "verify", "--file", str(file), "--concurrency", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staged = kill_once_staged(proc, file, "verify")
    assert staged, "the verify never wrote scratch rows"
    assert view(file) == before
    again = verify(file)  # discards the dead run, then checks
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert bookkeeping(file) == kept


@pytest.mark.slow  # a minute of CLI runs against real workers
def test_verify_a_tenant_distributed(cluster, oktasim):
    """`oktasync verify NAME` on real workers and PostgreSQL; a verify run created as Beat's claim
    creates it (a row of kind verify, its start enqueued) is handled alike; the drift metric."""
    from tests.support.metrics import parse
    from tests.support.sim import SMALL
    from worker.engine import steps
    from worker.observability.metrics import registry_for, render
    from worker.store import runs

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([OKTASYNC, *args], env=cluster.env, capture_output=True, text=True, timeout=180)

    sim = oktasim([*SMALL, "--seed", "31"])
    assert cli("tenant", "add", "acme", "--domain", sim.url, "--api-token", SIM_TOKEN, "--paused").returncode == 0
    first = cli("verify", "acme")
    assert first.returncode == 2 and "no complete sync to compare with" in first.stderr, first.stderr
    cluster.worker("w1")
    assert cli("sync", "acme", "--wait", "--timeout", "150").returncode == 0
    with cluster.sessions() as s:
        tenant = s.execute(sa.select(Tenant).where(Tenant.name == "acme")).scalar_one()
        tid, view_run = tenant.id, tenant.current_run_id
    clean = cli("verify", "acme", "--timeout", "150")
    assert clean.returncode == 0 and "verify of acme" in clean.stdout and "no drift" in clean.stdout, clean.stderr

    tampered = tamper_view(cluster.engine, tid)
    before = cluster.picture(tid)
    got = cli("verify", "acme", "--json", "--timeout", "150")
    assert got.returncode == 1, (got.stdout, got.stderr)
    report = json.loads(got.stdout)
    assert (report["tenant"], report["view_run_id"]) == ("acme", view_run)
    assert report["grants"] == {"missing": 1, "extra": 1, "changed": 0, "missing_ids": [tampered["removed"]],
                                "extra_ids": [tampered["added"]], "changed_ids": []}
    assert cluster.picture(tid) == before

    # Beat's way: a sync_runs row of kind verify, its start enqueued.
    with cluster.sessions() as s:
        runs.begin_write(s)
        beat_run = runs.create_run(s, tid, "verify")
        s.commit()
    cluster.sender().enqueue(steps.START, [beat_run])
    done = cluster.wait_state(beat_run, ("succeeded", "failed"), timeout=120)
    assert done.state == "succeeded", done.error
    assert done.counts["drift"]["grants"] == {k: report["grants"][k] for k in report["grants"]}

    # Another run active: a clear refusal, exit 2.
    with cluster.sessions() as s:
        runs.begin_write(s)
        other = runs.create_run(s, tid, "full")  # queued, never enqueued
        s.commit()
    busy = cli("verify", "acme")
    assert busy.returncode == 2, (busy.stdout, busy.stderr)
    assert f"tenant acme has a full run in progress (run {other}, queued)" in busy.stderr
    with cluster.sessions() as s:
        runs.begin_write(s)
        runs.fail(s, other, "test: cleared")
        s.commit()

    # An Okta change not synced yet shows as missing; the current view is still the first sync's.
    st = sim.state()
    group = next(g for g in st["groups"] if g["type"] == "OKTA_GROUP")
    outsider = next(u["id"] for u in st["users"] if u["id"] not in group["members"] and u["status"] == "ACTIVE")
    client(sim).put(f"/api/v1/groups/{group['id']}/users/{outsider}").raise_for_status()
    changed = json.loads(cli("verify", "acme", "--json", "--timeout", "150").stdout)
    assert f"group:{group['id']}:member:user:{outsider}" in changed["grants"]["missing_ids"]
    assert tampered["removed"] in changed["grants"]["missing_ids"]
    assert changed["grants"]["extra_ids"] == [tampered["added"]]
    with cluster.sessions() as s:
        assert s.get(Tenant, tid).current_run_id == view_run
        assert s.execute(sa.select(sa.func.count()).select_from(AccessChange)).scalar() == 0

    listed = cli("runs", "acme")
    assert f"drift: grants {changed['grants']['missing']} missing, 1 extra" in listed.stdout, listed.stdout
    kinds = [r["kind"] for r in json.loads(cli("runs", "acme", "--json").stdout)]
    assert kinds == ["verify", "full", "verify", "verify", "verify", "full"], kinds
    metrics = parse(render(registry_for(cluster.db_url, cluster.env["OKTASYNC_BROKER_URL"])))
    assert metrics[("oktasync_drift_grants", (("direction", "missing"), ("tenant", "acme")))] == \
        changed["grants"]["missing"]
    assert metrics[("oktasync_drift_grants", (("direction", "extra"), ("tenant", "acme")))] == 1
    assert metrics[("oktasync_drift_grants", (("direction", "changed"), ("tenant", "acme")))] == 0
    # The membership moved the group's users_count: a changed resource.
    assert metrics[("oktasync_drift_objects", (("direction", "changed"), ("kind", "resources"),
                                               ("tenant", "acme")))] == changed["resources"]["changed"] > 0
    assert metrics[("oktasync_last_verify_timestamp_seconds", (("tenant", "acme"),))] > time.time() - 300

    # A full sync repairs the view: no drift, and the metric says so.
    assert cli("sync", "acme", "--full", "--wait", "--timeout", "150").returncode == 0
    assert cli("verify", "acme", "--timeout", "150").returncode == 0
    metrics = parse(render(registry_for(cluster.db_url, cluster.env["OKTASYNC_BROKER_URL"])))
    assert metrics[("oktasync_drift_grants", (("direction", "missing"), ("tenant", "acme")))] == 0
