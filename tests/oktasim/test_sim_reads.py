"""Reads: the generated org's realism, search/filter/q, expand=stats, single objects, roles, and
the errors Okta gives for bad queries."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from oktasim.model import USER_STATUSES
from tests.support.simhttp import client, walk

ARGS = ["--users", "300", "--groups", "40", "--apps", "25", "--seed", "3", "--rate-limit-scale", "100"]


@pytest.fixture
def sim(oktasim):
    return oktasim(ARGS)


def test_generated_org_looks_like_a_real_one(sim):
    s = sim.state()
    statuses = Counter(u["status"] for u in s["users"])
    assert set(statuses) == set(USER_STATUSES)
    assert statuses["ACTIVE"] > len(s["users"]) // 2
    domains = {u["profile"]["email"].split("@")[1] for u in s["users"]}
    assert len(domains) >= 3
    assert any(u["profile"]["secondEmail"] for u in s["users"])
    types = Counter(g["type"] for g in s["groups"])
    assert types["BUILT_IN"] == 1 and types["OKTA_GROUP"] > 0 and types["APP_GROUP"] > 0
    everyone = next(g for g in s["groups"] if g["type"] == "BUILT_IN")
    assert everyone["profile"]["name"] == "Everyone"
    assert everyone["members"] == [u["id"] for u in s["users"]]
    sizes = sorted(len(g["members"]) for g in s["groups"] if g["type"] != "BUILT_IN")
    assert sizes[0] == 0 and sizes[-1] >= 100 and sizes[len(sizes) // 2] < 50   # skewed
    assert {a["status"] for a in s["apps"]} == {"ACTIVE", "INACTIVE"}
    assert len({a["signOnMode"] for a in s["apps"]}) >= 4
    scopes = {u["scope"] for a in s["apps"] for u in a["users"]}
    assert scopes == {"USER", "GROUP"}
    kinds = {(r["principal_type"], r["type"] == "CUSTOM") for r in s["role_assignments"]}
    assert ("user", False) in kinds and ("group", False) in kinds and ("user", True) in kinds
    labels = {r["label"] for r in s["custom_roles"]}
    assert {"Workflows Administrator", "Access Certifications Administrator",
            "Access Requests Administrator"} <= labels
    user_ids = {u["id"] for u in s["users"]}
    assert s["api_tokens"] and all(t["userId"] in user_ids for t in s["api_tokens"])


def test_same_seed_same_org(oktasim):
    sims = [oktasim(["--users", "60", "--seed", "11"]), oktasim(["--users", "60", "--seed", "11"])]
    a, b = (s.state() for s in sims)
    assert a == b
    pages = []
    for s in sims:
        app = next(x for x in s.state()["apps"] if x["users"])
        with client(s) as c:
            body = c.get(f"/api/v1/apps/{app['id']}/users").text
            pages.append(body.replace(s.url, "BASE"))
    assert pages[0] == pages[1]
    c_ = oktasim(["--users", "60", "--seed", "12"]).state()
    assert [u["id"] for u in a["users"]] != [u["id"] for u in c_["users"]]


def test_user_search_filter_and_q(sim):
    s = sim.state()
    by_status = Counter(u["status"] for u in s["users"])
    with client(sim) as c:
        items, _ = walk(c, "/api/v1/users", {"search": 'status eq "DEPROVISIONED"', "limit": 5})
        assert len(items) == by_status["DEPROVISIONED"] and all(u["status"] == "DEPROVISIONED" for u in items)
        items, _ = walk(c, "/api/v1/users", {"search": "status pr"})
        assert len(items) == len(s["users"])                 # search includes DEPROVISIONED
        items, _ = walk(c, "/api/v1/users", {"filter": 'status eq "SUSPENDED" or status eq "LOCKED_OUT"'})
        assert len(items) == by_status["SUSPENDED"] + by_status["LOCKED_OUT"]
        target = s["users"][5]
        email = target["profile"]["email"]
        r = c.get("/api/v1/users", params={"search": f'profile.email eq "{email.upper()}"'})
        assert [u["id"] for u in r.json()] == [target["id"]]  # values are case-insensitive
        r = c.get("/api/v1/users", params={"filter": f'profile.login eq "{target["profile"]["login"]}"'})
        assert [u["id"] for u in r.json()] == [target["id"]]
        dom = email.split("@")[1]
        r = c.get("/api/v1/users", params={"search": f'profile.email co "{dom}" and status eq "ACTIVE"'})
        assert r.status_code == 200 and all(dom in u["profile"]["email"] for u in r.json())
        first = target["profile"]["firstName"]
        r = c.get("/api/v1/users", params={"q": first[:3]})
        assert r.status_code == 200 and "link" not in r.headers and 0 < len(r.json()) <= 10
        assert all(u["status"] != "DEPROVISIONED" for u in r.json())
        created = sorted(u["id"] for u in s["users"])
        assert created
        r = c.get("/api/v1/users", params={"search": 'lastUpdated gt "2100-01-01T00:00:00.000Z"'})
        assert r.json() == []


@pytest.mark.parametrize(("params", "code"), [
    ({"search": 'status eq "ACTIVE"', "filter": 'status eq "ACTIVE"'}, "E0000033"),
    ({"search": "status eq"}, "E0000031"),
    ({"search": 'status ne "ACTIVE"'}, "E0000031"),
    ({"search": '(status eq "ACTIVE"'}, "E0000031"),
    ({"search": 'profile.city co "x"'}, "E0000031"),
    ({"filter": 'profile.city eq "x"'}, "E0000094"),
    ({"filter": 'status sw "A"'}, "E0000094"),
    ({"filter": 'not status eq "ACTIVE"'}, "E0000094"),
])
def test_bad_user_queries(sim, params, code):
    with client(sim) as c:
        r = c.get("/api/v1/users", params=params)
        assert r.status_code == 400
        assert r.json()["errorCode"] == code
        assert r.headers["content-type"].startswith("application/json")


def test_get_user_by_id_and_login_and_unknown(sim):
    u = sim.state()["users"][2]
    with client(sim) as c:
        a = c.get(f"/api/v1/users/{u['id']}").json()
        b = c.get(f"/api/v1/users/{u['profile']['login']}").json()
        quoted = u["profile"]["login"].replace("@", "%40")
        assert c.get(f"/api/v1/users/{quoted}").json() == a
        assert a == b and a["id"] == u["id"]
        assert "self" in a["_links"] and "type" in a["_links"] and "schema" in a["_links"]
        r = c.get("/api/v1/users/00unope")
        assert r.status_code == 404
        assert r.json()["errorSummary"] == "Not found: Resource not found: 00unope (User)"


def test_omit_credentials(sim):
    with client(sim) as c:
        full = c.get("/api/v1/users", params={"limit": 3}).json()
        assert all("credentials" in u for u in full)
        r = c.get("/api/v1/users", params={"limit": 3}, headers={
            "Content-Type": "application/json; okta-response=omitCredentials,omitCredentialsLinks"})
        assert r.status_code == 200 and all("credentials" not in u for u in r.json())
        assert [u["id"] for u in r.json()] == [u["id"] for u in full]


def test_groups_stats_filter_q_and_get(sim):
    s = sim.state()
    with client(sim) as c:
        groups = c.get("/api/v1/groups", params={"expand": "stats"}).json()
        counts = {g["id"]: g["_embedded"]["stats"]["usersCount"] for g in groups}
        assert counts == {g["id"]: len(g["members"]) for g in s["groups"]}
        apps_count = {g["id"]: g["_embedded"]["stats"]["appsCount"] for g in groups}
        assert apps_count == {g["id"]: sum(g["id"] in a["groups"] for a in s["apps"]) for g in s["groups"]}
        app_groups = c.get("/api/v1/groups", params={"filter": 'type eq "APP_GROUP"'}).json()
        assert {g["id"] for g in app_groups} == {g["id"] for g in s["groups"] if g["type"] == "APP_GROUP"}
        assert all(g["objectClass"] == ["okta:windows_security_principal"] and "source" in g["_links"]
                   for g in app_groups)
        embedded = c.get("/api/v1/groups", params={"filter": 'type eq "APP_GROUP"', "expand": "app"}).json()
        assert all(g["_embedded"]["app"]["id"] == g["_links"]["source"]["href"].rsplit("/", 1)[1]
                   for g in embedded)
        r = c.get("/api/v1/groups", params={"q": "Every"})
        assert [g["profile"]["name"] for g in r.json()] == ["Everyone"] and "link" not in r.headers
        g = s["groups"][3]
        one = c.get(f"/api/v1/groups/{g['id']}").json()
        assert one["id"] == g["id"] and one["profile"] == g["profile"]
        assert c.get("/api/v1/groups/00gnope").json()["errorSummary"].endswith("(UserGroup)")
        assert c.get("/api/v1/groups", params={"filter": 'name eq "x"'}).json()["errorCode"] == "E0000094"
        assert c.get("/api/v1/groups", params={"expand": "nonsense"}).json()["errorCode"] == "E0000001"


def test_apps_filter_and_get(sim):
    s = sim.state()
    with client(sim) as c:
        active, _ = walk(c, "/api/v1/apps", {"filter": 'status eq "ACTIVE"'})
        assert {a["id"] for a in active} == {a["id"] for a in s["apps"] if a["status"] == "ACTIVE"}
        inactive, _ = walk(c, "/api/v1/apps", {"filter": 'status eq "INACTIVE"'})
        assert inactive and all(a["status"] == "INACTIVE" for a in inactive)
        uid = s["apps"][4]["users"][0]["id"]
        mine, _ = walk(c, "/api/v1/apps", {"filter": f'user.id eq "{uid}"'})
        assert {a["id"] for a in mine} == {a["id"] for a in s["apps"] if uid in {u["id"] for u in a["users"]}}
        a = s["apps"][0]
        one = c.get(f"/api/v1/apps/{a['id']}").json()
        assert (one["label"], one["status"], one["signOnMode"]) == (a["label"], a["status"], a["signOnMode"])
        assert one["name"] == "saasure"
        r = c.get("/api/v1/apps/0oanope")
        assert r.status_code == 404 and r.json()["errorSummary"].endswith("(AppInstance)")
        r = c.get("/api/v1/apps", params={"expand": "user/id,group/id"})
        assert r.status_code == 400 and r.json()["errorCode"] == "E0000001"
        r = c.get("/api/v1/apps", params={"filter": 'status eq "ACTIVE" or status eq "INACTIVE"'})
        assert r.status_code == 400 and r.json()["errorCode"] == "E0000094"


def test_app_user_group_scope_links(sim):
    s = sim.state()
    app = next(a for a in s["apps"] if any(u["scope"] == "GROUP" for u in a["users"]))
    with client(sim) as c:
        users, _ = walk(c, f"/api/v1/apps/{app['id']}/users", {"limit": 500})
        for u in users:
            assert ("group" in u["_links"]) == (u["scope"] == "GROUP")
            assert u["credentials"]["userName"]
        one = users[0]
        r = c.get(f"/api/v1/apps/{app['id']}/users/{one['id']}")
        assert r.json()["id"] == one["id"] and r.json()["scope"] == one["scope"]
        g = app["groups"][0]
        r = c.get(f"/api/v1/apps/{app['id']}/groups/{g}")
        assert r.status_code == 200 and r.json()["id"] == g and isinstance(r.json()["priority"], int)


def test_roles_of_users_and_groups(sim):
    s = sim.state()
    standard = [r for r in s["role_assignments"] if r["role"] is None]
    with client(sim) as c:
        ra = next(r for r in standard if r["principal_type"] == "user")
        roles = c.get(f"/api/v1/users/{ra['principal_id']}/roles").json()
        assert any(x["type"] == ra["type"] and x["assignmentType"] == "USER" for x in roles)
        ga = next(r for r in standard if r["principal_type"] == "group")
        groles = c.get(f"/api/v1/groups/{ga['principal_id']}/roles").json()
        assert any(x["type"] == ga["type"] and x["assignmentType"] == "GROUP" for x in groles)
        group = next(g for g in s["groups"] if g["id"] == ga["principal_id"])
        if group["members"]:   # members inherit the group's roles
            inherited = c.get(f"/api/v1/users/{group['members'][0]}/roles").json()
            assert any(x["type"] == ga["type"] and x["assignmentType"] == "GROUP"
                       and x["_links"]["assignee"]["href"].endswith(ga["principal_id"]) for x in inherited)
        custom = next(r for r in s["role_assignments"] if r["role"] and r["principal_type"] == "user")
        croles = c.get(f"/api/v1/users/{custom['principal_id']}/roles").json()
        mine = [x for x in croles if x.get("role") == custom["role"]]
        assert mine and mine[0]["resource-set"] == custom["resource_set"]
        iam_types = {cr["id"]: cr["type"] for cr in s["custom_roles"]}
        assert mine[0]["type"] == iam_types[custom["role"]]
        r = c.get(f"/api/v1/iam/roles/{custom['role']}")
        assert r.status_code == 200 and r.json()["id"] == custom["role"]
        assert c.get("/api/v1/iam/roles/cr0nope").json()["errorSummary"].endswith("(CustomRole)")
        assert c.get("/api/v1/iam/resource-sets/iamnope").json()["errorSummary"].endswith("(IAMPolicy)")


def test_org_and_api_tokens(sim):
    s = sim.state()
    with client(sim) as c:
        org = c.get("/api/v1/org").json()
        assert org["status"] == "ACTIVE" and org["id"].startswith("00o")
        t = s["api_tokens"][0]
        one = c.get(f"/api/v1/api-tokens/{t['id']}").json()
        assert (one["id"], one["name"], one["userId"]) == (t["id"], t["name"], t["userId"])
        r = c.get("/api/v1/api-tokens/00Tinvalid1234567890")
        assert r.status_code == 404
        assert r.json()["errorSummary"] == "Not found: Resource not found: 00Tinvalid1234567890 (Token)"


def test_links_follow_the_host_the_client_used(sim):
    port = sim.url.rsplit(":", 1)[1]
    with client(sim) as c:
        c.base_url = f"http://localhost:{port}"
        r = c.get("/api/v1/users", params={"limit": 1})
        assert r.json()[0]["_links"]["self"]["href"].startswith(f"http://localhost:{port}/")
        assert all(f"http://localhost:{port}/" in v for v in r.headers.get_list("link"))


def test_cli_help_and_bad_flags():
    out = subprocess.run([sys.executable, "-m", "oktasim", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--fault-rate" in out.stdout and "--api-token" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "oktasim", "--fault-rate", "2"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--fault-rate must be between 0 and 1" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "oktasim", "--users", "-1"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--users" in bad.stderr
