"""Every kind of request through the real intake, request rows (PostgreSQL) and executors, against
oktasim, run in this process; the simulator's state is the judge, the store's view must follow."""

from __future__ import annotations

import httpx
import pytest

from tests.support.provisioning import RO, SUPER
from worker.provisioning.errors import IdempotencyConflict
from worker.store.provision_requests import UnknownTenant


def okta(sim) -> httpx.Client:
    return httpx.Client(base_url=sim.url, headers={"Authorization": f"SSWS {SUPER}"}, timeout=30)


def pick(state: dict, *, status: str = "ACTIVE", not_in: set | None = None) -> str:
    return next(u["id"] for u in state["users"] if u["status"] == status and u["id"] not in (not_in or set()))


def okta_group(state: dict) -> dict:
    return next(g for g in state["groups"] if g["type"] == "OKTA_GROUP")


def app_of(state: dict, aid: str) -> dict:
    return next(a for a in state["apps"] if a["id"] == aid)


def roles(state: dict, ptype: str, pid: str) -> set[str]:
    return {r["type"] for r in state["role_assignments"]
            if r["principal_type"] == ptype and r["principal_id"] == pid and not r.get("resource_set")}


def test_group_membership_grant_revoke_idempotent_and_written_through(sim, store, run_inline):
    st = sim.state()
    g = okta_group(st)
    uid = pick(st, not_in=set(g["members"]))
    ent, principal = f"group:{g['id']}:member", f"user:{uid}"
    row = run_inline("grant", {"entitlement": ent, "principal": principal}, "k1")
    assert row.state == "succeeded", row.error
    assert row.result["message"].startswith("granted")
    assert uid in okta_group(sim.state())["members"]
    assert f"{ent}:{principal}" in store.view()
    again = run_inline("grant", {"entitlement": ent, "principal": principal}, "k2")
    assert again.state == "succeeded" and again.result["message"].startswith("already granted")
    row = run_inline("revoke", {"grant": f"{ent}:{principal}"}, "k3")
    assert row.state == "succeeded" and row.result["message"].startswith("revoked")
    assert uid not in okta_group(sim.state())["members"]
    assert f"{ent}:{principal}" not in store.view()
    again = run_inline("revoke", {"entitlement": ent, "principal": principal}, "k4")
    assert again.state == "succeeded" and again.result["message"].startswith("already revoked")
    app_group = next(x for x in st["groups"] if x["type"] == "APP_GROUP")
    row = run_inline("grant", {"entitlement": f"group:{app_group['id']}:member", "principal": principal})
    assert row.state == "failed" and "APP_GROUP group: Okta does not allow changing its membership" in row.error
    row = run_inline("grant", {"entitlement": "group:00gnosuchgroup000000:member", "principal": principal})
    assert row.state == "failed" and "group 00gnosuchgroup000000 not found" in row.error


