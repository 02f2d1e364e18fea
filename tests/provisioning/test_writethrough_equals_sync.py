"""Every provisioning operation and connector action, one at a time on an embedded store: right
after it, the view write-through left must equal, column for column, what a fresh full sync of
the simulator writes (docs/provisioning.md, "Write-through")."""

from __future__ import annotations

import pytest

from tests.support.embedded import view
from tests.support.provisioning import SUPER, SyncedFile, sim_args
from worker.connector import SyncOptions
from worker.connector.types.group import VALIDATOR
from worker.engine.embedded import run_embedded

OPTIONS = SyncOptions(sync_custom_roles=True)
# Okta's time of a group's last membership change: write-through cannot know it and keeps the one
# the last sync read. That is safe for the incremental validator, which re-lists a group's members
# when the stored value differs from Okta's (docs/provisioning.md, "Write-through").
OKTA_TIMESTAMPS = (VALIDATOR,)


def _differences(before: tuple[set, set, set], after: tuple[set, set, set]) -> dict[str, tuple[list, list]]:
    out = {}
    for name, w, s in zip(("resources", "entitlements", "grants"), before, after, strict=True):
        if w != s:
            out[name] = (sorted(w - s), sorted(s - w))
    return out


@pytest.fixture(params=["5", "17"])  # two generated orgs: other users, groups, apps and roles to act on
def synced(oktasim, tmp_path, request):
    sim = oktasim(sim_args("--groups", "10", "--apps", "10", "--seed", request.param, "--rate-limit-scale", "50"))
    return sim, SyncedFile(sim.url, str(tmp_path / "sync.db"), OPTIONS)


def _check(sim, synced: SyncedFile, kind: str, payload: dict) -> dict:
    synced.run(kind, payload)
    written = view(synced.file, ignore=OKTA_TIMESTAMPS)
    result = run_embedded(sim.url, {"api_token": SUPER}, OPTIONS, file=synced.file, full=True)
    assert result.state == "succeeded", result.error
    return _differences(written, view(synced.file, ignore=OKTA_TIMESTAMPS))


def test_each_operation_writes_through_what_a_full_sync_reads(synced):
    sim, file = synced
    st = sim.state()
    users = {u["id"]: u for u in st["users"]}
    active = [u for u, x in users.items() if x["status"] == "ACTIVE"]
    suspended = next(u for u, x in users.items() if x["status"] == "SUSPENDED")
    okta_groups = [g for g in st["groups"] if g["type"] == "OKTA_GROUP"]
    assigned = {g for a in st["apps"] for g in a["groups"]}
    g_app = next(g for g in okta_groups if g["id"] in assigned)
    g_plain = next(g for g in okta_groups if g["id"] not in assigned)
    app = next(a for a in st["apps"] if a["status"] == "ACTIVE" and a["label"] != "Okta Admin Console")
    direct_user = next(u for u in active if u not in {x["id"] for x in app["users"]})
    joiner = next(u for u in active if u not in g_app["members"] and u != direct_user)
    rs = st["resource_sets"][0]
    binding = rs["bindings"][0]["role"]
    service = next(a["id"] for a in st["apps"] if a["application_type"] == "service" and a["status"] == "ACTIVE")
    in_app = next(x["id"] for a in st["apps"] if a["status"] == "ACTIVE" for x in a["users"]
                  if x["id"] in active and x["id"] not in (direct_user, joiner))
    ops = [
        ("grant", {"entitlement": f"group:{g_app['id']}:member", "principal": f"user:{joiner}"}),
        ("revoke", {"entitlement": f"group:{g_app['id']}:member", "principal": f"user:{joiner}"}),
        ("grant", {"entitlement": f"app:{app['id']}:access", "principal": f"user:{direct_user}"}),
        ("revoke", {"entitlement": f"app:{app['id']}:access", "principal": f"user:{direct_user}"}),
        ("grant", {"entitlement": f"app:{app['id']}:access", "principal": f"group:{g_plain['id']}"}),
        ("revoke", {"entitlement": f"app:{app['id']}:access", "principal": f"group:{g_plain['id']}"}),
        ("grant", {"entitlement": "role:REPORT_ADMIN:assigned", "principal": f"user:{joiner}"}),
        ("revoke", {"entitlement": "role:REPORT_ADMIN:assigned", "principal": f"user:{joiner}"}),
        ("grant", {"entitlement": "role:HELP_DESK_ADMIN:assigned", "principal": f"group:{g_plain['id']}"}),
        ("revoke", {"entitlement": "role:HELP_DESK_ADMIN:assigned", "principal": f"group:{g_plain['id']}"}),
        ("grant", {"entitlement": f"resourceset-binding:{rs['id']}:{binding}:member", "principal": f"user:{joiner}"}),
        ("revoke", {"entitlement": f"resourceset-binding:{rs['id']}:{binding}:member", "principal": f"user:{joiner}"}),
        ("grant", {"entitlement": "role:USER_ADMIN:assigned", "principal": f"user:{joiner}",
                   "targets": {"groups": [g_plain["id"]]}}),
        ("revoke", {"entitlement": "role:USER_ADMIN:assigned", "principal": f"user:{joiner}"}),
        ("grant", {"entitlement": "role:WORKFLOWS_ADMIN:assigned", "principal": f"group:{g_plain['id']}"}),
        ("revoke", {"entitlement": "role:WORKFLOWS_ADMIN:assigned", "principal": f"group:{g_plain['id']}"}),
        ("grant", {"entitlement": "role:REPORT_ADMIN:assigned", "principal": f"app:{service}"}),
        ("revoke", {"entitlement": "role:REPORT_ADMIN:assigned", "principal": f"app:{service}"}),
        ("action", {"action": "disable_user", "args": {"user_id": in_app}}),
        ("action", {"action": "enable_user", "args": {"user_id": in_app}}),
        ("action", {"action": "enable_user", "args": {"user_id": suspended}}),
        ("action", {"action": "update_user", "args": {"user_id": joiner, "title": "Auditor"}}),
        ("action", {"action": "create_account", "args": {"email": "new.person@example.com", "first_name": "New",
                                                         "last_name": "Person", "password": "random"}}),
        ("action", {"action": "create_account", "args": {"email": "staged.person@example.com", "first_name": "Staged",
                                                         "last_name": "Person", "create_inactive": True}}),
        ("action", {"action": "update_user", "args": {"user_id": joiner, "secondEmail": "second@example.com",
                                                      "additionalAttributes": {"costCenter2": "42"}}}),
        ("action", {"action": "create", "args": {"name": "Write Through", "userMembers": active[:3]}}),
        ("action", {"action": "modify_group", "args": {"group_id": g_plain["id"], "name": "Renamed",
                                                       "description": "changed"}}),
        ("action", {"action": "deactivate_user", "args": {"user_id": in_app}}),
        ("delete", {"resource_type": "user", "resource_id": in_app}),
        ("delete", {"resource_type": "group", "resource_id": g_app["id"]}),
    ]
    found = {}
    for kind, payload in ops:
        diff = _check(sim, file, kind, payload)
        if diff:
            found[f"{kind} {payload}"] = diff
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())
