"""The simulated System Log over real HTTP: Okta's LogEvent shape, polling and bounded reads, the
query dialect, its errors, rate-limit bucket and permissions, the events every mutation writes,
the timestamps and list filters they move, churn, and the persistence delay."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oktasim.oauth import JWT_BEARER, client_assertion
from tests.support.simhttp import client, links

ARGS = ["--users", "60", "--groups", "12", "--apps", "8", "--seed", "3", "--rate-limit-scale", "100"]
EVENT_KEYS = {"actor", "client", "device", "authenticationContext", "displayMessage", "eventType", "outcome",
              "published", "securityContext", "severity", "debugContext", "legacyEventType", "transaction",
              "uuid", "version", "request", "target"}
TARGET_KEYS = {"id", "type", "alternateId", "displayName", "detailEntry"}
PUBLISHED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def sim(oktasim):
    return oktasim(ARGS)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _sim_now(sim) -> datetime:
    """The simulator's clock (POST /__sim/clock with no advance answers its time)."""
    now = sim.admin.post("/__sim/clock", json={"advance_seconds": 0}).raise_for_status().json()["now"]
    return datetime.fromisoformat(now)


def _poll(c: httpx.Client, params: dict | None = None, start: str | None = None) -> tuple[list[dict], str]:
    """Follow a polling query's next links until an empty page: (events, the next link at the head)."""
    events: list[dict] = []
    r = c.get(start) if start else c.get("/api/v1/logs", params=params)
    for _ in range(200):
        assert r.status_code == 200, r.text
        page = r.json()
        _, nxt = links(r)
        assert nxt, "a polling query always has a next link"
        if not page:
            return events, nxt
        events.extend(page)
        r = c.get(nxt)
    raise AssertionError("polling never reached the head")


def _types(events: list[dict]) -> list[str]:
    return [e["eventType"] for e in events]


def _targets(event: dict) -> dict[str, str]:
    return {t["type"]: t["id"] for t in event["target"]}


def _one(events: list[dict], event_type: str) -> dict:
    found = [e for e in events if e["eventType"] == event_type]
    assert len(found) == 1, (event_type, _types(events))
    return found[0]


def _token_admin(state: dict) -> str:
    return next(r["principal_id"] for r in state["role_assignments"]
                if r["type"] == "SUPER_ADMIN" and r["principal_type"] == "user")


def _plain_user(state: dict) -> dict:
    """An active user holding no admin privilege, directly or through a group."""
    admins = {r["principal_id"] for r in state["role_assignments"] if r["principal_type"] == "user"}
    admin_groups = {r["principal_id"] for r in state["role_assignments"] if r["principal_type"] == "group"}
    for g in state["groups"]:
        if g["id"] in admin_groups:
            admins.update(g["members"])
    return next(u for u in state["users"] if u["status"] == "ACTIVE" and u["id"] not in admins)


# ------------------------------------------------------------------------------ shape and paging

def test_event_shape_and_actor(sim):
    state = sim.state()
    with client(sim) as c:
        events, _ = _poll(c)
        assert events == [], "the generated org starts with an empty log"
        gid = c.post("/api/v1/groups", json={"profile": {"name": "Shape"}}).json()["id"]
        events, _ = _poll(c)
    ev = _one(events, "group.lifecycle.create")
    assert set(ev) == EVENT_KEYS
    assert PUBLISHED.match(ev["published"]) and ev["version"] == "0" and ev["severity"] == "INFO"
    assert re.match(r"^[0-9a-f-]{36}$", ev["uuid"])
    assert ev["outcome"] == {"result": "SUCCESS", "reason": None}
    assert ev["displayMessage"] == "Create Okta group"
    assert [set(t) for t in ev["target"]] == [TARGET_KEYS]
    assert ev["target"][0]["id"] == gid and ev["target"][0]["type"] == "UserGroup"
    assert ev["target"][0]["displayName"] == "Shape"
    admin = _token_admin(state)
    assert ev["actor"]["id"] == admin and ev["actor"]["type"] == "User"
    assert ev["transaction"]["type"] == "WEB"
    assert ev["transaction"]["detail"]["requestApiTokenId"].startswith("00T")
    assert ev["debugContext"]["debugData"]["requestUri"] == "/api/v1/groups"