def test_app_access_for_users_and_groups(sim, store, run_inline):
    st = sim.state()
    app = next(a for a in st["apps"] if a["status"] == "ACTIVE" and a["label"] != "Okta Admin Console")
    ent = f"app:{app['id']}:access"
    uid = pick(st, not_in={u["id"] for u in app["users"]})
    row = run_inline("grant", {"entitlement": ent, "principal": f"user:{uid}"})
    assert row.state == "succeeded", row.error
    assert {"id": uid, "scope": "USER"} in app_of(sim.state(), app["id"])["users"]
    email = next(u for u in st["users"] if u["id"] == uid)["profile"]["email"]
    with okta(sim) as c:
        assert c.get(f"/api/v1/apps/{app['id']}/users/{uid}").json()["credentials"]["userName"] == email
    assert f"{ent}:user:{uid}" in store.view()
    assert run_inline("revoke", {"entitlement": ent, "principal": f"user:{uid}"}).state == "succeeded"
    assert uid not in {u["id"] for u in app_of(sim.state(), app["id"])["users"]}

    # A group: its members get the app through it; revoking a member's access must say why not.
    g = okta_group(st)
    row = run_inline("grant", {"entitlement": ent, "principal": f"group:{g['id']}"})
    assert row.state == "succeeded", row.error
    assert g["id"] in app_of(sim.state(), app["id"])["groups"]
    assert f"{ent}:group:{g['id']}" in store.view()
    active = {u["id"] for u in st["users"] if u["status"] == "ACTIVE"}
    member = next(m for m in g["members"] if m in active)
    row = run_inline("revoke", {"entitlement": ent, "principal": f"user:{member}"})
    assert row.state == "failed"
    assert "holds through a group" in row.error and "E0000046" in row.error
    # Direct and through the group: Okta itself refuses with E0000046; same clear message.
    with okta(sim) as c:
        c.post(f"/api/v1/apps/{app['id']}/users", json={"id": member, "scope": "USER"}).raise_for_status()
    row = run_inline("revoke", {"entitlement": ent, "principal": f"user:{member}"})
    assert row.state == "failed" and "holds through a group" in row.error
    assert run_inline("revoke", {"entitlement": ent, "principal": f"group:{g['id']}"}).state == "succeeded"
    assert g["id"] not in app_of(sim.state(), app["id"])["groups"]
    again = run_inline("revoke", {"entitlement": ent, "principal": f"group:{g['id']}"})
    assert again.result["message"].startswith("already revoked")


@pytest.mark.parametrize("ptype", ["user", "group"])
def test_standard_roles_for_users_and_groups(sim, store, run_inline, ptype):
    st = sim.state()
    pid = pick(st) if ptype == "user" else okta_group(st)["id"]
    ent = "role:HELP_DESK_ADMIN:assigned"
    row = run_inline("grant", {"entitlement": ent, "principal": f"{ptype}:{pid}"})
    assert row.state == "succeeded", row.error
    assert "HELP_DESK_ADMIN" in roles(sim.state(), ptype, pid)
    assert f"{ent}:{ptype}:{pid}" in store.view()
    assert run_inline("grant", {"entitlement": ent, "principal": f"{ptype}:{pid}"}).result["message"].startswith(
        "already granted")
    assert run_inline("revoke", {"entitlement": ent, "principal": f"{ptype}:{pid}"}).state == "succeeded"
    assert "HELP_DESK_ADMIN" not in roles(sim.state(), ptype, pid)
    assert f"{ent}:{ptype}:{pid}" not in store.view()


def _members(state: dict, rs: str, role: str) -> set[tuple[str, str]]:
    for r in state["resource_sets"]:
        if r["id"] == rs:
            for b in r["bindings"]:
                if b["role"] == role:
                    return {(m["type"], m["id"]) for m in b["members"]}
    return set()


@pytest.mark.parametrize("ptype", ["user", "group"])
def test_custom_roles_through_binding_members(sim, store, run_inline, ptype):
    st = sim.state()
    rs = st["resource_sets"][0]
    bound = {b["role"] for b in rs["bindings"]}
    unbound = next(cr["id"] for cr in st["custom_roles"] if cr["id"] not in bound)
    pid = pick(st) if ptype == "user" else okta_group(st)["id"]
    for role in (rs["bindings"][0]["role"], unbound):  # an existing binding, and one to create
        ent = f"resourceset-binding:{rs['id']}:{role}:member"
        row = run_inline("grant", {"entitlement": ent, "principal": f"{ptype}:{pid}"})
        assert row.state == "succeeded", row.error
        assert (ptype, pid) in _members(sim.state(), rs["id"], role)
        assert f"{ent}:{ptype}:{pid}" in store.view()
        assert run_inline("grant", {"entitlement": ent, "principal": f"{ptype}:{pid}"}).result["message"].startswith(
            "already granted")
        assert run_inline("revoke", {"entitlement": ent, "principal": f"{ptype}:{pid}"}).state == "succeeded"
        assert (ptype, pid) not in _members(sim.state(), rs["id"], role)
        assert f"{ent}:{ptype}:{pid}" not in store.view()


