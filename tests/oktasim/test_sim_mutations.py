"""Every mutation the simulator supports, its status code, its effect on /__sim/state, and Okta's
errors for the ways it can go wrong."""

from __future__ import annotations

import socket

import pytest

from tests.support.simhttp import client, okta_error

ARGS = ["--users", "120", "--groups", "20", "--apps", "15", "--seed", "5", "--rate-limit-scale", "100"]


@pytest.fixture
def sim(oktasim):
    return oktasim(ARGS)


def _err(r, status: int, code: str) -> dict:
    body = okta_error(r, status, code)
    assert set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}
    assert body["errorLink"] == code and body["errorId"].startswith("oae")
    return body


def _okta_group(state, min_members: int = 1) -> dict:
    return next(g for g in state["groups"] if g["type"] == "OKTA_GROUP" and len(g["members"]) >= min_members)


def _active_user(state, exclude=()) -> dict:
    return next(u for u in state["users"] if u["status"] == "ACTIVE" and u["id"] not in exclude)


def test_group_create_update_delete(sim):
    with client(sim) as c:
        r = c.post("/api/v1/groups", json={"profile": {"name": "Pilots", "description": "fly"}})
        assert r.status_code == 200
        g = r.json()
        assert g["type"] == "OKTA_GROUP" and g["profile"]["name"] == "Pilots"
        assert g["id"] in {x["id"] for x in sim.state()["groups"]}
        _err(c.post("/api/v1/groups", json={"profile": {"name": "pilots"}}), 400, "E0000001")
        _err(c.post("/api/v1/groups", json={"profile": {"description": "no name"}}), 400, "E0000001")
        r = c.put(f"/api/v1/groups/{g['id']}", json={"profile": {"name": "Pilots 2", "description": None}})
        assert r.status_code == 200 and r.json()["profile"]["name"] == "Pilots 2"
        assert c.get(f"/api/v1/groups/{g['id']}").json()["profile"]["name"] == "Pilots 2"
        assert c.delete(f"/api/v1/groups/{g['id']}").status_code == 204
        _err(c.get(f"/api/v1/groups/{g['id']}"), 404, "E0000007")
        _err(c.delete(f"/api/v1/groups/{g['id']}"), 404, "E0000007")
        everyone = next(x for x in sim.state()["groups"] if x["type"] == "BUILT_IN")
        _err(c.delete(f"/api/v1/groups/{everyone['id']}"), 403, "E0000006")
        app_group = next(x for x in sim.state()["groups"] if x["type"] == "APP_GROUP")
        _err(c.put(f"/api/v1/groups/{app_group['id']}", json={"profile": {"name": "x"}}), 403, "E0000006")


def test_group_membership(sim):
    s = sim.state()
    g = _okta_group(s)
    outsider = next(u for u in s["users"] if u["id"] not in g["members"])
    with client(sim) as c:
        r = c.put(f"/api/v1/groups/{g['id']}/users/{outsider['id']}")
        assert r.status_code == 204 and r.content == b""
        assert c.put(f"/api/v1/groups/{g['id']}/users/{outsider['id']}").status_code == 204  # idempotent
        members = next(x for x in sim.state()["groups"] if x["id"] == g["id"])["members"]
        assert members == g["members"] + [outsider["id"]]
        assert c.delete(f"/api/v1/groups/{g['id']}/users/{outsider['id']}").status_code == 204
        assert next(x for x in sim.state()["groups"] if x["id"] == g["id"])["members"] == g["members"]
        body = _err(c.put(f"/api/v1/groups/{g['id']}/users/00unope"), 404, "E0000007")
        assert body["errorSummary"].endswith("(User)")
        body = _err(c.put(f"/api/v1/groups/00gnope/users/{outsider['id']}"), 404, "E0000007")
        assert body["errorSummary"].endswith("(UserGroup)")
        for kind in ("APP_GROUP", "BUILT_IN"):
            other = next(x for x in s["groups"] if x["type"] == kind)
            _err(c.put(f"/api/v1/groups/{other['id']}/users/{outsider['id']}"), 403, "E0000006")
            _err(c.delete(f"/api/v1/groups/{other['id']}/users/{outsider['id']}"), 403, "E0000006")


