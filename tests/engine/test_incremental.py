"""Incremental sync end to end (embedded mode, real oktasim): after a change, an incremental run
into the file equals a full sync of the same org into a fresh file; and the fallbacks to full."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tests.support.embedded import OPTIONS, ORG, kill_once_staged, sync, view
from tests.support.sim import SIM_TOKEN
from worker.connector import SyncOptions
from worker.store.db import make_engine
from worker.store.tables import SyncRun, SyncStream


def run_plan(file, run_id: int) -> dict:
    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        plan = c.execute(sa.select(SyncRun.plan).where(SyncRun.id == run_id)).scalar()
    engine.dispose()
    return plan


def assert_equals_full(sim, file, tmp_path, name="full.db", options=OPTIONS):
    full = sync(sim, tmp_path / name, options=options)
    assert full.kind == "full"
    mine, want = view(file), view(tmp_path / name)
    for got, exp, what in zip(mine, want, ("resources", "entitlements", "grants"), strict=True):
        assert got == exp, f"{what}: missing {sorted(exp - got)[:5]}, extra {sorted(got - exp)[:5]}"


def churn(sim, n: int, seed: int) -> list[dict]:
    return sim.admin.post("/__sim/churn", json={"changes": n, "seed": seed}).raise_for_status().json()["changes"]


def test_first_sync_is_full_then_incremental_with_no_change(oktasim, tmp_path):
    sim = oktasim(ORG)
    first = sync(sim, tmp_path / "a.db")
    assert (first.kind, first.reason) == ("full", "no cursor: the tenant has no complete sync with a change cursor yet")
    second = sync(sim, tmp_path / "a.db")
    assert second.kind == "incremental"
    assert second.counts["requests"] < first.counts["requests"] / 3
    assert (second.counts.get("added"), second.counts.get("removed")) == (0, 0)
    forced = sync(sim, tmp_path / "a.db", full=True)
    assert (forced.kind, forced.reason) == ("full", "asked for a full sync")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_incremental_after_churn_equals_a_full_sync(oktasim, tmp_path, seed):
    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    churn(sim, 15, seed)
    result = sync(sim, file)
    assert result.kind == "incremental", result.reason
    assert_equals_full(sim, file, tmp_path)


def test_a_user_whose_email_leaves_or_enters_the_domain_filter(oktasim, tmp_path):
    """filter_email_domains: a user whose e-mail leaves the filter is removed with all its grants by
    the incremental run; one whose e-mail enters it makes the run a full sync (its earlier grants
    were never kept), and says why. Each time the view equals a full sync's."""
    sim = oktasim(ORG)
    options = SyncOptions(sync_custom_roles=True, filter_email_domains=("example.com",))
    file = tmp_path / "a.db"
    sync(sim, file, options=options)
    st = sim.state()
    in_groups = {m for g in st["groups"] if g["type"] == "OKTA_GROUP" for m in g["members"]}
    inside, outside = ([u["id"] for u in st["users"] if u["status"] == "ACTIVE" and u["id"] in in_groups
                        and (u["profile"]["email"].split("@")[1] == "example.com") == want][0] for want in (True, False))

    def move(uid: str, domain: str) -> None:
        user = next(u for u in st["users"] if u["id"] == uid)
        local = user["profile"]["login"].split("@")[0]
        profile = {"email": f"{local}@{domain}", "login": f"{local}@{domain}", "secondEmail": None}
        sim.admin.post(f"/api/v1/users/{uid}", json={"profile": profile},
                       headers={"Authorization": f"SSWS {SIM_TOKEN}"}).raise_for_status()

    move(inside, "elsewhere.test")
    left = sync(sim, file, options=options)
    assert left.kind == "incremental", left.reason
    assert_equals_full(sim, file, tmp_path, name="full1.db", options=options)
    move(outside, "example.com")
    entered = sync(sim, file, options=options)
    assert entered.kind == "full" and "entered filter_email_domains" in entered.reason, entered.reason
    assert_equals_full(sim, file, tmp_path, name="full2.db", options=options)
    assert sync(sim, file, options=options).kind == "incremental"


def test_falls_back_to_full_and_says_why(oktasim, tmp_path):
    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    # options changed since the cursor was taken
    changed = sync(sim, file, options=SyncOptions(sync_custom_roles=True))
    assert (changed.kind, changed.reason) == ("full", "the tenant's options changed since the last sync")
    assert sync(sim, file, options=SyncOptions(sync_custom_roles=True)).kind == "incremental"
    # cursor lost
    engine = make_engine(f"sqlite:///{file}")
    with engine.begin() as c:
        c.execute(sa.text("DELETE FROM sync_cursors"))
    engine.dispose()
    lost = sync(sim, file, options=SyncOptions(sync_custom_roles=True))
    assert lost.kind == "full" and lost.reason.startswith("no cursor")
    # cursor older than the log keeps: 91 days later
    sim.admin.post("/__sim/clock", json={"advance_seconds": 91 * 86400}).raise_for_status()
    churn(sim, 2, 7)
    expired = sync(sim, file, options=SyncOptions(sync_custom_roles=True))
    assert expired.kind == "full" and "older than the System Log keeps" in expired.reason, expired.reason