def _status(sim, uid: str) -> str:
    return next(u for u in sim.state()["users"] if u["id"] == uid)["status"]


def test_enable_and_disable_user(sim, store, run_inline):
    st = sim.state()
    staged, suspended, active = pick(st, status="STAGED"), pick(st, status="SUSPENDED"), pick(st)
    deprov = pick(st, status="DEPROVISIONED")
    row = run_inline("action", {"action": "enable_user", "args": {"user_id": staged}})
    assert row.state == "succeeded", row.error
    assert _status(sim, staged) in ("ACTIVE", "PROVISIONED")
    assert run_inline("action", {"action": "enable_user", "args": {"user_id": suspended}}).state == "succeeded"
    assert _status(sim, suspended) == "ACTIVE"
    sim.reset_stats()
    row = run_inline("action", {"action": "enable_user", "args": {"user_id": active}})
    assert row.state == "succeeded" and "already enabled" in row.result["message"]
    row = run_inline("action", {"action": "enable_user", "args": {"user_id": deprov}})
    assert row.state == "failed" and "DEPROVISIONED" in row.error
    row = run_inline("action", {"action": "disable_user", "args": {"user_id": active}})
    assert row.state == "succeeded" and _status(sim, active) == "SUSPENDED"
    assert f"user:{active}" in store.resources()  # written through with its new status
    row = run_inline("action", {"action": "disable_user", "args": {"user_id": active}})
    assert row.state == "succeeded" and "already disabled" in row.result["message"]
    row = run_inline("action", {"action": "disable_user", "args": {"user_id": "00unknown0000000000"}})
    assert row.state == "failed" and "not found" in row.error


def _groups_named(sim, name: str) -> list[dict]:
    return [g for g in sim.state()["groups"] if g["profile"]["name"] == name]


def test_create_group_with_members_reports_failures_keeping_the_id(sim, store, run_inline):
    st = sim.state()
    u1, u2 = [u["id"] for u in st["users"] if u["status"] == "ACTIVE"][:2]
    row = run_inline("action", {"action": "create", "args": {
        "name": "Provisioned Team", "description": "made by a test", "userMembers": [u1, u2, "00unosuchuser0000000"]}},
        "create-1")
    assert row.state == "failed"
    assert "00unosuchuser0000000" in row.error and "could not be added" in row.error
    gid = row.result["details"]["group_id"]
    (g,) = _groups_named(sim, "Provisioned Team")
    assert g["id"] == gid and set(g["members"]) == {u1, u2}
    assert f"group:{gid}" in store.resources()
    assert {f"group:{gid}:member:user:{u1}", f"group:{gid}:member:user:{u2}"} <= store.view()
    ok = run_inline("action", {"action": "create", "args": {"name": "Second Team", "userMembers": [u1]}})
    assert ok.state == "succeeded", ok.error
    dup = run_inline("action", {"action": "create", "args": {"name": "Second Team"}})
    assert dup.state == "failed" and "already exists" in dup.error
    assert len(_groups_named(sim, "Second Team")) == 1


def test_modify_group_keeps_custom_attributes_and_skips_no_op(sim, store, run_inline):
    with okta(sim) as c:
        g = c.post("/api/v1/groups", json={"profile": {"name": "Custom", "description": "d", "costCenter": "cc7"}}).json()
    sim.reset_stats()
    same = run_inline("action", {"action": "modify_group", "args": {"group_id": g["id"], "name": "Custom",
                                                                    "description": "d"}})
    assert same.state == "succeeded" and "nothing to do" in same.result["message"]
    row = run_inline("action", {"action": "modify_group", "args": {"group_id": g["id"], "name": "Renamed"}})
    assert row.state == "succeeded", row.error
    (now,) = [x for x in sim.state()["groups"] if x["id"] == g["id"]]
    assert now["profile"] == {"name": "Renamed", "description": "d", "costCenter": "cc7"}
    everyone = next(x for x in sim.state()["groups"] if x["type"] == "BUILT_IN")
    row = run_inline("action", {"action": "modify_group", "args": {"group_id": everyone["id"], "name": "X"}})
    assert row.state == "failed" and "BUILT_IN" in row.error