def test_membership_change_flows_into_app_assignments(sim):
    s = sim.state()
    app = next(a for a in s["apps"] if any(g for g in a["groups"]
                                          if next(x for x in s["groups"] if x["id"] == g)["type"] == "OKTA_GROUP"))
    gid = next(g for g in app["groups"] if next(x for x in s["groups"] if x["id"] == g)["type"] == "OKTA_GROUP")
    app_users = {u["id"] for u in app["users"]}
    newcomer = next(u for u in s["users"] if u["id"] not in app_users and u["status"] == "ACTIVE")
    with client(sim) as c:
        assert c.put(f"/api/v1/groups/{gid}/users/{newcomer['id']}").status_code == 204
        r = c.get(f"/api/v1/apps/{app['id']}/users/{newcomer['id']}")
        assert r.status_code == 200 and r.json()["scope"] == "GROUP"
        assert c.delete(f"/api/v1/groups/{gid}/users/{newcomer['id']}").status_code == 204
        _err(c.get(f"/api/v1/apps/{app['id']}/users/{newcomer['id']}"), 404, "E0000007")


def test_app_user_assignment(sim):
    s = sim.state()
    app = s["apps"][5]
    taken = {u["id"] for u in app["users"]}
    u = next(x for x in s["users"] if x["status"] == "ACTIVE" and x["id"] not in taken)
    with client(sim) as c:
        r = c.post(f"/api/v1/apps/{app['id']}/users",
                   json={"id": u["id"], "scope": "USER", "credentials": {"userName": "pilot-1"}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["id"], body["scope"], body["credentials"]["userName"]) == (u["id"], "USER", "pilot-1")
        after = next(a for a in sim.state()["apps"] if a["id"] == app["id"])
        assert {"id": u["id"], "scope": "USER"} in after["users"]
        assert c.delete(f"/api/v1/apps/{app['id']}/users/{u['id']}").status_code == 204
        _err(c.delete(f"/api/v1/apps/{app['id']}/users/{u['id']}"), 404, "E0000007")
        _err(c.post(f"/api/v1/apps/{app['id']}/users", json={"scope": "USER"}), 400, "E0000001")
        _err(c.post(f"/api/v1/apps/{app['id']}/users", json={"id": "00unope"}), 404, "E0000007")
        _err(c.post("/api/v1/apps/0oanope/users", json={"id": u["id"]}), 404, "E0000007")
        gone = next(x for x in s["users"] if x["status"] == "DEPROVISIONED")
        _err(c.post(f"/api/v1/apps/{app['id']}/users", json={"id": gone["id"]}), 403, "E0000117")


def test_unassign_user_holding_access_through_a_group_is_refused(sim):
    s = sim.state()
    app = next(a for a in s["apps"] if any(u["scope"] == "GROUP" for u in a["users"]))
    via = next(u["id"] for u in app["users"] if u["scope"] == "GROUP")
    with client(sim) as c:
        body = _err(c.delete(f"/api/v1/apps/{app['id']}/users/{via}"), 403, "E0000046")
        assert body["errorCauses"] and "group" in body["errorCauses"][0]["errorSummary"]
        # a direct assignment on top is still refused while the group grants access
        assert c.post(f"/api/v1/apps/{app['id']}/users", json={"id": via}).status_code == 200
        assert c.get(f"/api/v1/apps/{app['id']}/users/{via}").json()["scope"] == "USER"
        _err(c.delete(f"/api/v1/apps/{app['id']}/users/{via}"), 403, "E0000046")


def test_app_group_assignment(sim):
    s = sim.state()
    app = s["apps"][6]
    g = next(x for x in s["groups"] if x["type"] == "OKTA_GROUP" and x["id"] not in app["groups"]
             and x["members"])
    prior = {u["id"]: u["scope"] for u in app["users"]}
    with client(sim) as c:
        r = c.put(f"/api/v1/apps/{app['id']}/groups/{g['id']}", json={})
        assert r.status_code == 200 and r.json()["id"] == g["id"] and r.json()["profile"] == {}
        after = next(a for a in sim.state()["apps"] if a["id"] == app["id"])
        assert g["id"] in after["groups"]
        scopes = {u["id"]: u["scope"] for u in after["users"]}
        assert {m: scopes.get(m) for m in g["members"]} == {m: prior.get(m, "GROUP") for m in g["members"]}
        assert c.delete(f"/api/v1/apps/{app['id']}/groups/{g['id']}").status_code == 204
        back = next(a for a in sim.state()["apps"] if a["id"] == app["id"])
        assert back["users"] == app["users"] and back["groups"] == app["groups"]
        _err(c.delete(f"/api/v1/apps/{app['id']}/groups/{g['id']}"), 404, "E0000007")
        _err(c.put(f"/api/v1/apps/{app['id']}/groups/00gnope", json={}), 404, "E0000007")


def test_standard_role_assignment_to_user_and_group(sim):
    s = sim.state()
    u = _active_user(s, exclude={r["principal_id"] for r in s["role_assignments"]})
    g = next(x for x in s["groups"] if x["type"] == "OKTA_GROUP"
             and x["id"] not in {r["principal_id"] for r in s["role_assignments"]})
    with client(sim) as c:
        r = c.post(f"/api/v1/users/{u['id']}/roles", json={"type": "USER_ADMIN"})
        assert r.status_code == 201
        ra = r.json()
        assert (ra["type"], ra["label"], ra["assignmentType"], ra["id"]) == (
            "USER_ADMIN", "User Administrator", "USER", "KVJUKUS7IFCE2SKO")
        _err(c.post(f"/api/v1/users/{u['id']}/roles", json={"type": "USER_ADMIN"}), 409, "E0000090")
        _err(c.post(f"/api/v1/users/{u['id']}/roles", json={"type": "NOT_A_ROLE"}), 400, "E0000001")
        assert {"principal_type": "user", "principal_id": u["id"], "type": "USER_ADMIN", "role": None,
                "resource_set": None, "status": "ACTIVE",
                "targets": {"groups": [], "apps": [], "app_instances": []}} in sim.state()["role_assignments"]
        assert u["id"] in {x["id"] for x in c.get("/api/v1/iam/assignees/users").json()["value"]}
        assert c.delete(f"/api/v1/users/{u['id']}/roles/{ra['id']}").status_code == 204
        _err(c.delete(f"/api/v1/users/{u['id']}/roles/{ra['id']}"), 404, "E0000007")
        assert u["id"] not in {x["id"] for x in c.get("/api/v1/iam/assignees/users").json()["value"]}
        r = c.post(f"/api/v1/groups/{g['id']}/roles", json={"type": "HELP_DESK_ADMIN"})
        assert r.status_code == 201 and r.json()["assignmentType"] == "GROUP"
        _err(c.post(f"/api/v1/groups/{g['id']}/roles", json={"type": "HELP_DESK_ADMIN"}), 409, "E0000090")
        if g["members"]:
            inherited = c.get(f"/api/v1/users/{g['members'][0]}/roles").json()
            assert any(x["type"] == "HELP_DESK_ADMIN" and x["assignmentType"] == "GROUP" for x in inherited)
        assert c.delete(f"/api/v1/groups/{g['id']}/roles/{r.json()['id']}").status_code == 204
        assert c.get(f"/api/v1/groups/{g['id']}/roles").json() == []


def test_custom_role_assignment_and_binding_members(sim):
    s = sim.state()
    rs = s["resource_sets"][0]
    binding = rs["bindings"][0]
    u = _active_user(s, exclude={m["id"] for m in binding["members"]})
    g = _okta_group(s)
    with client(sim) as c:
        base = f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{binding['role']}/members"
        r = c.patch(base, json={"additions": [f"{sim.url}/api/v1/users/{u['id']}",
                                              f"{sim.url}/api/v1/groups/{g['id']}"]})
        assert r.status_code == 200, r.text
        members = c.get(base).json()["members"]
        mine = [m for m in members if m["_links"]["member"]["href"].endswith(u["id"])]
        assert len(mine) == 1
        roles = c.get(f"/api/v1/users/{u['id']}/roles").json()
        assert any(x.get("role") == binding["role"] and x["id"] == mine[0]["id"] for x in roles)
        assert c.delete(f"{base}/{mine[0]['id']}").status_code == 204
        _err(c.delete(f"{base}/{mine[0]['id']}"), 404, "E0000007")
        after = next(x for x in sim.state()["resource_sets"] if x["id"] == rs["id"])
        kept = next(b for b in after["bindings"] if b["role"] == binding["role"])["members"]
        assert {"type": "user", "id": u["id"]} not in kept and {"type": "group", "id": g["id"]} in kept
        _err(c.patch(base, json={"additions": ["not a url"]}), 400, "E0000001")
        _err(c.patch(base, json={"additions": [f"{sim.url}/api/v1/users/00unope"]}), 404, "E0000007")
        # the custom-role payload on /users/{id}/roles goes through the same binding
        r = c.post(f"/api/v1/users/{u['id']}/roles",
                   json={"type": "CUSTOM", "role": binding["role"], "resource-set": rs["id"]})
        assert r.status_code == 201 and r.json()["role"] == binding["role"]
        _err(c.post(f"/api/v1/users/{u['id']}/roles",
                    json={"type": "CUSTOM", "role": binding["role"], "resource-set": rs["id"]}), 409, "E0000090")
        assert c.delete(f"/api/v1/users/{u['id']}/roles/{r.json()['id']}").status_code == 204


def test_lifecycle_transitions(sim):
    s = sim.state()
    u = _active_user(s)
    with client(sim) as c:
        def op(name: str, uid: str = u["id"]):
            return c.post(f"/api/v1/users/{uid}/lifecycle/{name}")

        r = op("suspend")
        assert r.status_code == 200 and r.json() == {}
        assert c.get(f"/api/v1/users/{u['id']}").json()["status"] == "SUSPENDED"
        _err(op("suspend"), 400, "E0000001")
        assert op("unsuspend").status_code == 200
        _err(op("unsuspend"), 400, "E0000001")
        _err(op("activate"), 403, "E0000016")
        _err(op("unlock"), 403, "E0000032")
        assert op("deactivate").json() == {}
        assert c.get(f"/api/v1/users/{u['id']}").json()["status"] == "DEPROVISIONED"
        _err(op("deactivate"), 400, "E0000001")
        # deprovisioned users are hidden from the plain list but found by filter
        assert u["id"] not in {x["id"] for x in c.get("/api/v1/users").json()}
        assert u["id"] in {x["id"] for x in c.get("/api/v1/users", params={
            "filter": 'status eq "DEPROVISIONED"'}).json()}
        r = c.post(f"/api/v1/users/{u['id']}/lifecycle/activate", params={"sendEmail": "false"})
        assert r.status_code == 200 and set(r.json()) == {"activationUrl", "activationToken"}
        assert c.get(f"/api/v1/users/{u['id']}").json()["status"] == "ACTIVE"
        _err(op("suspend", "00unope"), 404, "E0000007")
        _err(op("explode"), 404, "E0000008")
        locked = next(x for x in s["users"] if x["status"] == "LOCKED_OUT")
        assert op("unlock", locked["id"]).status_code == 200


def test_create_and_delete_user(sim):
    profile = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "login": "ada@example.com"}
    g = _okta_group(sim.state(), 0)
    with client(sim) as c:
        r = c.post("/api/v1/users", params={"activate": "false"}, json={"profile": profile})
        assert r.status_code == 200 and r.json()["status"] == "STAGED"
        staged = r.json()["id"]
        _err(c.post("/api/v1/users", json={"profile": profile}), 400, "E0000001")   # login taken
        body = _err(c.post("/api/v1/users", json={"profile": {"firstName": "x"}}), 400, "E0000001")
        assert body["errorCauses"]
        p2 = {**profile, "email": "grace@example.com", "login": "grace@example.com"}
        r = c.post("/api/v1/users", params={"activate": "true"},
                   json={"profile": p2, "credentials": {"password": {"value": "Tr0ub4dor&3"}},
                         "groupIds": [g["id"]]})
        assert r.status_code == 200 and r.json()["status"] == "ACTIVE"
        assert "Tr0ub4dor" not in r.text
        active = r.json()["id"]
        st = sim.state()
        assert active in next(x for x in st["groups"] if x["id"] == g["id"])["members"]
        everyone = next(x for x in st["groups"] if x["type"] == "BUILT_IN")
        assert active in everyone["members"]
        # first DELETE deactivates, the second deletes
        assert c.delete(f"/api/v1/users/{active}").status_code == 204
        assert c.get(f"/api/v1/users/{active}").json()["status"] == "DEPROVISIONED"
        assert c.delete(f"/api/v1/users/{active}").status_code == 204
        _err(c.get(f"/api/v1/users/{active}"), 404, "E0000007")
        st = sim.state()
        assert active not in {u["id"] for u in st["users"]}
        assert all(active not in x["members"] for x in st["groups"])
        assert c.get(f"/api/v1/users/{staged}").status_code == 200
        _err(c.post("/api/v1/users", content=b'{"profile": ', headers={"Content-Type": "application/json"}),
             400, "E0000003")


