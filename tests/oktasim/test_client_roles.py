"""Admin roles of OAuth service apps in the simulator (/oauth2/v1/clients/{clientId}/roles): the
seeded assignments, Okta's shapes (a client's POST answers 200, `assignmentType: CLIENT`, the
assignee a client URL), targets, custom roles through resource sets, errors, the rate-limit bucket
and the System Log events."""

from __future__ import annotations

import pytest

from tests.support.simhttp import client, okta_error

ARGS = ["--users", "60", "--groups", "12", "--apps", "18", "--seed", "5", "--rate-limit-scale", "100"]
BUCKET = "/oauth2/v1/clients"


@pytest.fixture
def sim(oktasim):
    return oktasim(ARGS)


def _services(state: dict) -> list[dict]:
    found = [a for a in state["apps"] if a["application_type"] == "service"]
    assert len(found) >= 2, "the generated org has too few service apps"
    return found


def test_service_apps_are_oidc_clients_holding_the_seeded_roles(sim):
    state = sim.state()
    services = _services(state)
    with client(sim) as c:
        app = c.get(f"/api/v1/apps/{services[0]['id']}").json()
        assert (app["name"], app["signOnMode"]) == ("oidc_client", "OPENID_CONNECT")
        assert app["settings"]["oauthClient"]["application_type"] == "service"
        assert app["credentials"]["oauthClient"]["client_id"] == app["id"]
        listed = c.get("/api/v1/apps", params={"filter": 'name eq "oidc_client"'}).json()
        assert {a["id"] for a in services} <= {a["id"] for a in listed}
        for svc in services:
            roles = c.get(f"/oauth2/v1/clients/{svc['id']}/roles")
            assert roles.status_code == 200, roles.text
            seeded = [r for r in state["role_assignments"]
                      if (r["principal_type"], r["principal_id"]) == ("client", svc["id"])]
            assert sorted(r["type"] for r in roles.json()) == sorted(r["type"] for r in seeded) != []
            for r in roles.json():
                assert r["assignmentType"] == "CLIENT" and r["status"] == "ACTIVE"
                assert r["_links"]["assignee"]["href"] == f"{sim.url}/oauth2/v1/clients/{svc['id']}"
                if r["type"] in ("CUSTOM", "WORKFLOWS_ADMIN"):   # the custom-role shape
                    assert r["role"] and r["resource-set"]
        assert not any(svc["users"] or svc["groups"] for svc in services)


def test_assign_get_and_unassign_a_standard_role(sim):
    svc = _services(sim.state())[0]["id"]
    base = f"/oauth2/v1/clients/{svc}/roles"
    with client(sim) as c:
        created = c.post(base, json={"type": "REPORT_ADMIN"})
        assert created.status_code == 200, created.text   # 200, not the 201 of users and groups
        ra = created.json()
        assert (ra["type"], ra["label"], ra["assignmentType"]) == ("REPORT_ADMIN", "Report Administrator", "CLIENT")
        assert c.get(f"{base}/{ra['id']}").json() == ra
        okta_error(c.post(base, json={"type": "REPORT_ADMIN"}), 409, "E0000090")
        okta_error(c.post(base, json={"type": "NOT_A_ROLE"}), 400, "E0000001")
        okta_error(c.post(base, json={}), 400, "E0000001")
        assert c.delete(f"{base}/{ra['id']}").status_code == 204
        okta_error(c.delete(f"{base}/{ra['id']}"), 404, "E0000007")
        okta_error(c.get(f"{base}/{ra['id']}"), 404, "E0000007")
        assert "REPORT_ADMIN" not in {r["type"] for r in c.get(base).json()}


def test_only_service_apps_hold_roles(sim):
    state = sim.state()
    web = next(a for a in state["apps"] if a["application_type"] == "web")
    saml = next(a for a in state["apps"] if a["signOnMode"] == "SAML_2_0")
    with client(sim) as c:
        body = okta_error(c.post(f"/oauth2/v1/clients/{web['id']}/roles", json={"type": "READ_ONLY_ADMIN"}), 400, "E0000001")
        assert "service apps" in body["errorCauses"][0]["errorSummary"]
        okta_error(c.get(f"/oauth2/v1/clients/{saml['id']}/roles"), 404, "E0000007")
        assert "(OAuth2Client)" in okta_error(c.get("/oauth2/v1/clients/0oanope/roles"), 404, "E0000007")["errorSummary"]


