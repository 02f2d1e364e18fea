"""Targets of admin role assignments (groups, catalog apps, app instances) in the simulator: the
recorded Okta flow, users and groups, app targets, Okta's errors, /__sim/state and the System Log."""

from __future__ import annotations

import pytest

from tests.support.recordings import bodies
from tests.support.simhttp import client, okta_error

ARGS = ["--users", "80", "--groups", "12", "--apps", "8", "--seed", "9", "--rate-limit-scale", "100"]


@pytest.fixture
def sim(oktasim):
    return oktasim(ARGS)


def _targets(state: dict, ptype: str, pid: str, role_type: str) -> dict:
    return next(r["targets"] for r in state["role_assignments"]
                if (r["principal_type"], r["principal_id"], r["type"]) == (ptype, pid, role_type))


def _fresh(state: dict, ptype: str) -> str:
    held = {(r["principal_type"], r["principal_id"]) for r in state["role_assignments"]}
    if ptype == "user":
        return next(u["id"] for u in state["users"] if u["status"] == "ACTIVE" and ("user", u["id"]) not in held)
    return next(g["id"] for g in state["groups"] if g["type"] == "OKTA_GROUP" and ("group", g["id"]) not in held)


@pytest.mark.parametrize("ptype", ["user", "group"])
def test_group_targets_as_recorded(sim, ptype):
    """The recorded test_group_target_add/remove flow: 204 on PUT/DELETE, the target groups as Group objects."""
    recorded = bodies("GET", r"/api/v1/groups/[^/]+/roles/[^/]+/targets/groups")
    assert recorded and all(isinstance(b, list) and b for b in recorded)
    st = sim.state()
    pid = _fresh(st, ptype)
    others = [g["id"] for g in st["groups"] if g["type"] == "OKTA_GROUP" and g["id"] != pid][:2]
    base = f"/api/v1/{ptype}s/{pid}/roles"
    with client(sim) as c:
        ra = c.post(base, json={"type": "USER_ADMIN"}).json()
        assert ra["id"] == "KVJUKUS7IFCE2SKO"   # as recorded
        assert c.get(f"{base}/{ra['id']}/targets/groups").json() == []   # org-wide
        for gid in others:
            r = c.put(f"{base}/{ra['id']}/targets/groups/{gid}", content=b"")
            assert r.status_code == 204 and r.content == b""
        assert c.put(f"{base}/{ra['id']}/targets/groups/{others[0]}", content=b"").status_code == 204
        listed = c.get(f"{base}/{ra['id']}/targets/groups").json()
        assert [g["id"] for g in listed] == others
        assert set(listed[0]) == set(recorded[0][0])
        assert _targets(sim.state(), ptype, pid, "USER_ADMIN")["groups"] == others
        assert c.delete(f"{base}/{ra['id']}/targets/groups/{others[0]}").status_code == 204
        assert [g["id"] for g in c.get(f"{base}/{ra['id']}/targets/groups").json()] == others[1:]
        # The last target cannot go (the role would become org-wide); unknown ones are 404s.
        okta_error(c.delete(f"{base}/{ra['id']}/targets/groups/{others[1]}"), 400, "E0000001")
        okta_error(c.delete(f"{base}/{ra['id']}/targets/groups/{others[0]}"), 404, "E0000007")
        okta_error(c.put(f"{base}/{ra['id']}/targets/groups/00gnosuchgroup"), 404, "E0000007")
        okta_error(c.get(f"{base}/KVJUKUS7IFCE2SKOXX/targets/groups"), 404, "E0000007")
        # A role Okta does not scope to groups.
        ro = c.post(base, json={"type": "READ_ONLY_ADMIN"}).json()
        okta_error(c.put(f"{base}/{ro['id']}/targets/groups/{others[0]}"), 400, "E0000091")
        okta_error(c.get(f"{base}/{ro['id']}/targets/catalog/apps"), 400, "E0000091")


def test_app_and_instance_targets(sim):
    st = sim.state()
    uid = _fresh(st, "user")
    app = st["apps"][0]
    other = next(a for a in st["apps"] if a["id"] != app["id"])
    base = f"/api/v1/users/{uid}/roles"
    with client(sim) as c:
        ra = c.post(base, json={"type": "APP_ADMIN"}).json()
        name = c.get(f"/api/v1/apps/{app['id']}").json()["name"]
        other_name = c.get(f"/api/v1/apps/{other['id']}").json()["name"]
        assert c.put(f"{base}/{ra['id']}/targets/catalog/apps/{name}", content=b"").status_code == 204
        r = c.put(f"{base}/{ra['id']}/targets/catalog/apps/{other_name}/{other['id']}", content=b"")
        assert r.status_code == 204
        listed = c.get(f"{base}/{ra['id']}/targets/catalog/apps").json()
        assert [(a["name"], a.get("id")) for a in listed] == [(name, None), (other_name, other["id"])]
        assert _targets(sim.state(), "user", uid, "APP_ADMIN") == {
            "groups": [], "apps": [name], "app_instances": [other["id"]]}
        okta_error(c.put(f"{base}/{ra['id']}/targets/catalog/apps/{name}/{other['id']}"), 404, "E0000007")
        okta_error(c.put(f"{base}/{ra['id']}/targets/catalog/apps/nosuchapp"), 404, "E0000007")
        assert c.delete(f"{base}/{ra['id']}/targets/catalog/apps/{name}").status_code == 204
        okta_error(c.delete(f"{base}/{ra['id']}/targets/catalog/apps/{other_name}/{other['id']}"), 400, "E0000001")
        okta_error(c.put(f"{base}/{ra['id']}/targets/groups/{st['groups'][0]['id']}"), 400, "E0000091")


def test_target_changes_are_logged(sim):
    st = sim.state()
    uid = _fresh(st, "user")
    gid = next(g["id"] for g in st["groups"] if g["type"] == "OKTA_GROUP")
    with client(sim) as c:
        ra = c.post(f"/api/v1/users/{uid}/roles", json={"type": "HELP_DESK_ADMIN"}).json()
        before = len(c.get("/api/v1/logs", params={"filter": 'eventType eq "user.account.privilege.grant"'}).json())
        c.put(f"/api/v1/users/{uid}/roles/{ra['id']}/targets/groups/{gid}", content=b"")
        events = c.get("/api/v1/logs", params={"filter": 'eventType eq "user.account.privilege.grant"'}).json()
        assert len(events) == before + 1 and events[-1]["target"][0]["id"] == uid