def _raw(sim, request: bytes) -> bytes:
    host, port = sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_bodyless_post_without_content_length_gets_411(sim):
    from tests.support.sim import SIM_TOKEN

    s = sim.state()
    g = _okta_group(s)
    u = s["users"][0]
    head = _raw(sim, (f"PUT /api/v1/groups/{g['id']}/users/{u['id']} HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: SSWS {SIM_TOKEN}\r\nConnection: close\r\n\r\n").encode())
    assert head.startswith(b"HTTP/1.1 411"), head[:200]
    assert b"X-Rate-Limit-Limit" in head and b"X-Okta-Request-Id" in head
    head = _raw(sim, (f"PUT /api/v1/groups/{g['id']}/users/{u['id']} HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: SSWS {SIM_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").encode())
    assert head.startswith(b"HTTP/1.1 204"), head[:200]


def test_unknown_paths_and_methods(sim):
    with client(sim) as c:
        for path in ("/api/v1/nothing", "/api/v2/users", "/whatever"):
            r = c.get(path)
            _err(r, 404, "E0000008")
            assert "x-rate-limit-limit" in r.headers and "x-okta-request-id" in r.headers
        _err(c.delete("/api/v1/users"), 405, "E0000022")
        _err(c.patch("/api/v1/groups", json={}), 405, "E0000022")
        _err(c.request("TRACE", "/api/v1/users"), 405, "E0000022")
        _err(c.request("BREW", "/api/v1/users"), 405, "E0000022")
        _err(c.post("/api/v1/users", params={"activate": "maybe"}, json={}), 400, "E0000001")
        uid = sim.state()["users"][0]["id"]
        _err(c.post(f"/api/v1/users/{uid}/lifecycle/activate", params={"sendEmail": "yes"}), 400, "E0000001")
        app = sim.state()["apps"][0]["id"]
        _err(c.get(f"/api/v1/apps/{app}/users", params={"expand": "everything"}), 400, "E0000001")
        _err(c.post("/api/v1/groups", content=b"[1,2]"), 400, "E0000003")
        _err(c.post("/api/v1/groups", content=b"\xff\xfe"), 400, "E0000003")


