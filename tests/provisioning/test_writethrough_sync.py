"""Write-through against a real synced view: after provisioning, the tenant's current view must be
exactly what the next full sync of the org produces (embedded sync on SQLite, real oktasim)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from tests.support.provisioning import SUPER, Recorder, SyncedFile, sim_args
from worker.connector import SyncOptions
from worker.engine.embedded import run_embedded
from worker.provisioning import runner, service
from worker.store.db import make_engine, make_session_factory
from worker.store.secrets import load_keys, local_key_file
from worker.store.tables import GrantRow, ResourceRow, Tenant


def view(sessions) -> tuple[set[str], set[str]]:
    with sessions() as s:
        run = s.scalar(sa.select(Tenant.current_run_id))
        grants = set(s.scalars(sa.select(GrantRow.id).where(GrantRow.run_id == run)))
        resources = set(s.scalars(sa.select(ResourceRow.id).where(ResourceRow.run_id == run)))
    return grants, resources


def test_write_through_matches_the_next_sync(oktasim, tmp_path):
    sim = oktasim(sim_args("--groups", "10", "--apps", "6"))
    db = tmp_path / "sync.db"
    options = SyncOptions(sync_custom_roles=True)
    first = run_embedded(sim.url, {"api_token": SUPER}, options, file=str(db))
    assert first.state == "succeeded", first.error
    sessions = make_session_factory(make_engine(f"sqlite:///{db}"))
    keys = load_keys(local_key_file(str(db) + ".key"))
    client_for = runner.default_client_factory(keys=keys)
    with sessions() as s:
        tenant = s.scalar(sa.select(Tenant.name))

    def run(kind: str, payload: dict) -> None:
        with sessions() as s:
            ref = service.record_and_publish(s, Recorder(), tenant, kind, payload)
        for _ in range(20):
            step = runner.run_request(sessions, ref.id, client_for, runner.RetryPolicy(2, 0.05, 0.2))
            if step.done:
                break
            time.sleep(min(step.countdown, 0.3))
        assert step.state == "succeeded", (kind, payload, step)

    st = sim.state()
    active = [u["id"] for u in st["users"] if u["status"] == "ACTIVE"]
    okta_groups = [g for g in st["groups"] if g["type"] == "OKTA_GROUP"]
    with_app = next(g for g in okta_groups if any(g["id"] in a["groups"] for a in st["apps"]))
    g2, g3 = [g for g in okta_groups if g["id"] != with_app["id"]][:2]
    newcomer = next(u for u in active if u not in with_app["members"])
    app = next(a for a in st["apps"] if a["status"] == "ACTIVE" and g2["id"] not in a["groups"]
               and a["label"] != "Okta Admin Console")
    rs = st["resource_sets"][0]
    role = rs["bindings"][0]["role"]
    leaver = next(m for m in g3["members"] if m in active)

    run("grant", {"entitlement": f"group:{with_app['id']}:member", "principal": f"user:{newcomer}"})
    run("grant", {"entitlement": f"app:{app['id']}:access", "principal": f"group:{g2['id']}"})
    run("grant", {"entitlement": "role:REPORT_ADMIN:assigned", "principal": f"group:{g2['id']}"})
    run("grant", {"entitlement": f"resourceset-binding:{rs['id']}:{role}:member", "principal": f"user:{newcomer}"})
    run("revoke", {"entitlement": f"group:{g3['id']}:member", "principal": f"user:{leaver}"})
    run("action", {"action": "create", "args": {"name": "Write Through", "userMembers": active[:3]}})
    run("action", {"action": "modify_group", "args": {"group_id": g2["id"], "description": "changed"}})
    run("delete", {"resource_type": "group", "resource_id": g3["id"]})
    run("action", {"action": "disable_user", "args": {"user_id": active[5]}})
    bound = next((t, i) for t, i in ((m["type"], m["id"]) for m in rs["bindings"][0]["members"]))
    run("revoke", {"entitlement": f"resourceset-binding:{rs['id']}:{role}:member", "principal": f"{bound[0]}:{bound[1]}"})
    old_app = next(a for a in st["apps"] if with_app["id"] in a["groups"])
    run("revoke", {"entitlement": f"app:{old_app['id']}:access", "principal": f"group:{with_app['id']}"})

    written = view(sessions)
    second = run_embedded(sim.url, {"api_token": SUPER}, options, file=str(db))
    assert second.state == "succeeded", second.error
    synced = view(sessions)
    assert written[1] == synced[1]
    assert written[0] - synced[0] == set() and synced[0] - written[0] == set()
    assert f"app:{app['id']}:access:group:{g2['id']}" in synced[0]
    assert f"group:{g3['id']}" not in synced[1]


def test_account_actions_write_through_with_the_tenant_options(oktasim, tmp_path):
    """skip_secondary_emails and the e-mail domain filter shape what an account action writes through
    (the second email left out; a user the filter leaves out removed with its grants), as the next sync."""
    sim = oktasim(sim_args("--groups", "8", "--apps", "6"))
    domains = ("example.com", "corp.example.com")
    options = SyncOptions(skip_secondary_emails=True, filter_email_domains=domains)
    synced = SyncedFile(sim.url, str(tmp_path / "sync.db"), options)
    st = sim.state()
    kept = [u for u in st["users"] if u["status"] == "ACTIVE" and f"user:{u['id']}" in synced.resources()]
    with_second, leaving, suspended = kept[0]["id"], kept[1]["id"], kept[2]["id"]
    synced.run("action", {"action": "update_user", "args": {"user_id": with_second, "secondEmail": "second@corp.example.com",
                                                              "title": "Auditor"}})
    synced.run("action", {"action": "update_user", "args": {"user_id": leaving, "email": "gone@elsewhere.test",
                                                              "login": "gone@elsewhere.test",
                                                              "secondEmail": "gone2@elsewhere.test"}})
    synced.run("action", {"action": "disable_user", "args": {"user_id": suspended}})
    synced.run("action", {"action": "create_account", "args": {
        "email": "new.person@example.com", "first_name": "New", "last_name": "Person",
        "additionalAttributes": {"secondEmail": "np@elsewhere.test"}}})
    resources, grants = synced.resources(), synced.grants()
    profile = resources[f"user:{with_second}"]
    assert profile["okta_profile"]["secondEmail"] is None and profile["okta_profile"]["title"] == "Auditor"
    assert [e["address"] for e in profile["emails"] if not e["primary"]] == []
    assert f"user:{leaving}" not in resources and not any(g.endswith(f":user:{leaving}") for g in grants)
    synced.sync()
    after = synced.resources()
    assert set(resources) == set(after)
    assert not any(g.endswith(f":user:{leaving}") for g in synced.grants())

    # What the options shape (the whole view is compared in test_writethrough_equals_sync.py).
    def mapped(profile: dict) -> tuple:
        return profile["emails"], profile["okta_profile"], profile["status"], profile["okta_status"]
    for rid in (r for r in after if r.startswith("user:")):
        assert mapped(resources[rid]) == mapped(after[rid]), rid


def test_a_written_through_grant_is_replaced_by_the_next_incremental_relist(oktasim, tmp_path):
    """Write-through stores a grant under its list's container: when Okta undoes the change before
    the next run, the incremental run's re-list of that list removes it, as a full sync would."""
    sim = oktasim(sim_args("--groups", "10", "--apps", "6"))
    synced = SyncedFile(sim.url, str(tmp_path / "sync.db"), SyncOptions())
    st = sim.state()
    group = next(g for g in st["groups"] if g["type"] == "OKTA_GROUP")
    uid = next(u["id"] for u in st["users"] if u["status"] == "ACTIVE" and u["id"] not in group["members"])
    grant = f"group:{group['id']}:member:user:{uid}"
    synced.run("grant", {"entitlement": f"group:{group['id']}:member", "principal": f"user:{uid}"})
    assert grant in synced.grants()
    # Another admin removes the user again: the log names the group, whose members are re-listed.
    sim.admin.delete(f"/api/v1/groups/{group['id']}/users/{uid}",
                     headers={"Authorization": f"SSWS {SUPER}"}).raise_for_status()
    result = synced.sync()
    assert result.kind == "incremental", result.reason
    assert grant not in synced.grants()
