"""The IAM-based standard roles (Workflows, Access Certifications and Access Requests Administrator):
synced as `role:<TYPE>:assigned` like the other standard roles, granted and revoked by type for
users and groups, and written through exactly as the next sync shows them."""

from __future__ import annotations

import pytest

from tests.support.provisioning import SyncedFile, sim_args
from worker.connector import SyncOptions

IAM_ROLES = ("WORKFLOWS_ADMIN", "ACCESS_CERTIFICATIONS_ADMIN", "ACCESS_REQUESTS_ADMIN")


def holders(state: dict, role_type: str) -> set[tuple[str, str]]:
    return {(r["principal_type"], r["principal_id"]) for r in state["role_assignments"] if r["type"] == role_type}


def principal(state: dict, ptype: str, role_type: str) -> str:
    held = holders(state, role_type)
    if ptype == "user":
        return next(u["id"] for u in state["users"] if u["status"] == "ACTIVE" and ("user", u["id"]) not in held)
    return next(g["id"] for g in state["groups"] if g["type"] == "OKTA_GROUP" and ("group", g["id"]) not in held)


@pytest.mark.parametrize("ptype", ["user", "group"])
@pytest.mark.parametrize("role_type", IAM_ROLES)
def test_iam_based_role_grant_and_revoke(sim, store, run_inline, role_type, ptype):
    st = sim.state()
    pid = principal(st, ptype, role_type)
    ent = f"role:{role_type}:assigned"
    row = run_inline("grant", {"entitlement": ent, "principal": f"{ptype}:{pid}"})
    assert row.state == "succeeded", row.error
    assert (ptype, pid) in holders(sim.state(), role_type)
    assert f"{ent}:{ptype}:{pid}" in store.view()
    again = run_inline("grant", {"entitlement": ent, "principal": f"{ptype}:{pid}"})
    assert again.state == "succeeded" and again.result["message"].startswith("already granted")
    row = run_inline("revoke", {"entitlement": ent, "principal": f"{ptype}:{pid}"})
    assert row.state == "succeeded" and row.result["message"].startswith("revoked"), row.error
    assert (ptype, pid) not in holders(sim.state(), role_type)
    assert f"{ent}:{ptype}:{pid}" not in store.view()


def test_iam_based_roles_write_through_equals_the_next_sync(oktasim, tmp_path):
    sim = oktasim(sim_args("--groups", "10", "--apps", "6"))
    synced = SyncedFile(sim.url, str(tmp_path / "sync.db"), SyncOptions(sync_custom_roles=True))
    st = sim.state()
    first = synced.grants()
    for role_type in IAM_ROLES:   # what the org holds is what the first sync shows
        for ptype, pid in holders(st, role_type):
            assert f"role:{role_type}:assigned:{ptype}:{pid}" in first
    held_type, held = next((t, h) for t in IAM_ROLES for h in sorted(holders(st, t)))
    synced.run("grant", {"entitlement": "role:WORKFLOWS_ADMIN:assigned",
                         "principal": f"user:{principal(st, 'user', 'WORKFLOWS_ADMIN')}"})
    synced.run("grant", {"entitlement": "role:ACCESS_REQUESTS_ADMIN:assigned",
                         "principal": f"group:{principal(st, 'group', 'ACCESS_REQUESTS_ADMIN')}"})
    synced.run("revoke", {"entitlement": f"role:{held_type}:assigned", "principal": f"{held[0]}:{held[1]}"})
    written = synced.grants()
    synced.sync()
    assert written == synced.grants()