def test_writes_invalidate_cached_pages(sim):
    s = sim.state()
    g = _okta_group(s)
    outsider = next(u for u in s["users"] if u["id"] not in g["members"])
    with client(sim) as c:
        before = c.get(f"/api/v1/groups/{g['id']}/users").json()
        assert c.put(f"/api/v1/groups/{g['id']}/users/{outsider['id']}").status_code == 204
        after = c.get(f"/api/v1/groups/{g['id']}/users").json()
        assert len(after) == len(before) + 1
        assert c.post(f"/api/v1/users/{outsider['id']}/lifecycle/deactivate").status_code in (200, 400)
        page = c.get(f"/api/v1/groups/{g['id']}/users").json()
        assert next(x for x in page if x["id"] == outsider["id"])["status"] == "DEPROVISIONED"


def test_create_and_delete_binding(sim):
    s = sim.state()
    rs = s["resource_sets"][0]
    bound = {b["role"] for b in rs["bindings"]}
    role = next(r for r in s["custom_roles"] if r["id"] not in bound)
    u = _active_user(s)
    with client(sim) as c:
        base = f"/api/v1/iam/resource-sets/{rs['id']}/bindings"
        r = c.post(base, json={"role": role["id"], "members": [f"{sim.url}/api/v1/users/{u['id']}"]})
        assert r.status_code == 200 and r.json()["id"] == role["id"]
        assert role["id"] in {b["id"] for b in c.get(base).json()["roles"]}
        assert c.get(f"{base}/{role['id']}").status_code == 200
        assert any(x.get("role") == role["id"] for x in c.get(f"/api/v1/users/{u['id']}/roles").json())
        body = _err(c.post(base, json={"role": "cr0nope", "members": [f"{sim.url}/api/v1/users/{u['id']}"]}),
                    404, "E0000007")
        assert body["errorSummary"].endswith("(CustomRole)")
        assert c.delete(f"{base}/{role['id']}").status_code == 204
        _err(c.get(f"{base}/{role['id']}/members"), 404, "E0000007")
        _err(c.delete(f"{base}/{role['id']}"), 404, "E0000007")
        assert not any(x.get("role") == role["id"] for x in c.get(f"/api/v1/users/{u['id']}/roles").json())
        after = next(x for x in sim.state()["resource_sets"] if x["id"] == rs["id"])
        assert role["id"] not in {b["role"] for b in after["bindings"]}