def test_a_fingerprint_written_before_defaults_were_left_out_needs_no_full_sync(oktasim, tmp_path):
    """After the upgrade that left options at their default out of the fingerprint, a cursor taken
    before (every option hashed, skip_secondary_emails included or not yet there) still starts an
    incremental run; a changed option still forces a full one."""
    import hashlib
    import json

    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    full_hash = hashlib.sha256(json.dumps(OPTIONS.to_dict(), sort_keys=True, separators=(",", ":")).encode())
    engine = make_engine(f"sqlite:///{file}")
    with engine.begin() as c:
        c.execute(sa.text("UPDATE sync_cursors SET options_fingerprint = :f"), {"f": full_hash.hexdigest()[:16]})
    engine.dispose()
    assert sync(sim, file).kind == "incremental"
    changed = sync(sim, file, options=SyncOptions(sync_custom_roles=True, sync_secrets=True, skip_app_groups=True))
    assert changed.kind == "full"


def test_an_interrupted_incremental_run_leaves_the_previous_view(oktasim, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    sim = oktasim([*ORG, "--latency-ms", "300"])
    file = tmp_path / "a.db"
    sync(sim, file)
    churn(sim, 15, 3)
    before = view(file)
    cli = str(Path(sys.executable).with_name("oktasync"))
    proc = subprocess.Popen([cli, "--domain", sim.url, "--file", str(file), "--concurrency", "2",
                             "--sync-custom-roles", "--sync-secrets"],
                            env={**os.environ, "OKTASYNC_API_TOKEN": SIM_TOKEN}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    staged = kill_once_staged(proc, file, "incremental")
    assert staged, "the run never staged rows"
    assert view(file) == before
    after = sync(sim, file)  # the next start discards the dead run and syncs on
    assert after.kind == "incremental"
    assert_equals_full(sim, file, tmp_path)


def test_random_churn_sequences_with_late_events_stay_equal_to_a_full_sync(oktasim, tmp_path):
    """Property: over rounds of random churn (events readable up to 1.5 s late, read again in the
    overlap window: duplicates), every incremental run equals a full sync of the org, and every
    kind of change churn makes was exercised."""
    sim = oktasim([*ORG, "--seed", "33", "--log-delay-ms", "1500"])
    file = tmp_path / "a.db"
    sync(sim, file)
    kinds: set[str] = set()
    for round_no in range(8):
        kinds |= {c["kind"] for c in churn(sim, 12, 100 + round_no)}
        time.sleep(1.6)  # every event of the round is in the log (no reader can see one sooner)
        result = sync(sim, file)
        assert result.kind == "incremental", result.reason
        assert run_plan(file, result.run_id)["log_from"] == "after"  # resumed from the saved link
        assert_equals_full(sim, file, tmp_path, name=f"full{round_no}.db")
    assert len(kinds) >= 15, sorted(kinds)


def test_service_app_role_changes_stay_equal_to_a_full_sync(oktasim, tmp_path):
    """A service app's roles are re-listed every run (no event is relied on): granted, revoked, a custom
    role through a binding (of an inactive app, then activated: its membership shows again), and an app
    deactivated (its grants pruned while inactive)."""
    from tests.support.simhttp import client

    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    services = {a["id"]: a["status"] for a in sim.state()["apps"] if a["application_type"] == "service"}
    assert set(services.values()) == {"ACTIVE", "INACTIVE"}, "the seed should give one service app of each"
    active = next(a for a, status in services.items() if status == "ACTIVE")
    inactive = next(a for a, status in services.items() if status == "INACTIVE")
    st = sim.state()
    rs, b = next((rs, b) for rs in st["resource_sets"] for b in rs["bindings"]
                 if {"type": "client", "id": inactive} not in b["members"])
    with client(sim) as c:
        base = f"/oauth2/v1/clients/{active}/roles"
        assert c.post(base, json={"type": "API_ACCESS_MANAGEMENT_ADMIN"}).status_code == 200
        seeded = next(r for r in c.get(base).json() if r["type"] == "APP_ADMIN")
        assert c.delete(f"{base}/{seeded['id']}").status_code == 204
        assert c.patch(f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{b['role']}/members",
                       json={"additions": [f"{sim.url}/oauth2/v1/clients/{inactive}"]}).status_code == 200
    result = sync(sim, file)
    assert result.kind == "incremental", result.reason
    assert_equals_full(sim, file, tmp_path)
    with client(sim) as c:   # no role changes now: only the apps' status
        assert c.post(f"/api/v1/apps/{inactive}/lifecycle/activate", headers={"Content-Length": "0"}).status_code == 200
        assert c.post(f"/api/v1/apps/{active}/lifecycle/deactivate", headers={"Content-Length": "0"}).status_code == 200
    assert sync(sim, file).kind == "incremental"
    assert_equals_full(sim, file, tmp_path, name="full2.db")
    grants = {g[0] for g in view(file)[2]}
    assert not any(g.endswith(f":app:{active}") for g in grants)     # an inactive app's roles: pruned
    assert f"role:READ_ONLY_ADMIN:assigned:app:{inactive}" in grants   # the activated one's: shown
    assert f"resourceset-binding:{rs['id']}:{b['role']}:member:app:{inactive}" in grants


def run_streams(file, run_id: int) -> list[tuple[str, str, int]]:
    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        rows = [tuple(r) for r in c.execute(sa.select(SyncStream.kind, SyncStream.parent, SyncStream.pages).where(
            SyncStream.run_id == run_id))]
    engine.dispose()
    return rows


def test_a_user_status_change_rereads_only_its_app_user_rows(oktasim, tmp_path):
    """A suspended user's app-user rows take the status Okta now shows (INACTIVE) as in a full
    sync, read one request per app (GET /apps/{id}/users/{uid}), no app's user list re-read."""
    from tests.support.simhttp import client

    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    st = sim.state()
    active = {u["id"] for u in st["users"] if u["status"] == "ACTIVE"}
    apps = [a for a in st["apps"] if a["status"] == "ACTIVE"]
    uid = next(u["id"] for a in apps for u in a["users"] if u["scope"] == "USER" and u["id"] in active)
    held = sorted(a["id"] for a in apps if any(u["id"] == uid for u in a["users"]))
    with client(sim) as c:
        assert c.post(f"/api/v1/users/{uid}/lifecycle/suspend").status_code == 200
    result = sync(sim, file)
    assert result.kind == "incremental", result.reason
    streams = run_streams(file, result.run_id)
    rows = sorted(parent for kind, parent, _pages in streams if kind == "app-user")
    assert rows == [f"app-users:app:{aid}@user:{uid}" for aid in held]
    assert all(pages == 1 for kind, _p, pages in streams if kind == "app-user")
    assert not [s for s in streams if s[0] == "app-users"], "an app's whole user list was re-read"
    mine = {g[0]: g[3] for g in view(file)[2]}
    assert all("'INACTIVE'" in mine[f"app:{aid}:access:user:{uid}"] for aid in held)
    assert_equals_full(sim, file, tmp_path)


def test_a_group_read_again_for_its_app_count_keeps_its_members_unread(oktasim, tmp_path):
    """A group assigned to an app: its app count changes, its timestamps do not. The run reads the
    group again (the count) but not its members, whose lastMembershipUpdated is the one the view
    stored (reference §7); after a member joins as well, they are re-listed. Both equal a full sync."""
    from tests.support.simhttp import client

    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    st = sim.state()
    app = next(a for a in st["apps"] if a["status"] == "ACTIVE")
    gid = next(g["id"] for g in st["groups"] if g["type"] == "OKTA_GROUP" and g["members"]
               and g["id"] not in app["groups"])
    members = f"group-members:group:{gid}"
    with client(sim) as c:
        assert c.put(f"/api/v1/apps/{app['id']}/groups/{gid}", json={}).status_code == 200
    result = sync(sim, file)
    assert result.kind == "incremental", result.reason
    assert run_plan(file, result.run_id)["validated"][0]["container"] == members
    streams = {(kind, parent) for kind, parent, _pages in run_streams(file, result.run_id)}
    assert ("groups", "") in streams and ("group-members", f"group:{gid}") not in streams
    assert_equals_full(sim, file, tmp_path)
    outsider = next(u["id"] for u in st["users"] if u["status"] == "ACTIVE"
                    and u["id"] not in next(g for g in st["groups"] if g["id"] == gid)["members"])
    with client(sim) as c:
        assert c.put(f"/api/v1/groups/{gid}/users/{outsider}").status_code == 204
        assert c.delete(f"/api/v1/apps/{app['id']}/groups/{gid}").status_code == 204
    again = sync(sim, file)
    assert ("group-members", f"group:{gid}") in {(k, p) for k, p, _n in run_streams(file, again.run_id)}
    assert_equals_full(sim, file, tmp_path, name="full2.db")
