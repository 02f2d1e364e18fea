"""Granting an admin role with targets (a scoped role): intake's checks, the CLI's --target, the
role and its targets in Okta (oktasim), and the grant's `targets` written through as the next sync
shows them."""

from __future__ import annotations

import pytest

from tests.support.provisioning import SyncedFile, sim_args
from worker.commands.provision import _targets
from worker.connector import SyncOptions
from worker.provisioning import intake
from worker.provisioning.errors import InvalidRequest


def test_targets_are_checked_and_canonical():
    payload = {"entitlement": "role:USER_ADMIN:assigned", "principal": "user:00u1",
               "targets": {"groups": ["00g2", "00g1", "00g2"]}}
    assert intake.normalize("grant", payload)["targets"] == {"groups": ["00g1", "00g2"]}
    app = {"entitlement": "role:APP_ADMIN:assigned", "principal": "group:00g1",
           "targets": {"apps": ["salesforce"], "app_instances": ["0oa1"]}}
    assert intake.normalize("grant", app)["targets"] == {"apps": ["salesforce"], "app_instances": ["0oa1"]}
    assert "targets" not in intake.normalize("grant", {k: v for k, v in payload.items() if k != "targets"})
    for bad, needle in [
        ({**payload, "entitlement": "role:SUPER_ADMIN:assigned"}, "only to roles Okta scopes"),
        ({**payload, "entitlement": "group:00g1:member"}, "only to roles Okta scopes"),
        ({**payload, "targets": {"apps": ["salesforce"]}}, "takes targets groups, not 'apps'"),
        ({**payload, "targets": {}}, "non-empty object"),
        ({**payload, "targets": {"groups": "00g1"}}, "non-empty list"),
        ({**payload, "targets": {"groups": ["group:00g1"]}}, "non-empty list"),
    ]:
        with pytest.raises(InvalidRequest, match=needle):
            intake.normalize("grant", bad)
    with pytest.raises(InvalidRequest, match="go with a grant"):
        intake.normalize("revoke", payload)


def test_cli_target_options():
    assert _targets(("group:00g1", "group:00g2")) == {"groups": ["00g1", "00g2"]}
    assert _targets(("app:salesforce", "app-instance:0oa1")) == {"apps": ["salesforce"], "app_instances": ["0oa1"]}


def _role(state: dict, ptype: str, pid: str, role_type: str) -> dict | None:
    return next((r for r in state["role_assignments"]
                 if (r["principal_type"], r["principal_id"], r["type"]) == (ptype, pid, role_type)), None)


@pytest.mark.parametrize("ptype", ["user", "group"])
def test_grant_a_role_with_group_targets(sim, store, run_inline, ptype):
    st = sim.state()
    held = {(r["principal_type"], r["principal_id"]) for r in st["role_assignments"]}
    okta_groups = [g["id"] for g in st["groups"] if g["type"] == "OKTA_GROUP"]
    pid = (next(u["id"] for u in st["users"] if u["status"] == "ACTIVE" and ("user", u["id"]) not in held)
           if ptype == "user" else next(g for g in okta_groups if ("group", g) not in held))
    targets = [g for g in okta_groups if g != pid][:2]
    ent = "role:GROUP_MEMBERSHIP_ADMIN:assigned"
    req = {"entitlement": ent, "principal": f"{ptype}:{pid}", "targets": {"groups": targets[:1]}}
    row = run_inline("grant", req)
    assert row.state == "succeeded", row.error
    assert _role(sim.state(), ptype, pid, "GROUP_MEMBERSHIP_ADMIN")["targets"]["groups"] == targets[:1]
    assert row.result["details"]["targets"] == {"groups": targets[:1]}
    assert f"{ent}:{ptype}:{pid}" in store.view()
    assert run_inline("grant", req).result["message"].startswith("already granted")
    row = run_inline("grant", {**req, "targets": {"groups": targets}})   # one more target
    assert row.state == "succeeded" and sorted(row.result["details"]["targets"]["groups"]) == sorted(targets)
    assert sorted(_role(sim.state(), ptype, pid, "GROUP_MEMBERSHIP_ADMIN")["targets"]["groups"]) == sorted(targets)
    row = run_inline("grant", {**req, "targets": {"groups": ["00gnosuchgroup000000"]}})
    assert row.state == "failed" and "00gnosuchgroup000000" in row.error
    assert run_inline("revoke", {"entitlement": ent, "principal": f"{ptype}:{pid}"}).state == "succeeded"
    assert _role(sim.state(), ptype, pid, "GROUP_MEMBERSHIP_ADMIN") is None


def test_scoped_roles_write_through_equals_the_next_sync(oktasim, tmp_path):
    sim = oktasim(sim_args("--groups", "10", "--apps", "6"))
    synced = SyncedFile(sim.url, str(tmp_path / "sync.db"), SyncOptions())
    st = sim.state()
    held = {(r["principal_type"], r["principal_id"]) for r in st["role_assignments"]}
    users = [u["id"] for u in st["users"] if u["status"] == "ACTIVE" and ("user", u["id"]) not in held]
    groups = [g["id"] for g in st["groups"] if g["type"] == "OKTA_GROUP"]
    apps = [a["id"] for a in st["apps"]]
    synced.run("grant", {"entitlement": "role:USER_ADMIN:assigned", "principal": f"user:{users[0]}",
                         "targets": {"groups": groups[:2]}})
    synced.run("grant", {"entitlement": "role:APP_ADMIN:assigned", "principal": f"user:{users[1]}",
                         "targets": {"app_instances": apps[:1]}})
    # An org-wide role becomes scoped.
    synced.run("grant", {"entitlement": "role:HELP_DESK_ADMIN:assigned", "principal": f"group:{groups[-1]}"})
    synced.run("grant", {"entitlement": "role:HELP_DESK_ADMIN:assigned", "principal": f"group:{groups[-1]}",
                         "targets": {"groups": groups[:1]}})
    written = synced.grants("role:")
    assert written[f"role:HELP_DESK_ADMIN:assigned:group:{groups[-1]}"]["targets"] == {"groups": groups[:1]}
    assert sorted(written[f"role:USER_ADMIN:assigned:user:{users[0]}"]["targets"]["groups"]) == sorted(groups[:2])
    assert written[f"role:APP_ADMIN:assigned:user:{users[1]}"]["targets"] == {"app_instances": apps[:1]}
    synced.sync()
    assert written == synced.grants("role:")
