"""Every list the simulator serves pages with Okta's Link headers (and IAM's body links), and the
pages together hold exactly what /__sim/state says the org holds."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.simhttp import client, links, walk

ARGS = ["--users", "130", "--groups", "25", "--apps", "30", "--seed", "7", "--rate-limit-scale", "100"]


@pytest.fixture
def sim(oktasim):
    return oktasim(ARGS)


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_users_pages_hide_deprovisioned_and_echo_limit(sim):
    state = sim.state()
    with client(sim) as c:
        items, pages = walk(c, "/api/v1/users", {"limit": 7})
        assert len(pages) > 10
        for p in pages:
            assert len(p.headers.get_list("link")) in (1, 2)
            self_url, nxt = links(p)
            assert _query(self_url)["limit"] == ["7"]
            if nxt:
                assert _query(nxt)["limit"] == ["7"] and _query(nxt)["after"]
        assert links(pages[-1])[1] is None
        want = [u["id"] for u in state["users"] if u["status"] != "DEPROVISIONED"]
        assert [u["id"] for u in items] == want
        # no limit given: the default (200) is echoed in self
        r = c.get("/api/v1/users")
        assert _query(links(r)[0])["limit"] == ["200"]
        assert len(r.json()) == len(want)


def test_limit_above_maximum_is_clamped(sim):
    with client(sim) as c:
        r = c.get("/api/v1/users", params={"limit": 5000})
        assert _query(links(r)[0])["limit"] == ["200"]
        r = c.get("/api/v1/apps", params={"limit": 1000})
        assert _query(links(r)[0])["limit"] == ["200"]


def test_default_limits_per_endpoint(sim):
    state = sim.state()
    g = state["groups"][1]["id"]
    a = state["apps"][3]["id"]
    with client(sim) as c:
        for path, default in [("/api/v1/groups", "10000"), (f"/api/v1/groups/{g}/users", "1000"),
                              (f"/api/v1/groups/{g}/apps", "20"), ("/api/v1/apps", "20"),
                              (f"/api/v1/apps/{a}/users", "50"), (f"/api/v1/apps/{a}/groups", "20")]:
            r = c.get(path)
            assert r.status_code == 200, (path, r.text)
            assert _query(links(r)[0])["limit"] == [default], path


def test_groups_members_apps_and_assignments_page_completely(sim):
    state = sim.state()
    with client(sim) as c:
        groups, _ = walk(c, "/api/v1/groups", {"limit": 4})
        assert [g["id"] for g in groups] == [g["id"] for g in state["groups"]]
        big = max(state["groups"], key=lambda g: len(g["members"]))
        members, pages = walk(c, f"/api/v1/groups/{big['id']}/users", {"limit": 9})
        assert len(pages) > 1
        assert [u["id"] for u in members] == big["members"]
        apps, _ = walk(c, "/api/v1/apps", {"limit": 4})
        assert [a["id"] for a in apps] == [a["id"] for a in state["apps"]]
        for app in state["apps"]:
            users, _ = walk(c, f"/api/v1/apps/{app['id']}/users", {"limit": 3})
            assert [(u["id"], u["scope"]) for u in users] == [(u["id"], u["scope"]) for u in app["users"]]
            groups_, _ = walk(c, f"/api/v1/apps/{app['id']}/groups", {"limit": 1})
            assert [x["id"] for x in groups_] == app["groups"]
        with_apps = [g for g in state["groups"] if any(g["id"] in a["groups"] for a in state["apps"])]
        assert with_apps
        g = with_apps[0]
        gapps, _ = walk(c, f"/api/v1/groups/{g['id']}/apps", {"limit": 1})
        assert {a["id"] for a in gapps} == {a["id"] for a in state["apps"] if g["id"] in a["groups"]}


def test_iam_lists_page_with_body_links(sim):
    state = sim.state()
    with client(sim) as c:
        roles, pages = walk(c, "/api/v1/iam/roles", {"limit": 2}, key="roles")
        assert len(pages) > 1
        assert [r["id"] for r in roles] == [r["id"] for r in state["custom_roles"]]
        sets, _ = walk(c, "/api/v1/iam/resource-sets", {"limit": 1}, key="resource-sets")
        assert [s["id"] for s in sets] == [s["id"] for s in state["resource_sets"]]
        for rs in state["resource_sets"]:
            bindings, _ = walk(c, f"/api/v1/iam/resource-sets/{rs['id']}/bindings", {"limit": 1}, key="roles")
            assert [b["id"] for b in bindings] == [b["role"] for b in rs["bindings"]]
            for b in rs["bindings"]:
                members, _ = walk(c, f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{b['role']}/members",
                                  {"limit": 1}, key="members")
                hrefs = [m["_links"]["member"]["href"] for m in members]
                assert [h.rsplit("/", 1)[1] for h in hrefs] == [m["id"] for m in b["members"]]
        admins, pages = walk(c, "/api/v1/iam/assignees/users", {"limit": 1}, key="value")
        assert len(pages) > 1
        direct = {ra["principal_id"] for ra in state["role_assignments"] if ra["principal_type"] == "user"}
        assert {a["id"] for a in admins} == direct


def test_api_tokens_are_one_unpaged_list(sim):
    state = sim.state()
    with client(sim) as c:
        r = c.get("/api/v1/api-tokens", params={"limit": 1})
        assert r.status_code == 200
        assert "link" not in r.headers          # as recorded: not paginated, limit ignored
        assert [t["id"] for t in r.json()] == [t["id"] for t in state["api_tokens"]]


def test_bad_cursor_and_bad_limit(sim):
    with client(sim) as c:
        for path in ("/api/v1/users", "/api/v1/groups", "/api/v1/apps", "/api/v1/iam/roles"):
            r = c.get(path, params={"after": "00u1testcursorvalue"})
            assert r.status_code == 400 and r.json()["errorCode"] == "E0000029", path
        r = c.get("/api/v1/users", params={"limit": "many"})
        assert r.status_code == 400 and r.json()["errorCode"] == "E0000001"
        assert "limit" in r.json()["errorSummary"]


def test_cursor_survives_removal_of_the_item_it_names(sim):
    state = sim.state()
    g = next(g for g in state["groups"] if g["type"] == "OKTA_GROUP" and len(g["members"]) > 6)
    with client(sim) as c:
        r = c.get(f"/api/v1/groups/{g['id']}/users", params={"limit": 3})
        last = r.json()[-1]["id"]
        nxt = links(r)[1]
        assert c.delete(f"/api/v1/groups/{g['id']}/users/{last}").status_code == 204
        r2 = c.get(nxt)
        assert r2.status_code == 200
        assert [u["id"] for u in r2.json()] == g["members"][3:6]
