"""Rate limits over real HTTP: bucket matching and header values, 429 E0000047 without Retry-After,
windows that reset, the org bucket shared by tokens, and the concurrency limit (Limit=0/Remaining=0)."""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.support.sim import Sim

TOKEN_A = "00rate-a-" + "a" * 33
TOKEN_B = "00rate-b-" + "b" * 33
TOKEN_C = "00rate-c-" + "c" * 33


def _sim(*args: str) -> Sim:
    return Sim(["--users", "20", "--groups", "5", "--apps", "3",
                "--api-token", TOKEN_A, "--api-token", TOKEN_B, "--api-token", TOKEN_C, *args])


def _get(sim: Sim, path: str, token: str = TOKEN_A) -> httpx.Response:
    return httpx.get(f"{sim.url}{path}", headers={"Authorization": f"SSWS {token}"}, timeout=30)


def _epoch(resp: httpx.Response) -> int:
    return int(parsedate_to_datetime(resp.headers["Date"]).timestamp())


@pytest.fixture
def started():
    sims: list[Sim] = []
    yield sims
    for sim in sims:
        sim.stop()


def test_buckets_and_headers(started):
    sim = _sim()
    started.append(sim)
    st = sim.state()
    uid, gid, aid = st["users"][0]["id"], st["groups"][1]["id"], st["apps"][0]["id"]
    # (path, bucket, X-Rate-Limit-Limit, X-Rate-Limit-Remaining) in request order: buckets that share
    # a counter keep counting down, the others start at limit - 1.
    calls = [
        ("/api/v1/users", "/api/v1/users", 300, 299),
        (f"/api/v1/users/{uid}", "GET /api/v1/users/{idOrLogin}", 1000, 999),
        (f"/api/v1/users/{uid}/roles", "/api/v1/users/{id}*", 300, 299),
        (f"/api/v1/users/{uid}/groups", "/api/v1/users/{id}*", 300, 298),
        ("/api/v1/groups", "/api/v1/groups*", 250, 249),
        (f"/api/v1/groups/{gid}", "/api/v1/groups/{id}", 500, 499),
        (f"/api/v1/groups/{gid}/users", "/api/v1/groups*", 250, 248),
        ("/api/v1/apps", "/api/v1/apps*", 50, 49),
        (f"/api/v1/apps/{aid}", "/api/v1/apps/{id}", 250, 249),
        (f"/api/v1/apps/{aid}/users", "/api/v1/apps*", 50, 48),
        (f"/api/v1/apps/{aid}/groups", "/api/v1/apps*", 50, 47),
        ("/api/v1/iam/roles", "/api/v1", 600, 599),
        ("/api/v1/api-tokens", "/api/v1", 600, 598),
        ("/api/v1/org", "/api/v1", 600, 597),
    ]
    for path, _bucket, limit, remaining in calls:
        resp = _get(sim, path)
        assert resp.status_code == 200, (path, resp.text)
        assert (resp.headers["X-Rate-Limit-Limit"], resp.headers["X-Rate-Limit-Remaining"]) == \
            (str(limit), str(remaining)), path
        reset = int(resp.headers["X-Rate-Limit-Reset"])
        assert _epoch(resp) <= reset <= _epoch(resp) + 61, path
        assert resp.headers["X-Okta-Request-Id"] and "Retry-After" not in resp.headers
    # The other token has its own share of the same buckets.
    assert _get(sim, "/api/v1/apps", TOKEN_B).headers["X-Rate-Limit-Remaining"] == "49"
    buckets = sim.stats()["buckets"]
    expected: dict[str, int] = {}
    for _path, bucket, _limit, _remaining in calls:
        expected[bucket] = expected.get(bucket, 0) + 1
    expected["/api/v1/apps*"] += 1
    assert {name: b["requests"] for name, b in buckets.items() if b["requests"]} == expected
    assert buckets["/api/v1/apps*"]["limit"] == 50 and buckets["GET /api/v1/users/{idOrLogin}"]["limit"] == 1000


def test_429_until_the_window_resets(started):
    # apps* is 100/min org-wide: x0.02 -> 2 per window for the org, 1 per token.
    sim = _sim("--rate-limit-scale", "0.02", "--window-seconds", "2")
    started.append(sim)
    ok = _get(sim, "/api/v1/apps")
    assert ok.status_code == 200
    assert (ok.headers["X-Rate-Limit-Limit"], ok.headers["X-Rate-Limit-Remaining"]) == ("1", "0")
    over = _get(sim, "/api/v1/apps")
    assert over.status_code == 429
    body = over.json()
    assert body["errorCode"] == "E0000047"
    assert body["errorSummary"] == "API call exceeded rate limit due to too many requests."
    assert set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}
    assert "Retry-After" not in over.headers
    assert (over.headers["X-Rate-Limit-Limit"], over.headers["X-Rate-Limit-Remaining"]) == ("1", "0")
    assert over.headers["X-Rate-Limit-Reset"] == ok.headers["X-Rate-Limit-Reset"]
    assert over.headers["Content-Type"].startswith("application/json")
    # Another bucket is unaffected; another token has its own share; a third finds the org bucket spent.
    assert _get(sim, "/api/v1/groups").status_code == 200
    assert _get(sim, "/api/v1/apps", TOKEN_B).status_code == 200
    assert _get(sim, "/api/v1/apps", TOKEN_C).status_code == 429
    stats = sim.stats()
    assert stats["throttled_total"] == 2 and stats["window_seconds"] == 2
    assert stats["buckets"]["/api/v1/apps*"] == {"requests": 4, "throttled": 2, "limit": 1}
    # Waiting until X-Rate-Limit-Reset (by the server's Date, as the SDKs do) opens a new window.
    time.sleep(max(0.0, int(over.headers["X-Rate-Limit-Reset"]) - _epoch(over)) + 1.0)
    assert _get(sim, "/api/v1/apps").status_code == 200
    sim.reset_stats()
    assert sim.stats()["throttled_total"] == 0


def test_concurrency_limit(started):
    sim = _sim("--concurrency-limit", "2", "--latency-ms", "2000")
    started.append(sim)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=10)) as client:
            return await asyncio.gather(*[
                client.get(f"{sim.url}/api/v1/users", headers={"Authorization": f"SSWS {TOKEN_A}"})
                for _ in range(6)])

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429, 429, 429, 429]
    for resp in responses:
        if resp.status_code == 429:
            assert resp.json()["errorCode"] == "E0000047"
            assert (resp.headers["X-Rate-Limit-Limit"], resp.headers["X-Rate-Limit-Remaining"]) == ("0", "0")
            assert int(resp.headers["X-Rate-Limit-Reset"]) >= _epoch(resp)
            assert "Retry-After" not in resp.headers and resp.headers["Date"]
        else:
            assert resp.headers["X-Rate-Limit-Limit"] == "300"
    stats = sim.stats()
    assert (stats["max_in_flight"], stats["concurrency_limit"], stats["throttled_total"]) == (2, 2, 4)