def test_targets_of_a_client_role(sim):
    state = sim.state()
    svc = _services(state)[0]["id"]
    gid = next(g["id"] for g in state["groups"] if g["type"] == "OKTA_GROUP")
    base = f"/oauth2/v1/clients/{svc}/roles"
    with client(sim) as c:
        ra = c.post(base, json={"type": "GROUP_MEMBERSHIP_ADMIN"}).json()
        assert c.get(f"{base}/{ra['id']}/targets/groups").json() == []
        assert c.put(f"{base}/{ra['id']}/targets/groups/{gid}", content=b"").status_code == 204
        assert [g["id"] for g in c.get(f"{base}/{ra['id']}/targets/groups").json()] == [gid]
        okta_error(c.delete(f"{base}/{ra['id']}/targets/groups/{gid}"), 400, "E0000001")   # the last one stays
        okta_error(c.get(f"{base}/{ra['id']}/targets/catalog/apps"), 400, "E0000091")
    held = next(r for r in sim.state()["role_assignments"]
                if (r["principal_type"], r["principal_id"], r["type"]) == ("client", svc, "GROUP_MEMBERSHIP_ADMIN"))
    assert held["targets"]["groups"] == [gid]


def test_custom_roles_through_resource_sets(sim):
    state = sim.state()
    svc = _services(state)[0]["id"]
    rs = state["resource_sets"][0]
    role = next(r["id"] for r in state["custom_roles"] if r["type"] == "CUSTOM")
    with client(sim) as c:
        created = c.post(f"/oauth2/v1/clients/{svc}/roles", json={"type": "CUSTOM", "role": role, "resource-set": rs["id"]})
        assert created.status_code == 200, created.text
        member = created.json()
        assert (member["type"], member["role"], member["resource-set"]) == ("CUSTOM", role, rs["id"])
        members = c.get(f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{role}/members").json()["members"]
        assert f"{sim.url}/oauth2/v1/clients/{svc}" in {m["_links"]["member"]["href"] for m in members}
        # A client URL in a bindings request names the client, like a user or group URL.
        other = _services(state)[1]["id"]
        rs2, b2 = next((s, b) for s in state["resource_sets"] for b in s["bindings"]
                       if {"type": "client", "id": other} not in b["members"])
        path = f"/api/v1/iam/resource-sets/{rs2['id']}/bindings/{b2['role']}/members"
        assert c.patch(path, json={"additions": [f"{sim.url}/oauth2/v1/clients/{other}"]}).status_code == 200
        assert any(r.get("role") == b2["role"] for r in c.get(f"/oauth2/v1/clients/{other}/roles").json())
        okta_error(c.patch(path, json={"additions": [f"{sim.url}/oauth2/v1/clients/0oanope"]}), 404, "E0000007")
        assert c.delete(f"/oauth2/v1/clients/{svc}/roles/{member['id']}").status_code == 204
        members = c.get(f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{role}/members").json()["members"]
        assert f"{sim.url}/oauth2/v1/clients/{svc}" not in {m["_links"]["member"]["href"] for m in members}


def test_own_bucket_and_privilege_events(sim):
    svc = _services(sim.state())[0]["id"]
    sim.reset_stats()
    with client(sim) as c:
        r = c.get(f"/oauth2/v1/clients/{svc}/roles")
        assert r.headers["X-Rate-Limit-Limit"] == str(sim.stats()["buckets"][BUCKET]["limit"])
        ra = c.post(f"/oauth2/v1/clients/{svc}/roles", json={"type": "MOBILE_ADMIN"}).json()
        held = [x["id"] for x in c.get(f"/oauth2/v1/clients/{svc}/roles").json()]
        for rid in held:   # the revoke event only when the last one goes
            assert c.delete(f"/oauth2/v1/clients/{svc}/roles/{rid}").status_code == 204
        events = c.get("/api/v1/logs", params={"filter": 'eventType sw "app.oauth2.client.privilege"'}).json()
    assert sim.stats()["buckets"][BUCKET]["requests"] == 3 + len(held)
    assert ra["id"] in held
    kinds = [e["eventType"] for e in events]
    assert kinds == ["app.oauth2.client.privilege.grant"] * len(held) + ["app.oauth2.client.privilege.revoke"]
    assert all(e["target"][0]["type"] == "PublicClientApp" and e["target"][0]["id"] == svc for e in events)
    assert "Mobile Administrator" in events[0]["debugContext"]["debugData"]["privilegeGranted"]
