"""Bad input never yields a stack trace or a 500: every answer is one of Okta's JSON errors."""

from __future__ import annotations

import pytest

from tests.support.simhttp import client


@pytest.fixture
def sim(oktasim):
    return oktasim(["--users", "30", "--groups", "6", "--apps", "5", "--rate-limit-scale", "1000"])


def test_garbage_gets_okta_errors(sim):
    s = sim.state()
    uid = s["users"][0]["id"]
    gid = next(g["id"] for g in s["groups"] if g["type"] == "OKTA_GROUP")
    aid = s["apps"][3]["id"]
    rs = s["resource_sets"][0]
    role = rs["bindings"][0]["role"] if rs["bindings"] else s["custom_roles"][0]["id"]
    long_search = "(" * 3000 + 'status eq "ACTIVE"' + ")" * 3000
    deep = "(" * 600 + 'status eq "ACTIVE"' + ")" * 600
    cases = [
        ("GET", "/api/v1/users", {"search": long_search}, None),
        ("GET", "/api/v1/users", {"search": deep}, None),
        ("GET", "/api/v1/users", {"search": "not " * 900 + 'status eq "ACTIVE"'}, None),
        ("GET", "/api/v1/users", {"search": '"just a string"'}, None),
        ("GET", "/api/v1/users", {"search": 'status eq "ACTIVE" and'}, None),
        ("GET", "/api/v1/users", {"search": "profile.login sw 12"}, None),
        ("GET", "/api/v1/users", {"filter": 'status eq "ACTIVE")'}, None),
        ("GET", "/api/v1/users", {"filter": "status eq \"\u00e9\\u00e9\\\""}, None),
        ("GET", "/api/v1/groups", {"search": "profile.name co"}, None),
        ("GET", "/api/v1/groups", {"search": 'type eq "OKTA_GROUP"', "filter": 'type eq "OKTA_GROUP"'}, None),
        ("GET", "/api/v1/apps", {"filter": "status"}, None),
        ("GET", "/api/v1/apps", {"limit": "1e3"}, None),
        ("GET", "/api/v1/users/%00", None, None),
        ("GET", "/api/v1/users/..%2F..%2Fapps", None, None),
        ("POST", "/api/v1/groups", None, b"null"),
        ("POST", "/api/v1/groups", None, b'"str"'),
        ("POST", "/api/v1/groups", None, b'{"profile": []}'),
        ("POST", "/api/v1/groups", None, b'{"profile": {"name": 5}}'),
        ("PUT", f"/api/v1/groups/{gid}", None, b'{"profile": "x"}'),
        ("POST", f"/api/v1/apps/{aid}/users", None, b'{"id": 5}'),
        ("POST", f"/api/v1/apps/{aid}/users", None, b'{"id": "%s", "credentials": "str"}' % uid.encode()),
        ("POST", f"/api/v1/apps/{aid}/users", None,
         b'{"id": "%s", "credentials": {"userName": 5}}' % uid.encode()),
        ("POST", f"/api/v1/apps/{aid}/users", None, b'{"id": "%s", "scope": "GROUP"}' % uid.encode()),
        ("PUT", f"/api/v1/apps/{aid}/groups/{gid}", None, b'{"priority": "high"}'),
        ("PUT", f"/api/v1/apps/{aid}/groups/{gid}", None, b'{"priority": -1}'),
        ("PUT", f"/api/v1/apps/{aid}/groups/{gid}", None, b'{"profile": []}'),
        ("POST", f"/api/v1/users/{uid}/roles", None, b'{"type": 5}'),
        ("POST", f"/api/v1/users/{uid}/roles", None, b'{"type": "CUSTOM"}'),
        ("POST", f"/api/v1/users/{uid}/roles", None, b'{"type": "CUSTOM", "role": [], "resource-set": {}}'),
        ("POST", f"/api/v1/groups/{gid}/roles", None, b"{}"),
        ("PATCH", f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{role}/members", None, b'{"additions": "x"}'),
        ("PATCH", f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{role}/members", None, b'{"additions": [5]}'),
        ("POST", f"/api/v1/iam/resource-sets/{rs['id']}/bindings", None, b'{"role": 5, "members": 5}'),
        ("POST", "/api/v1/users", None, b'{"profile": {"login": 5, "email": [], "firstName": {}, "lastName": 1}}'),
        ("POST", "/api/v1/users", None, b'{"profile": {"login": "a@b.c", "email": "a@b.c", "firstName": "a", '
                                        b'"lastName": "b"}, "credentials": {"password": "x"}, "groupIds": "x"}'),
        ("POST", "/api/v1/users", None, b'{"profile": {"login": "a@b.c", "email": "nope", "firstName": "a", '
                                        b'"lastName": "b"}}'),
        ("POST", "/api/v1/users", None, b'{"profile": {"login": "a2@b.c", "email": "a2@b.c", "firstName": "a", '
                                        b'"lastName": "b"}, "groupIds": [5]}'),
        ("POST", f"/api/v1/users/{uid}", None, b'{"profile": {"login": null}}'),
        ("POST", f"/api/v1/users/{uid}/lifecycle/activate", {"sendEmail": "perhaps"}, b""),
        ("DELETE", f"/api/v1/users/{uid}/roles/%20", None, None),
        ("DELETE", f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{role}/members/irbnope", None, None),
        ("GET", "/api/v1/iam/assignees/users", {"after": "nope"}, None),
        ("GET", f"/api/v1/iam/resource-sets/{rs['id']}/bindings", {"after": "nope"}, None),
    ]
    with client(sim) as c:
        for method, path, params, body in cases:
            r = c.request(method, path, params=params, content=body,
                          headers={"Content-Type": "application/json"} if body is not None else None)
            assert 400 <= r.status_code < 500, (method, path, params, body, r.status_code, r.text)
            err = r.json()
            assert err["errorCode"].startswith("E0000") and err["errorSummary"], (path, err)
            assert "Traceback" not in r.text
    assert sim.stats()["requests_total"] == len(cases)