def test_create_account_options_and_duplicates(sim, store, run_inline):
    args = {"email": "new.person@example.com", "first_name": "New", "last_name": "Person",
            "send_activation_email": False}
    row = run_inline("action", {"action": "create_account", "args": args})
    assert row.state == "succeeded", row.error
    uid = row.result["details"]["user_id"]
    user = next(u for u in sim.state()["users"] if u["id"] == uid)
    assert user["profile"]["login"] == "new.person@example.com" and user["status"] == "PROVISIONED"
    assert f"user:{uid}" in store.resources()
    staged = run_inline("action", {"action": "create_account", "args": {
        "email": "staged@example.com", "login": "staged.login@example.com", "first_name": "S", "last_name": "T",
        "create_inactive": True}})
    assert staged.state == "succeeded" and _status(sim, staged.result["details"]["user_id"]) == "STAGED"
    dup = run_inline("action", {"action": "create_account", "args": args})
    assert dup.state == "succeeded" and "already exists" in dup.result["message"]
    assert dup.result["details"]["user_id"] == uid


def _new_account(run_inline, name: str, **options) -> tuple[str, dict]:
    row = run_inline("action", {"action": "create_account", "args": {
        "email": f"{name}@example.com", "first_name": name.title(), "last_name": "Choice", **options}})
    assert row.state == "succeeded", row.error
    return row.result["details"]["user_id"], row.result


def test_create_account_password_provider_and_activation_choices(sim, store, run_inline):
    def user(uid: str) -> dict:
        return next(u for u in sim.state()["users"] if u["id"] == uid)

    # baton-okta's default: no password, activated at creation, so Okta e-mails the activation link
    uid, _ = _new_account(run_inline, "welcome")
    assert (user(uid)["status"], user(uid)["emails_sent"], user(uid)["has_password"]) == (
        "PROVISIONED", ["activation"], False)
    uid, _ = _new_account(run_inline, "silent", send_activation_email=False)
    assert (user(uid)["status"], user(uid)["emails_sent"]) == ("PROVISIONED", [])
    uid, result = _new_account(run_inline, "randompw", password="random")
    assert (user(uid)["status"], user(uid)["has_password"]) == ("ACTIVE", True)
    assert "password" not in str(result["details"])  # the generated password is kept nowhere
    uid, _ = _new_account(run_inline, "mustchange", password="random", password_change_on_login_required=True)
    assert user(uid)["status"] == "PASSWORD_EXPIRED" and user(uid)["emails_sent"] == []
    assert store.resource_profile(f"user:{uid}")["okta_status"] == "PASSWORD_EXPIRED"
    uid, _ = _new_account(run_inline, "federated", provider_type="federation")
    assert (user(uid)["status"], user(uid)["provider"], user(uid)["has_password"]) == ("ACTIVE", "FEDERATION", False)
    uid, _ = _new_account(run_inline, "later", password="random", password_change_on_login_required=True,
                          create_inactive=True)   # create_inactive wins over the others
    assert (user(uid)["status"], user(uid)["emails_sent"]) == ("STAGED", [])
    uid, _ = _new_account(run_inline, "loginname", login="login.name")
    assert user(uid)["profile"]["login"] == "login.name" and user(uid)["profile"]["email"] == "loginname@example.com"