def test_polling_head_and_follow_next(sim):
    with client(sim) as c:
        r = c.get("/api/v1/logs")
        assert r.status_code == 200 and r.json() == []
        self_url, head = links(r)
        assert self_url and head, "empty pages at the head still carry a next link"
        assert "after=" in head and "limit=100" in head
        r = c.get(head)
        assert r.json() == [] and links(r)[1]

        gids = [c.post("/api/v1/groups", json={"profile": {"name": f"P{i}"}}).json()["id"] for i in range(5)]
        r = c.get(head, params=None)
        page = r.json()
        assert [_targets(e)["UserGroup"] for e in page] == gids, "ascending persistence order, from the head"
        after_first = links(r)[1]
        assert c.get(after_first).json() == []
        c.put(f"/api/v1/groups/{gids[0]}", json={"profile": {"name": "P0 renamed"}})
        assert _types(c.get(after_first).json()) == ["group.profile.update"]

        # limit pages the same stream; the pages join up without gaps or repeats
        events, _ = _poll(c, {"limit": 2})
        assert _types(events) == ["group.lifecycle.create"] * 5 + ["group.profile.update"]


def test_bounded_mode_orders_by_published_and_ends(sim):
    with client(sim) as c:
        start = _sim_now(sim) - timedelta(seconds=1)
        for i in range(3):
            c.post("/api/v1/groups", json={"profile": {"name": f"B{i}"}})
        until = _iso(_sim_now(sim) + timedelta(seconds=1))
        params = {"since": _iso(start), "until": until, "limit": 2}
        r = c.get("/api/v1/logs", params=params)
        first = r.json()
        assert len(first) == 2
        nxt = links(r)[1]
        assert nxt and "until=" in nxt
        r = c.get(nxt)
        assert len(r.json()) == 1 and links(r)[1] is None, "bounded queries end"
        published = [e["published"] for e in first + r.json()]
        assert published == sorted(published)

        desc = c.get("/api/v1/logs", params={**params, "limit": 10, "sortOrder": "DESCENDING"}).json()
        assert [e["uuid"] for e in desc] == [e["uuid"] for e in reversed(first + r.json())]
        # since/until bound by published: a window before the changes is empty and ends
        early = c.get("/api/v1/logs", params={"since": _iso(start - timedelta(days=2)),
                                              "until": _iso(start - timedelta(days=1))})
        assert early.json() == [] and links(early)[1] is None


def test_filter_q_limit_and_errors(sim):
    state = sim.state()
    user = _plain_user(state)["id"]
    with client(sim) as c:
        gid = c.post("/api/v1/groups", json={"profile": {"name": "Filterable"}}).json()["id"]
        c.put(f"/api/v1/groups/{gid}/users/{user}")
        c.post(f"/api/v1/users/{user}/lifecycle/suspend")

        f = 'eventType eq "group.user_membership.add" or eventType eq "user.lifecycle.suspend"'
        events, _ = _poll(c, {"filter": f})
        assert _types(events) == ["group.user_membership.add", "user.lifecycle.suspend"]
        events, _ = _poll(c, {"filter": f'target.id eq "{gid}"'})
        assert _types(events) == ["group.lifecycle.create", "group.user_membership.add"]
        events, _ = _poll(c, {"q": "filterable membership"})
        assert _types(events) == ["group.user_membership.add"]
        assert len(c.get("/api/v1/logs", params={"limit": 1}).json()) == 1
        assert len(c.get("/api/v1/logs", params={"limit": 5000}).json()) == 3   # capped at 1000

        bad = c.get("/api/v1/logs", params={"filter": 'published gt "2020-01-01T00:00:00Z"'})
        assert bad.status_code == 400 and bad.json()["errorCode"] == "E0000001"
        bad = c.get("/api/v1/logs", params={"q": " ".join(["k"] * 11)})
        assert bad.status_code == 400 and bad.json()["errorCode"] == "E0000001"
        bad = c.get("/api/v1/logs", params={"after": "not-a-cursor"})
        assert bad.status_code == 400 and bad.json()["errorCode"] == "E0000029"
        bad = c.get("/api/v1/logs", params={"since": "yesterday"})
        assert bad.status_code == 400 and bad.json()["errorCode"] == "E0000001"


