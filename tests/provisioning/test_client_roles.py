"""Admin roles of OAuth service apps provisioned like a user's or group's: a standard role (with
targets) and a custom role through a resource-set binding granted to and revoked from `app:<id>`,
a clear refusal for an app that is no service app, and the write-through equal to the next sync."""

from __future__ import annotations

from tests.support.provisioning import SyncedFile, sim_args
from worker.connector import SyncOptions


def service_apps(state: dict) -> list[str]:
    found = [a["id"] for a in state["apps"] if a["application_type"] == "service" and a["status"] == "ACTIVE"]
    assert found, "the generated org has no active service app"
    return found


def client_roles(state: dict, cid: str) -> dict[str, dict]:
    return {r["type"] if r["type"] != "CUSTOM" else r["role"]: r for r in state["role_assignments"]
            if (r["principal_type"], r["principal_id"]) == ("client", cid)}


def test_standard_role_with_targets_granted_and_revoked(sim, store, run_inline):
    st = sim.state()
    aid = service_apps(st)[0]
    gid = next(g["id"] for g in st["groups"] if g["type"] == "OKTA_GROUP")
    ent, principal = "role:HELP_DESK_ADMIN:assigned", f"app:{aid}"
    row = run_inline("grant", {"entitlement": ent, "principal": principal, "targets": {"groups": [gid]}})
    assert row.state == "succeeded", row.error
    assert client_roles(sim.state(), aid)["HELP_DESK_ADMIN"]["targets"]["groups"] == [gid]
    assert f"{ent}:{principal}" in store.view()
    again = run_inline("grant", {"entitlement": ent, "principal": principal})
    assert again.state == "succeeded" and again.result["message"].startswith("already granted")
    row = run_inline("revoke", {"entitlement": ent, "principal": principal})
    assert row.state == "succeeded" and row.result["message"].startswith("revoked"), row.error
    assert "HELP_DESK_ADMIN" not in client_roles(sim.state(), aid)
    assert f"{ent}:{principal}" not in store.view()


def test_custom_role_through_a_binding(sim, store, run_inline):
    st = sim.state()
    aid = service_apps(st)[0]
    rs, b = next((rs, b) for rs in st["resource_sets"] for b in rs["bindings"]
                 if {"type": "client", "id": aid} not in b["members"])
    ent = f"resourceset-binding:{rs['id']}:{b['role']}:member"
    row = run_inline("grant", {"entitlement": ent, "principal": f"app:{aid}"})
    assert row.state == "succeeded", row.error
    assert {"type": "client", "id": aid} in next(x for x in next(
        s for s in sim.state()["resource_sets"] if s["id"] == rs["id"])["bindings"] if x["role"] == b["role"])["members"]
    assert f"{ent}:app:{aid}" in store.view()
    row = run_inline("revoke", {"entitlement": ent, "principal": f"app:{aid}"})
    assert row.state == "succeeded", row.error
    assert b["role"] not in client_roles(sim.state(), aid)


def test_an_app_that_is_no_service_app_is_refused(sim, run_inline):
    saml = next(a["id"] for a in sim.state()["apps"] if a["signOnMode"] == "SAML_2_0")
    row = run_inline("grant", {"entitlement": "role:READ_ONLY_ADMIN:assigned", "principal": f"app:{saml}"})
    assert row.state == "failed" and f"app {saml} is not an OAuth service app" in row.error, row.error
    row = run_inline("grant", {"entitlement": "app:0oa1:access", "principal": f"app:{saml}"})
    assert row.state == "failed" and "cannot be granted to a app" in row.error, row.error


def test_client_roles_write_through_equals_the_next_sync(oktasim, tmp_path):
    sim = oktasim(sim_args("--groups", "10", "--apps", "10"))
    synced = SyncedFile(sim.url, str(tmp_path / "sync.db"), SyncOptions(sync_custom_roles=True))
    st = sim.state()
    aid = service_apps(st)[0]
    first = synced.grants("role:")
    for r in st["role_assignments"]:   # what the org holds is what the first sync shows
        if r["principal_type"] == "client" and r["principal_id"] == aid and r["type"] != "CUSTOM":
            assert f"role:{r['type']}:assigned:app:{aid}" in first
    gid = next(g["id"] for g in st["groups"] if g["type"] == "OKTA_GROUP")
    rs, b = next((rs, b) for rs in st["resource_sets"] for b in rs["bindings"]
                 if {"type": "client", "id": aid} not in b["members"])
    synced.run("grant", {"entitlement": "role:USER_ADMIN:assigned", "principal": f"app:{aid}",
                         "targets": {"groups": [gid]}})
    synced.run("grant", {"entitlement": "role:ORG_ADMIN:assigned", "principal": f"app:{aid}"})
    synced.run("grant", {"entitlement": f"resourceset-binding:{rs['id']}:{b['role']}:member", "principal": f"app:{aid}"})
    seeded = next(t for t in client_roles(st, aid) if t not in ("USER_ADMIN", "ORG_ADMIN") and t.isupper())
    synced.run("revoke", {"entitlement": f"role:{seeded}:assigned", "principal": f"app:{aid}"})
    written = synced.grants()
    assert f"role:ORG_ADMIN:assigned:app:{aid}" in written
    synced.sync()
    assert written == synced.grants()