def test_update_user_sets_profile_fields_and_writes_through(sim, store, run_inline):
    st = sim.state()
    uid, manager = pick(st), pick(st, not_in={pick(st)})
    before = next(u for u in st["users"] if u["id"] == uid)["profile"]
    row = run_inline("action", {"action": "update_user", "args": {
        "user_id": uid, "title": "Chief Auditor", "userType": "Contractor", "managerId": manager,
        "additionalAttributes": {"costCenterCode": "CC-7"}}})
    assert row.state == "succeeded", row.error
    assert row.result["details"]["updated_fields"] == ["costCenterCode", "managerId", "title", "userType"]
    after = next(u for u in sim.state()["users"] if u["id"] == uid)["profile"]
    assert {k: after[k] for k in ("title", "userType", "managerId", "costCenterCode")} == {
        "title": "Chief Auditor", "userType": "Contractor", "managerId": manager, "costCenterCode": "CC-7"}
    assert after["login"] == before["login"] and after["email"] == before["email"]  # merged, not replaced
    shown = store.resource_profile(f"user:{uid}")
    assert (shown["user_type"], shown["manager_id"]) == ("Contractor", manager)
    taken = next(u for u in st["users"] if u["id"] == manager)["profile"]["login"]
    row = run_inline("action", {"action": "update_user", "args": {"user_id": uid, "login": taken}})
    assert row.state == "failed" and "already exists" in row.error
    row = run_inline("action", {"action": "update_user", "args": {"user_id": "00unknown0000000000", "title": "x"}})
    assert row.state == "failed" and "not found" in row.error


def test_deactivate_and_delete_user(sim, store, run_inline):
    st = sim.state()
    a, b = [u["id"] for u in st["users"] if u["status"] == "ACTIVE"][2:4]
    assert run_inline("action", {"action": "deactivate_user", "args": {"user_id": a}}).state == "succeeded"
    assert _status(sim, a) == "DEPROVISIONED"
    again = run_inline("action", {"action": "deactivate_user", "args": {"user_id": a}})
    assert "already deactivated" in again.result["message"]
    row = run_inline("delete", {"resource_type": "user", "resource_id": b})
    assert row.state == "succeeded", row.error
    assert b not in {u["id"] for u in sim.state()["users"]}
    gone = run_inline("action", {"action": "delete_user", "args": {"user_id": b}})
    assert gone.state == "succeeded" and "already deleted" in gone.result["message"]


def test_group_delete_refuses_built_in_and_app_groups(sim, store, run_inline):
    st = sim.state()
    g = okta_group(st)
    row = run_inline("delete", {"resource_type": "group", "resource_id": g["id"]})
    assert row.state == "succeeded", row.error
    assert g["id"] not in {x["id"] for x in sim.state()["groups"]}
    assert f"group:{g['id']}" not in store.resources()
    for gtype in ("BUILT_IN", "APP_GROUP"):
        other = next(x for x in st["groups"] if x["type"] == gtype)
        row = run_inline("delete", {"resource_type": "group", "resource_id": other["id"]})
        assert row.state == "failed" and f"is a {gtype} group and cannot be deleted" in row.error
    row = run_inline("delete", {"resource_type": "group", "resource_id": "00gnosuchgroup000000"})
    assert row.state == "failed" and "group 00gnosuchgroup000000 not found" in row.error