def test_since_older_than_180_days_and_90_day_retention(sim):
    with client(sim) as c:
        now = _sim_now(sim)
        old = c.get("/api/v1/logs", params={"since": _iso(now - timedelta(days=181))})
        assert old.status_code == 400 and old.json()["errorCode"] == "E0000053"
        assert c.get("/api/v1/logs", params={"since": _iso(now - timedelta(days=170))}).status_code == 200

        c.post("/api/v1/groups", json={"profile": {"name": "Old news"}})
        sim.admin.post("/__sim/clock", json={"advance_seconds": 60 * 86400}).raise_for_status()
        c.post("/api/v1/groups", json={"profile": {"name": "Recent"}})
        since = _iso(_sim_now(sim) - timedelta(days=89))
        events, _ = _poll(c, {"since": since})
        assert [e["target"][0]["displayName"] for e in events] == ["Old news", "Recent"]
        assert events[1]["published"] > events[0]["published"]

        sim.admin.post("/__sim/clock", json={"advance_seconds": 31 * 86400}).raise_for_status()
        events, _ = _poll(c, {"since": _iso(_sim_now(sim) - timedelta(days=179))})
        assert [e["target"][0]["displayName"] for e in events] == ["Recent"], "older than 90 days is gone"


def test_own_rate_limit_bucket(oktasim):
    sim = oktasim(["--users", "10", "--groups", "3", "--apps", "3"])
    with client(sim) as c:
        first = c.get("/api/v1/logs")
        second = c.get("/api/v1/logs")
        c.get("/api/v1/users")
    assert first.headers["X-Rate-Limit-Limit"] == "60", "the token's 50 % share of 120 a minute"
    assert int(first.headers["X-Rate-Limit-Remaining"]) - int(second.headers["X-Rate-Limit-Remaining"]) == 1
    assert sim.stats()["buckets"]["/api/v1/logs"]["requests"] == 2


# ------------------------------------------------------------------------------ permissions

