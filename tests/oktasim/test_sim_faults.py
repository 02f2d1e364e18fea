"""Headers on every response, injected faults (deterministic under --seed), latency settings and
the admin endpoints."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import httpx

from tests.support.simhttp import client

SMALL = ["--users", "40", "--groups", "8", "--apps", "6", "--rate-limit-scale", "100"]


def _outcome(c: httpx.Client, path: str) -> str:
    try:
        r = c.get(path)
    except httpx.RemoteProtocolError:
        return "cut"
    if r.status_code >= 500:
        assert r.headers["content-type"] == "application/json"
        assert "x-rate-limit-remaining" in r.headers and "x-okta-request-id" in r.headers
        return f"{r.status_code} {r.json()['errorCode']}"
    assert r.status_code == 200
    r.json()
    return "ok"


def test_every_response_carries_okta_headers(oktasim):
    sim = oktasim(SMALL)
    s = sim.state()
    g = next(x for x in s["groups"] if x["type"] == "OKTA_GROUP")
    with client(sim) as c, client(sim, token="wrong") as bad:
        responses = [
            c.get("/api/v1/users"), c.get("/api/v1/users/00unope"), c.get("/api/v1/nope"),
            c.put(f"/api/v1/groups/{g['id']}/users/{s['users'][0]['id']}"), bad.get("/api/v1/users"),
            c.post("/api/v1/groups", content=b"{"), c.delete("/api/v1/users"),
        ]
        assert [r.status_code for r in responses] == [200, 404, 404, 204, 401, 400, 405]
        for r in responses:
            parsedate_to_datetime(r.headers["date"])
            assert r.headers["date"].endswith(" GMT")
            assert r.headers["x-okta-request-id"]
            for h in ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"):
                assert r.headers[h].isdigit(), (h, r.headers)
            if r.status_code != 204:
                assert r.headers["content-type"] == "application/json"
            assert "retry-after" not in r.headers
        assert responses[4].json()["errorCode"] == "E0000011"
        ids = {r.headers["x-okta-request-id"] for r in responses}
        assert len(ids) == len(responses)


def test_faults_are_all_kinds_and_deterministic(oktasim):
    args = [*SMALL, "--fault-rate", "0.5", "--seed", "9"]
    runs = []
    for _ in range(2):
        sim = oktasim(args)
        with client(sim) as c:
            runs.append([_outcome(c, "/api/v1/users?limit=5") for _ in range(60)])
        assert sim.stats()["requests_total"] == 60   # admin calls are not API requests
    assert runs[0] == runs[1]
    kinds = set(runs[0])
    assert {"ok", "500 E0000009", "503 E0000010", "cut"} <= kinds
    assert 10 < runs[0].count("ok") < 50


def test_no_faults_by_default_and_admin_is_never_faulted(oktasim):
    sim = oktasim([*SMALL, "--fault-rate", "1"])
    with client(sim) as c:
        assert {_outcome(c, "/api/v1/groups") for _ in range(12)} <= {"500 E0000009", "503 E0000010", "cut"}
    for _ in range(5):
        assert sim.state()["users"]
    clean = oktasim(SMALL)
    with client(clean) as c:
        assert {_outcome(c, "/api/v1/groups") for _ in range(12)} == {"ok"}


def test_latency_overlaps_requests_in_flight(oktasim):
    """--latency-ms is an asyncio sleep: concurrent requests are in flight together."""
    from concurrent.futures import ThreadPoolExecutor

    sim = oktasim([*SMALL, "--latency-ms", "300"])

    def one(_):
        with client(sim) as c:
            return c.get("/api/v1/users", params={"limit": 2}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, range(8))) == {200}
    assert sim.stats()["max_in_flight"] >= 2


def test_stats_and_reset(oktasim):
    sim = oktasim([*SMALL, "--latency-ms", "3", "--window-seconds", "6", "--concurrency-limit", "9"])
    with client(sim) as c:
        for _ in range(4):
            assert c.get("/api/v1/users").status_code == 200
        c.get("/api/v1/groups")
    st = sim.stats()
    assert st["requests_total"] == 5 and st["latency_ms"] == 3
    assert st["window_seconds"] == 6 and st["concurrency_limit"] == 9
    assert st["buckets"]["/api/v1/users"]["requests"] == 4
    assert st["max_in_flight"] >= 1 and st["throttled_total"] == 0
    sim.reset_stats()
    st = sim.stats()
    assert st["requests_total"] == 0 and st["buckets"]["/api/v1/users"]["requests"] == 0
    r = httpx.get(f"{sim.url}/__sim/nothing")
    assert r.status_code == 404 and r.json()["errorCode"] == "E0000008"
    assert httpx.delete(f"{sim.url}/__sim/state").status_code == 405