def test_token_levels_name_the_missing_permission(sim, store, run_inline):
    st = sim.state()
    g = okta_group(st)
    uid = pick(st, not_in=set(g["members"]))
    grant = {"entitlement": f"group:{g['id']}:member", "principal": f"user:{uid}"}
    ro = run_inline("grant", grant, tenant="ro")
    assert ro.state == "failed" and "permission denied" in ro.error and "okta.groups.manage" in ro.error
    assert ro.attempts == 1  # failed at once, no retry
    assert RO not in ro.error and SUPER not in ro.error
    assert uid not in okta_group(sim.state())["members"]
    assert run_inline("grant", grant, tenant="aga").state == "succeeded"
    role = run_inline("grant", {"entitlement": "role:USER_ADMIN:assigned", "principal": f"user:{uid}"}, tenant="aga")
    assert role.state == "failed" and "okta.roles.manage" in role.error
    role = run_inline("grant", {"entitlement": "role:USER_ADMIN:assigned", "principal": f"user:{uid}"},
                      tenant="super")
    assert role.state == "succeeded", (role.state, role.error, role.result)
    app = next(a for a in st["apps"] if a["status"] == "ACTIVE" and a["label"] != "Okta Admin Console")
    app_grant = {"entitlement": f"app:{app['id']}:access", "principal": f"group:{g['id']}"}
    ro = run_inline("grant", app_grant, tenant="ro")
    assert ro.state == "failed" and "okta.apps.manage" in ro.error
    assert run_inline("grant", app_grant, tenant="aga").state == "succeeded"
    made = run_inline("action", {"action": "create", "args": {"name": "By Group Admin"}}, tenant="aga")
    assert made.state == "succeeded", made.error
    gone = run_inline("delete", {"resource_type": "group", "resource_id": made.result["details"]["group_id"]},
                      tenant="aga")
    assert gone.state == "failed" and "permission denied" in gone.error
    acct = run_inline("action", {"action": "create_account", "args": {
        "email": "x@example.com", "first_name": "X", "last_name": "Y"}}, tenant="aga")
    assert acct.state == "failed" and "okta.users.manage" in acct.error


def test_rejected_credentials_fail_clearly(sim, store, run_inline):
    import sqlalchemy as sa

    from worker.store.secrets import encrypt_credentials
    from worker.store.tables import Tenant

    with store.sessions() as s:
        s.execute(sa.update(Tenant).where(Tenant.name == "ro").values(
            credentials=encrypt_credentials({"api_token": "00not-a-valid-token-000000000000000000000"})))
        s.commit()
    row = run_inline("action", {"action": "disable_user", "args": {"user_id": pick(sim.state())}}, tenant="ro")
    assert row.state == "failed" and row.error.startswith("authentication failed") and row.attempts == 1
    assert "00not-a-valid-token" not in row.error


def test_invalid_requests_are_recorded_failed(sim, store, run_inline):
    for kind, payload, needle in [
        ("grant", {"entitlement": "group:00g1:member", "principal": "group:00g2"}, "cannot be granted to a group"),
        ("grant", {"entitlement": "bogus", "principal": "user:00u1"}, "entitlement id"),
        ("action", {"action": "enable_user", "args": {}}, "missing required argument(s) user_id"),
        ("teleport", {}, "unknown kind"),
    ]:
        row = run_inline(kind, payload)
        assert row.state == "failed" and needle in row.error and row.error.startswith("invalid request")
    with store.sessions() as s, pytest.raises(UnknownTenant, match="unknown tenant 'nobody'"):
        from worker.store import provision_requests

        provision_requests.record(s, "nobody", "grant", {})


def test_same_key_returns_the_request_and_other_payload_is_rejected(sim, store):
    from tests.support.provisioning import Recorder
    from worker.provisioning import service

    app = Recorder()
    payload = {"entitlement": "role:USER_ADMIN:assigned", "principal": "user:00u1"}
    with store.sessions() as s:
        first = service.record_and_publish(s, app, "super", "grant", payload, "same")
        second = service.record_and_publish(s, app, "super", "grant", dict(payload), "same")
        assert second.id == first.id and first.created and not second.created
        assert app.sent == [("oktasync.provision.execute", [first.id])]  # published once
        with pytest.raises(IdempotencyConflict, match="already used by request"):
            service.record_and_publish(s, app, "super", "revoke", payload, "same")
        other_tenant = service.record_and_publish(s, app, "aga", "grant", payload, "same")
        assert other_tenant.id != first.id  # keys are per tenant


def test_transient_errors_retry_then_dead_with_last_error(store, run_inline):
    import socket

    import sqlalchemy as sa

    from worker.store.tables import Tenant

    with socket.socket() as sock:  # a port nobody listens on: connection refused, a transient error
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with store.sessions() as s:
        s.execute(sa.update(Tenant).where(Tenant.name == "aga").values(domain=f"http://127.0.0.1:{port}"))
        s.commit()
    row = run_inline("grant", {"entitlement": "role:USER_ADMIN:assigned", "principal": "user:00u1"}, tenant="aga")
    assert row.state == "dead"
    assert "gave up after 3 transient failures" in row.error and "transient error" in row.error
    assert row.attempts == 3