def test_update_user_profile(sim):
    s = sim.state()
    u = _active_user(s)
    other = next(x for x in s["users"] if x["id"] != u["id"])
    with client(sim) as c:
        r = c.post(f"/api/v1/users/{u['id']}", json={"profile": {"title": "Captain"}})
        assert r.status_code == 200
        assert r.json()["profile"]["title"] == "Captain" and r.json()["profile"]["login"] == u["profile"]["login"]
        new = {"firstName": "A", "lastName": "B", "email": "ab@example.com", "login": "ab@example.com"}
        r = c.put(f"/api/v1/users/{u['id']}", json={"profile": new})
        assert r.status_code == 200 and "title" not in r.json()["profile"]
        assert c.get("/api/v1/users/ab@example.com").json()["id"] == u["id"]
        _err(c.get(f"/api/v1/users/{u['profile']['login']}"), 404, "E0000007")
        _err(c.post(f"/api/v1/users/{u['id']}", json={"profile": {"login": other["profile"]["login"]}}),
             400, "E0000001")
        _err(c.put(f"/api/v1/users/{u['id']}", json={"profile": {"firstName": "only"}}), 400, "E0000001")
        assert next(x for x in sim.state()["users"] if x["id"] == u["id"])["profile"]["login"] == "ab@example.com"


