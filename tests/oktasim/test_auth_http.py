"""SSWS API tokens over real HTTP: each level allowed and refused per the capability table, and a
wrong token. One simulator for the module; each request touches its own objects."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.sim import Sim

TOKENS = {"read-only": "00ro-" + "r" * 36, "app-group-admin": "00ag-" + "a" * 36, "super-admin": "00sa-" + "s" * 36}
LEVELS = tuple(TOKENS)


@pytest.fixture(scope="module")
def sim():
    s = Sim(["--users", "60", "--groups", "20", "--apps", "8", "--seed", "7",
             *[arg for level, tok in TOKENS.items() for arg in ("--api-token", f"{tok}={level}")]])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def state(sim):
    return sim.state()


def _client(sim, level: str | None, token: str | None = None) -> httpx.Client:
    tok = token if token is not None else TOKENS[level]
    return httpx.Client(base_url=sim.url, timeout=30, headers={"Authorization": f"SSWS {tok}",
                                                               "Accept": "application/json"})


def _pick(state: dict, kind: str, n: int, **want) -> list[dict]:
    rows = [r for r in state[kind] if all(r.get(k) == v for k, v in want.items())]
    assert len(rows) >= n, f"the generated org has too few {kind} matching {want}"
    return rows[:n]


def _assert_refused(resp: httpx.Response) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json()["errorCode"] == "E0000006"


# (operation, levels allowed, success status, request factory: (state, index) -> (method, path, json body))
def _binding_members_path(state) -> str:
    rs = next(r for r in state["resource_sets"] if r["bindings"])
    return f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{rs['bindings'][0]['role']}/members"


def _service_app(state) -> str:
    return next(a["id"] for a in state["apps"] if a["application_type"] == "service")


def _okta_groups(state):
    return [g for g in state["groups"] if g["type"] == "OKTA_GROUP"]


OPERATIONS = [
    ("read users", LEVELS, 200, lambda st, i: ("GET", "/api/v1/users", None)),
    ("read groups", LEVELS, 200, lambda st, i: ("GET", "/api/v1/groups", None)),
    ("read group members", LEVELS, 200, lambda st, i: ("GET", f"/api/v1/groups/{st['groups'][0]['id']}/users", None)),
    ("read apps", LEVELS, 200, lambda st, i: ("GET", "/api/v1/apps", None)),
    ("read app users", LEVELS, 200, lambda st, i: ("GET", f"/api/v1/apps/{st['apps'][0]['id']}/users", None)),
    ("read user roles", LEVELS, 200, lambda st, i: ("GET", f"/api/v1/users/{st['users'][0]['id']}/roles", None)),
    ("read custom roles", LEVELS, 200, lambda st, i: ("GET", "/api/v1/iam/roles", None)),
    ("read client roles", LEVELS, 200, lambda st, i: ("GET", f"/oauth2/v1/clients/{_service_app(st)}/roles", None)),
    ("read resource sets", LEVELS, 200, lambda st, i: ("GET", "/api/v1/iam/resource-sets", None)),
    ("list API tokens", ("super-admin",), 200, lambda st, i: ("GET", "/api/v1/api-tokens", None)),
    ("create group", ("app-group-admin", "super-admin"), 200,
     lambda st, i: ("POST", "/api/v1/groups", {"profile": {"name": f"auth-test-{uuid.uuid4().hex[:8]}"}})),
    ("update group", ("app-group-admin", "super-admin"), 200,
     lambda st, i: ("PUT", f"/api/v1/groups/{_okta_groups(st)[i]['id']}",
                    {"profile": {"name": f"renamed-{uuid.uuid4().hex[:8]}", "description": "x"}})),
    ("add group member", ("app-group-admin", "super-admin"), 204,
     lambda st, i: ("PUT", f"/api/v1/groups/{_okta_groups(st)[3]['id']}/users/{st['users'][10 + i]['id']}", None)),
    ("assign app to user", ("app-group-admin", "super-admin"), 200,
     lambda st, i: ("POST", f"/api/v1/apps/{_pick(st, 'apps', 1, status='ACTIVE')[0]['id']}/users",
                    {"id": _pick(st, "users", 20, status="ACTIVE")[12 + i]["id"], "scope": "USER"})),
    ("delete group", ("super-admin",), 204, lambda st, i: ("DELETE", f"/api/v1/groups/{_okta_groups(st)[-1]['id']}", None)),
    ("assign role to user", ("super-admin",), 201,
     lambda st, i: ("POST", f"/api/v1/users/{_pick(st, 'users', 20, status='ACTIVE')[15]['id']}/roles",
                    {"type": "HELP_DESK_ADMIN"})),
    ("assign role to client", ("super-admin",), 200,
     lambda st, i: ("POST", f"/oauth2/v1/clients/{_service_app(st)}/roles", {"type": "REPORT_ADMIN"})),
    ("suspend user", ("super-admin",), 200,
     lambda st, i: ("POST", f"/api/v1/users/{_pick(st, 'users', 20, status='ACTIVE')[16]['id']}/lifecycle/suspend",
                    None)),
    ("create user", ("super-admin",), 200,
     lambda st, i: ("POST", "/api/v1/users?activate=false",
                    {"profile": {"firstName": "A", "lastName": "B", "email": f"u{uuid.uuid4().hex[:8]}@example.com",
                                 "login": f"u{uuid.uuid4().hex[:8]}@example.com"}})),
    ("add resource-set binding member", ("super-admin",), 200,
     lambda st, i: ("PATCH", _binding_members_path(st),
                    {"additions": [f"/api/v1/users/{_pick(st, 'users', 20, status='ACTIVE')[17]['id']}"]})),
    ("delete user", ("super-admin",), 204,
     lambda st, i: ("DELETE", f"/api/v1/users/{_pick(st, 'users', 1, status='DEPROVISIONED')[0]['id']}", None)),
]


@pytest.mark.parametrize(("name", "allowed", "ok", "make"), OPERATIONS, ids=[op[0] for op in OPERATIONS])
def test_levels(sim, state, name, allowed, ok, make):
    # Refused levels first: they must not change anything, so the allowed call sees the same org.
    for i, level in enumerate(sorted(LEVELS, key=lambda lv: lv in allowed)):
        method, path, body = make(state, i)
        kwargs = {"json": body} if body is not None else {"headers": {"Content-Length": "0"}} \
            if method in ("POST", "PUT") else {}
        with _client(sim, level) as client:
            resp = client.request(method, path, **kwargs)
        if level in allowed:
            assert resp.status_code == ok, (level, resp.status_code, resp.text)
        else:
            _assert_refused(resp)


def test_group_delete_refused_leaves_group(sim, state):
    gid = _okta_groups(state)[-2]["id"]
    with _client(sim, "app-group-admin") as client:
        _assert_refused(client.delete(f"/api/v1/groups/{gid}"))
        assert client.get(f"/api/v1/groups/{gid}").status_code == 200


@pytest.mark.parametrize("header", [
    "SSWS not-a-known-token", "SSWS", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "", "SSWS" + TOKENS["super-admin"],
])
def test_wrong_token_is_401_e0000011(sim, header):
    headers = {"Authorization": header} if header else {}
    resp = httpx.get(f"{sim.url}/api/v1/users", headers=headers, timeout=30)
    assert resp.status_code == 401
    body = resp.json()
    assert body["errorCode"] == "E0000011" and body["errorSummary"] == "Invalid token provided"
    assert set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}
    assert "not-a-known-token" not in resp.text


def test_levels_get_the_token_share_in_headers(sim):
    with _client(sim, "read-only") as client:
        resp = client.get("/api/v1/users")
    assert resp.headers["X-Rate-Limit-Limit"] == "300"