def test_create_after_a_crash_between_post_and_checkpoint_adopts_the_group(sim, store):
    """Attempt 1 created the group and died before recording its id: attempt 2 must not make a second."""
    from datetime import timedelta

    import sqlalchemy as sa

    from tests.support.provisioning import Recorder
    from worker.provisioning import runner, service
    from worker.store import provision_requests
    from worker.store.tables import ProvisioningRequest

    uid = pick(sim.state())
    with store.sessions() as s:
        ref = service.record_and_publish(s, Recorder(), "super", "action",
                                         {"action": "create", "args": {"name": "Crashed Create", "userMembers": [uid]}})
    with store.sessions() as s:
        row, _ = provision_requests.claim(s, ref.id)  # attempt 1 starts ...
        assert row.attempts == 1
    with okta(sim) as c:  # ... its POST reaches Okta ...
        c.post("/api/v1/groups", json={"profile": {"name": "Crashed Create"}}).raise_for_status()
    with store.sessions() as s:  # ... and the worker dies: the lease runs out
        s.execute(sa.update(ProvisioningRequest).where(ProvisioningRequest.id == ref.id).values(
            updated_at=provision_requests.now() - timedelta(seconds=provision_requests.DEFAULT_LEASE + 1)))
        s.commit()
    step = runner.run_request(store.sessions, ref.id, runner.default_client_factory())
    assert step.state == "succeeded"
    row = store.request(ref.id)
    assert row.attempts == 2 and "created with 1 member" in row.result["message"]
    (g,) = _groups_named(sim, "Crashed Create")
    assert g["members"] == [uid] and row.result["details"]["group_id"] == g["id"]


def test_a_live_lease_is_not_taken_over(sim, store):
    from tests.support.provisioning import Recorder
    from worker.provisioning import runner, service
    from worker.store import provision_requests

    with store.sessions() as s:
        ref = service.record_and_publish(s, Recorder(), "super", "action",
                                         {"action": "disable_user", "args": {"user_id": pick(sim.state())}})
    with store.sessions() as s:
        provision_requests.claim(s, ref.id)  # another worker is running it right now
    step = runner.run_request(store.sessions, ref.id, runner.default_client_factory())
    assert not step.done and step.countdown > 0  # come back later, do not run it twice at once
    assert store.request(ref.id).attempts == 1


def test_requests_on_one_subject_run_in_order(sim, store):
    from tests.support.provisioning import Recorder
    from worker.provisioning import runner, service

    st = sim.state()
    g = okta_group(st)
    uid = pick(st, not_in=set(g["members"]))
    target = {"entitlement": f"group:{g['id']}:member", "principal": f"user:{uid}"}
    other = {"entitlement": "role:USER_ADMIN:assigned", "principal": f"user:{uid}"}
    with store.sessions() as s:
        grant = service.record_and_publish(s, Recorder(), "super", "grant", target)
        revoke = service.record_and_publish(s, Recorder(), "super", "revoke", target)
        unrelated = service.record_and_publish(s, Recorder(), "super", "grant", other)
    client_for = runner.default_client_factory()
    step = runner.run_request(store.sessions, revoke.id, client_for)  # delivered first, must wait
    assert not step.done and store.request(revoke.id).state == "queued" and store.request(revoke.id).attempts == 0
    assert runner.run_request(store.sessions, unrelated.id, client_for).state == "succeeded"  # not held up
    assert runner.run_request(store.sessions, grant.id, client_for).state == "succeeded"
    assert runner.run_request(store.sessions, revoke.id, client_for).state == "succeeded"
    assert uid not in okta_group(sim.state())["members"]