def _sim_user(sim, uid: str) -> dict:
    return next(u for u in sim.state()["users"] if u["id"] == uid)


def test_create_user_account_choices(sim):
    """Okta's POST /users choices: activate, a password (checked against the policy), nextLogin and a
    federated provider decide the status; only a passwordless activation e-mails the user."""
    def profile(name: str) -> dict:
        return {"firstName": name, "lastName": "Choice", "email": f"{name}@example.com", "login": f"{name}@example.com"}
    with client(sim) as c:
        r = c.post("/api/v1/users", params={"activate": "false"}, json={"profile": profile("staged")})
        assert r.json()["status"] == "STAGED" and r.json()["activated"] is None
        assert _sim_user(sim, r.json()["id"])["emails_sent"] == []
        r = c.post("/api/v1/users", params={"activate": "true"}, json={"profile": profile("nopass")})
        assert r.json()["status"] == "PROVISIONED"
        assert _sim_user(sim, r.json()["id"])["emails_sent"] == ["activation"]
        strong = {"password": {"value": "Str0ng-Secret"}}
        r = c.post("/api/v1/users", params={"activate": "true", "nextLogin": "changePassword"},
                   json={"profile": profile("expired"), "credentials": strong})
        assert r.json()["status"] == "PASSWORD_EXPIRED" and r.json()["passwordChanged"]
        assert _sim_user(sim, r.json()["id"])["emails_sent"] == []
        fed = {"provider": {"type": "FEDERATION", "name": "FEDERATION"}}
        r = c.post("/api/v1/users", params={"activate": "true", "provider": "true"},
                   json={"profile": profile("fed"), "credentials": fed})
        assert r.json()["status"] == "ACTIVE" and r.json()["credentials"]["provider"]["type"] == "FEDERATION"
        assert _sim_user(sim, r.json()["id"])["has_password"] is False
        # the password policy, and choices that do not go together
        for weak in ("short1A", "alllowercase1", "NoDigitsHere", "MyWeak1Pass"):
            body = _err(c.post("/api/v1/users", json={"profile": profile("weak"),
                                                      "credentials": {"password": {"value": weak}}}), 400, "E0000001")
            assert body["errorCauses"][0]["errorSummary"].startswith("password: Password requirements")
        _err(c.post("/api/v1/users", json={"profile": profile("dana"),
                                           "credentials": {"password": {"value": "Dana-1234"}}}), 400, "E0000001")
        _err(c.post("/api/v1/users", params={"activate": "false", "nextLogin": "changePassword"},
                    json={"profile": profile("x1"), "credentials": strong}), 400, "E0000001")
        _err(c.post("/api/v1/users", params={"nextLogin": "changePassword"}, json={"profile": profile("x2")}),
             400, "E0000001")
        _err(c.post("/api/v1/users", params={"provider": "true"},
                    json={"profile": profile("x3"), "credentials": {**fed, **strong}}), 400, "E0000001")
        assert not {"weak@example.com", "dana@example.com", "x1@example.com"} & {
            u["profile"]["login"] for u in sim.state()["users"]}


def test_activation_email_follows_send_email(sim):
    with client(sim) as c:
        quiet, loud = (c.post("/api/v1/users", params={"activate": "false"}, json={"profile": {
            "firstName": n, "lastName": "M", "email": f"{n}@example.com", "login": f"{n}@example.com"}}).json()["id"]
            for n in ("quiet", "loud"))
        r = c.post(f"/api/v1/users/{quiet}/lifecycle/activate", params={"sendEmail": "false"})
        assert r.status_code == 200 and r.json()["activationUrl"]   # the link comes back instead
        assert c.post(f"/api/v1/users/{loud}/lifecycle/activate").json() == {}
    assert _sim_user(sim, quiet)["emails_sent"] == [] and _sim_user(sim, quiet)["status"] == "PROVISIONED"
    assert _sim_user(sim, loud)["emails_sent"] == ["activation"]