@pytest.fixture(scope="module")
def oauth_key(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("logs-oauth") / "app.pub"
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, str(path)


def _oauth_token(sim, key, scope: str) -> str:
    url = f"{sim.url}/oauth2/v1/token"
    r = httpx.post(url, data={"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                              "scope": scope,
                              "client_assertion": client_assertion(key, "0oalogsapp", url, "k1")})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_log_access_needs_the_logs_scope_or_an_admin_token(oktasim, oauth_key):
    key, pem = oauth_key
    sim = oktasim(["--users", "10", "--groups", "3", "--apps", "3", "--oauth-client-id", "0oalogsapp",
                   "--oauth-public-key", pem, "--oauth-key-id", "k1",
                   "--oauth-scopes", "okta.users.read okta.groups.manage okta.logs.read",
                   "--api-token", "ro-token=read-only"])
    no_logs = _oauth_token(sim, key, "okta.users.read okta.groups.manage")
    r = httpx.get(f"{sim.url}/api/v1/logs", headers={"Authorization": f"Bearer {no_logs}"})
    assert r.status_code == 403 and r.content == b""
    assert 'scope="okta.logs.read"' in r.headers["WWW-Authenticate"]

    token = _oauth_token(sim, key, "okta.logs.read okta.groups.manage")
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{sim.url}/api/v1/groups", headers=auth, json={"profile": {"name": "By app"}}).status_code == 200
    r = httpx.get(f"{sim.url}/api/v1/logs", headers=auth)
    assert r.status_code == 200
    ev = _one(r.json(), "group.lifecycle.create")
    assert ev["actor"] == {"id": "0oalogsapp", "type": "PublicClientApp", "alternateId": "0oalogsapp",
                           "displayName": "0oalogsapp", "detailEntry": None}
    assert ev["transaction"]["detail"] == {}

    with client(sim, "ro-token") as c:   # a read-only admin may read the log
        assert c.get("/api/v1/logs").status_code == 200
    assert httpx.get(f"{sim.url}/api/v1/logs", headers={"Authorization": "SSWS nope"}).status_code == 401


# ------------------------------------------------------------------------------ events of each mutation

def test_user_events(sim):
    with client(sim) as c:
        body = {"profile": {"firstName": "Eve", "lastName": "Log", "email": "eve@x.example", "login": "eve@x.example"},
                "credentials": {"password": {"value": "Pass-word-1"}}}
        uid = c.post("/api/v1/users", json=body).json()["id"]
        c.post(f"/api/v1/users/{uid}", json={"profile": {"title": "Auditor"}})
        for op in ("suspend", "unsuspend", "deactivate", "activate"):
            assert c.post(f"/api/v1/users/{uid}/lifecycle/{op}").status_code == 200
        assert c.delete(f"/api/v1/users/{uid}").status_code == 204   # deactivates
        assert c.delete(f"/api/v1/users/{uid}").status_code == 204   # deletes
        events, _ = _poll(c)
    assert _types(events) == [
        "user.lifecycle.create", "user.lifecycle.activate", "user.account.update_profile",
        "user.lifecycle.suspend", "user.lifecycle.unsuspend", "user.lifecycle.deactivate",
        "user.lifecycle.activate", "user.lifecycle.deactivate", "user.lifecycle.delete.initiated",
        "user.lifecycle.delete.completed"]
    for ev in events:
        assert ev["target"][0]["id"] == uid and ev["target"][0]["type"] == "User"
        assert ev["target"][0]["alternateId"] == "eve@x.example" and ev["target"][0]["displayName"] == "Eve Log"


def test_group_membership_and_app_events(sim):
    state = sim.state()
    user = _plain_user(state)["id"]
    app = next(a for a in state["apps"] if a["status"] == "ACTIVE" and a["label"] != "Okta Admin Console"
               and user not in {u["id"] for u in a["users"]})
    with client(sim) as c:
        gid = c.post("/api/v1/groups", json={"profile": {"name": "Evented"}}).json()["id"]
        c.put(f"/api/v1/groups/{gid}", json={"profile": {"name": "Evented 2"}})
        c.put(f"/api/v1/groups/{gid}/users/{user}")
        c.put(f"/api/v1/apps/{app['id']}/groups/{gid}", json={})          # the member gains access
        c.delete(f"/api/v1/apps/{app['id']}/groups/{gid}")                # and loses it
        c.delete(f"/api/v1/groups/{gid}/users/{user}")
        c.post(f"/api/v1/apps/{app['id']}/users", json={"id": user, "scope": "USER"})
        c.delete(f"/api/v1/apps/{app['id']}/users/{user}")
        assert c.post(f"/api/v1/apps/{app['id']}/lifecycle/deactivate").status_code == 200
        assert c.get(f"/api/v1/apps/{app['id']}").json()["status"] == "INACTIVE"
        c.post(f"/api/v1/apps/{app['id']}/lifecycle/activate")
        c.delete(f"/api/v1/groups/{gid}")
        events, _ = _poll(c)
    assert _types(events) == [
        "group.lifecycle.create", "group.profile.update", "group.user_membership.add",
        "group.application_assignment.add", "application.user_membership.add",
        "group.application_assignment.remove", "application.user_membership.remove",
        "group.user_membership.remove", "application.user_membership.add", "application.user_membership.remove",
        "application.lifecycle.deactivate", "application.lifecycle.activate", "group.lifecycle.delete"]
    assert "group.lifecycle.update" not in _types(events)
    assert _targets(events[2]) == {"User": user, "UserGroup": gid}
    assert _targets(events[3]) == {"AppInstance": app["id"], "UserGroup": gid}
    member = _targets(events[4])
    assert member["AppInstance"] == app["id"] and member["User"] == user and member["AppUser"].startswith("0ua")
    assert _targets(events[10]) == {"AppInstance": app["id"]}


def test_privilege_grant_carries_all_privileges_and_revoke_only_when_none_left(sim):
    state = sim.state()
    user = _plain_user(state)["id"]
    with client(sim) as c:
        r1 = c.post(f"/api/v1/users/{user}/roles", json={"type": "USER_ADMIN"}).json()
        r2 = c.post(f"/api/v1/users/{user}/roles", json={"type": "APP_ADMIN"}).json()
        c.delete(f"/api/v1/users/{user}/roles/{r1['id']}")
        gid = c.post("/api/v1/groups", json={"profile": {"name": "Help desk"}}).json()["id"]
        g1 = c.post(f"/api/v1/groups/{gid}/roles", json={"type": "HELP_DESK_ADMIN"}).json()
        c.put(f"/api/v1/groups/{gid}/users/{user}")                 # gains a group-derived privilege
        c.delete(f"/api/v1/users/{user}/roles/{r2['id']}")          # still has the group's: a grant
        c.delete(f"/api/v1/groups/{gid}/users/{user}")              # nothing left: the revoke
        c.delete(f"/api/v1/groups/{gid}/roles/{g1['id']}")
        events, _ = _poll(c, {"filter": 'eventType sw "user.account.privilege" or eventType sw "group.privilege"'})
    got = [(e["eventType"], e["debugContext"]["debugData"].get("privilegeGranted")) for e in events]
    assert got == [
        ("user.account.privilege.grant", "User Administrator"),
        ("user.account.privilege.grant", "User Administrator, Application Administrator"),
        ("user.account.privilege.grant", "Application Administrator"),
        ("group.privilege.grant", "Help Desk Administrator"),
        ("user.account.privilege.grant", "Application Administrator, Help Desk Administrator"),
        ("user.account.privilege.grant", "Help Desk Administrator"),
        ("user.account.privilege.revoke", None),
        ("group.privilege.revoke", None),
    ]
    assert all(_targets(e).get("User", user) == user for e in events)


def test_binding_member_and_api_token_events(sim):
    state = sim.state()
    user = _plain_user(state)["id"]
    rs = next(s for s in state["resource_sets"] if s["bindings"])
    role = rs["bindings"][0]["role"]
    token = state["api_tokens"][0]["id"]
    with client(sim) as c:
        path = f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{role}/members"
        assert c.patch(path, json={"additions": [f"{sim.url}/api/v1/users/{user}"]}).status_code == 200
        mid = next(m["id"] for m in c.get(path).json()["members"]
                   if m["_links"]["member"]["href"].endswith(f"/users/{user}"))
        assert c.delete(f"{path}/{mid}").status_code == 204
        assert c.delete(f"/api/v1/api-tokens/{token}").status_code == 204
        assert c.get(f"/api/v1/api-tokens/{token}").status_code == 404
        events, _ = _poll(c)
    assert _types(events) == ["user.account.privilege.grant", "user.account.privilege.revoke",
                              "system.api_token.revoke"]
    assert _targets(events[0]) == {"User": user}
    assert _targets(events[2]) == {"Token": token}


# ------------------------------------------------------------------------------ timestamps and list filters

def test_timestamps_move_and_incremental_filters_find_the_changes(sim):
    state = sim.state()
    plain = [u["id"] for u in state["users"] if u["status"] == "ACTIVE"][5:8]
    groups = [g for g in state["groups"] if g["type"] == "OKTA_GROUP"][:2]
    with client(sim) as c:
        before = {uid: c.get(f"/api/v1/users/{uid}").json() for uid in plain}
        g_before = {g["id"]: c.get(f"/api/v1/groups/{g['id']}").json() for g in groups}
        t0 = _iso(_sim_now(sim))
        time.sleep(0.01)
        c.post(f"/api/v1/users/{plain[0]}", json={"profile": {"title": "Changed"}})
        c.post(f"/api/v1/users/{plain[1]}/lifecycle/deactivate")
        renamed, joined = groups[0]["id"], groups[1]["id"]
        c.put(f"/api/v1/groups/{renamed}", json={"profile": {"name": "Renamed group"}})
        newcomer = next(u for u in plain if u not in groups[1]["members"] and u != plain[1])
        c.put(f"/api/v1/groups/{joined}/users/{newcomer}")

        u0, u1 = c.get(f"/api/v1/users/{plain[0]}").json(), c.get(f"/api/v1/users/{plain[1]}").json()
        assert u0["lastUpdated"] > t0 and u0["statusChanged"] == before[plain[0]]["statusChanged"]
        assert u1["lastUpdated"] > t0 and u1["statusChanged"] > t0 and u1["status"] == "DEPROVISIONED"
        changed = c.get("/api/v1/users", params={"filter": f'lastUpdated gt "{t0}"'}).json()
        assert {u["id"] for u in changed} == {plain[0], plain[1]}, "filter results include DEPROVISIONED users"
        whole_second = t0[:19] + "Z"      # a timestamp without milliseconds compares as the same instant
        changed = c.get("/api/v1/users", params={"filter": f'lastUpdated ge "{whole_second}"'}).json()
        assert {u["id"] for u in changed} == {plain[0], plain[1]}

        g0, g1 = c.get(f"/api/v1/groups/{renamed}").json(), c.get(f"/api/v1/groups/{joined}").json()
        assert g0["lastUpdated"] > t0 and g0["lastMembershipUpdated"] == g_before[renamed]["lastMembershipUpdated"]
        assert g1["lastMembershipUpdated"] > t0 and g1["lastUpdated"] == g_before[joined]["lastUpdated"]
        flt = f'lastUpdated gt "{t0}" or lastMembershipUpdated gt "{t0}"'
        assert {g["id"] for g in c.get("/api/v1/groups", params={"filter": flt}).json()} == {renamed, joined}


# ------------------------------------------------------------------------------ churn and delay

EXPECTED = {   # churn kind -> (event types that may record it, the ids it names)
    "user.create": ({"user.lifecycle.create"}, ("user",)),
    "user.deactivate": ({"user.lifecycle.deactivate"}, ("user",)),
    "user.reactivate": ({"user.lifecycle.activate"}, ("user",)),
    "user.suspend": ({"user.lifecycle.suspend"}, ("user",)),
    "user.unsuspend": ({"user.lifecycle.unsuspend"}, ("user",)),
    "user.delete": ({"user.lifecycle.delete.completed"}, ("user",)),
    "user.update": ({"user.account.update_profile"}, ("user",)),
    "group.create": ({"group.lifecycle.create"}, ("group",)),
    "group.rename": ({"group.profile.update"}, ("group",)),
    "group.delete": ({"group.lifecycle.delete"}, ("group",)),
    "membership.add": ({"group.user_membership.add"}, ("user", "group")),
    "membership.remove": ({"group.user_membership.remove"}, ("user", "group")),
    "app.user.assign": ({"application.user_membership.add", "application.user_membership.update"}, ("app", "user")),
    "app.user.unassign": ({"application.user_membership.remove"}, ("app", "user")),
    "app.group.assign": ({"group.application_assignment.add"}, ("app", "group")),
    "app.group.unassign": ({"group.application_assignment.remove"}, ("app", "group")),
    "app.activate": ({"application.lifecycle.activate"}, ("app",)),
    "app.deactivate": ({"application.lifecycle.deactivate"}, ("app",)),
    "role.user.grant": ({"user.account.privilege.grant"}, ("user",)),
    "role.user.revoke": ({"user.account.privilege.grant", "user.account.privilege.revoke"}, ("user",)),
    "role.group.grant": ({"group.privilege.grant"}, ("group",)),
    "role.group.revoke": ({"group.privilege.grant", "group.privilege.revoke"}, ("group",)),
    "role.client.grant": ({"app.oauth2.client.privilege.grant"}, ("app",)),
    "role.client.revoke": ({"app.oauth2.client.privilege.grant", "app.oauth2.client.privilege.revoke"}, ("app",)),
    "binding.member.add": ({"user.account.privilege.grant", "group.privilege.grant"}, ("user", "group")),
    "binding.member.remove": ({"user.account.privilege.grant", "user.account.privilege.revoke",
                               "group.privilege.grant", "group.privilege.revoke"}, ("user", "group")),
    "api_token.create": ({"system.api_token.create"}, ("token",)),
    "api_token.revoke": ({"system.api_token.revoke"}, ("token",)),
}


def _consistent(state: dict) -> None:
    users = {u["id"] for u in state["users"]}
    groups = {g["id"]: g for g in state["groups"]}
    assert any(g["type"] == "BUILT_IN" for g in groups.values())
    for g in groups.values():
        assert set(g["members"]) <= users
    for a in state["apps"]:
        assert {u["id"] for u in a["users"]} <= users and set(a["groups"]) <= set(groups)
    services = {a["id"] for a in state["apps"] if a["application_type"] == "service"}
    for r in state["role_assignments"]:
        assert r["principal_id"] in {"user": users, "group": groups, "client": services}[r["principal_type"]]
    for a in state["apps"]:
        assert not (a["id"] in services and (a["users"] or a["groups"])), "a service app is assigned to nobody"
    assert {t["userId"] for t in state["api_tokens"]} <= users


def test_churn_applies_realistic_changes_and_logs_each(oktasim):
    sim = oktasim(["--users", "150", "--groups", "25", "--apps", "12", "--seed", "8"])
    admin = _token_admin(sim.state())
    r = sim.admin.post("/__sim/churn", json={"changes": 150, "seed": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] == 150 and len(body["changes"]) == 150
    kinds = {ch["kind"] for ch in body["changes"]}
    assert kinds <= set(EXPECTED) and len(kinds) >= 20, kinds
    state = sim.state()
    _consistent(state)
    admin_user = next(u for u in state["users"] if u["id"] == admin)
    assert admin_user["status"] == "ACTIVE" and _token_admin(state) == admin

    with client(sim) as c:
        events, _ = _poll(c, {"limit": 1000})
    index: dict[str, list[set[str]]] = {}
    for e in events:
        index.setdefault(e["eventType"], []).append({t["id"] for t in e["target"]})
    for ch in body["changes"]:
        types, keys = EXPECTED[ch["kind"]]
        ids = {ch[k] for k in keys if k in ch}
        assert any(ids <= targets for t in types for targets in index.get(t, [])), ch
    assert all(e["actor"]["id"] == admin for e in events)


def test_churn_per_minute_changes_the_org_continuously(oktasim):
    sim = oktasim(["--users", "40", "--groups", "8", "--apps", "5", "--churn-per-minute", "1200"])
    with client(sim) as c:
        deadline = time.time() + 10
        events: list[dict] = []
        while time.time() < deadline and len(events) < 5:
            time.sleep(0.2)
            events, _ = _poll(c)
    assert len(events) >= 5


def test_log_delay_lets_events_appear_out_of_published_order(oktasim):
    sim = oktasim(ARGS + ["--log-delay-ms", "1500"])
    with client(sim) as c:
        for i in range(25):
            c.post("/api/v1/groups", json={"profile": {"name": f"Delayed {i}"}})
        early, _ = _poll(c)
        assert len(early) < 25, "events are readable only after the persistence delay"
        time.sleep(1.8)
        events, _ = _poll(c)
    assert len(events) == 25
    published = [e["published"] for e in events]
    assert published != sorted(published), "polling returns persistence order, not published order"
    names = [e["target"][0]["displayName"] for e in events]
    assert sorted(names) == sorted(f"Delayed {i}" for i in range(25))


def test_account_creation_events(sim):
    def body(name: str, **creds) -> dict:
        return {"profile": {"firstName": name, "lastName": "Log", "email": f"{name}@x.example",
                            "login": f"{name}@x.example"}, **({"credentials": creds} if creds else {})}
    with client(sim) as c:
        staged = c.post("/api/v1/users", params={"activate": "false"}, json=body("stg")).json()["id"]
        expired = c.post("/api/v1/users", params={"activate": "true", "nextLogin": "changePassword"},
                         json=body("exp", password={"value": "Turn-me-9"})).json()["id"]
        events, _ = _poll(c)
    by_user = {uid: [e["eventType"] for e in events if e["target"][0]["id"] == uid] for uid in (staged, expired)}
    assert by_user[staged] == ["user.lifecycle.create"]
    assert by_user[expired] == ["user.lifecycle.create", "user.lifecycle.activate", "user.account.expire_password"]
