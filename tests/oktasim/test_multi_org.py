"""Many orgs in one process (`--orgs N`): each org at its own loopback URL with its own token, state,
rate limits and concurrency limit; the orgs file; org i is the org `--seed SEED+i` serves; mixed
sizes spread like real customers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from oktasim.fleet import plan
from tests.support.sim import SIM_TOKEN

SMALL = ["--users", "30", "--groups", "6", "--apps", "4"]


def _orgs(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _client(org: dict, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=org["url"], timeout=30,
                        headers={"Authorization": f"SSWS {token or org['token']}"})


def _state(org: dict) -> dict:
    return httpx.get(f"{org['url']}/__sim/state", timeout=30).raise_for_status().json()


def test_orgs_file_lists_every_org_at_its_own_address(oktasim, tmp_path):
    sim = oktasim([*SMALL, "--orgs", "3", "--seed", "5", "--orgs-file", str(tmp_path / "orgs.jsonl")])
    orgs = _orgs(tmp_path / "orgs.jsonl")
    assert [set(o) for o in orgs] == [{"url", "token", "users", "groups", "apps", "seed"}] * 3
    assert orgs[0]["url"] == sim.url
    parts = [urlsplit(o["url"]) for o in orgs]
    assert [p.hostname for p in parts] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert len({p.port for p in parts}) == 1
    assert [(o["users"], o["groups"], o["apps"], o["seed"]) for o in orgs] == [(30, 6, 4, 5 + i) for i in range(3)]
    assert len({o["token"] for o in orgs}) == 3 and SIM_TOKEN not in {o["token"] for o in orgs}

    ids = []
    for org in orgs:
        with _client(org) as c:
            r = c.get("/api/v1/users", params={"limit": 200})
            assert r.status_code == 200
            assert all(link.startswith(f"<{org['url']}/") for link in r.headers.get_list("link"))
            ids.append({u["id"] for u in r.json()})
    assert ids[0].isdisjoint(ids[1]) and ids[1].isdisjoint(ids[2])

    # a token of one org is refused by the others, as in Okta
    with _client(orgs[1], orgs[0]["token"]) as c:
        assert c.get("/api/v1/users").status_code == 401


def test_org_i_is_the_org_of_seed_plus_i(oktasim, tmp_path):
    oktasim([*SMALL, "--orgs", "2", "--seed", "40", "--orgs-file", str(tmp_path / "orgs.jsonl")])
    second = _orgs(tmp_path / "orgs.jsonl")[1]
    alone = oktasim([*SMALL, "--seed", "41"])
    assert _state(second) == alone.state()


def test_orgs_have_their_own_state(oktasim, tmp_path):
    oktasim([*SMALL, "--orgs", "2", "--orgs-file", str(tmp_path / "orgs.jsonl")])
    a, b = _orgs(tmp_path / "orgs.jsonl")
    before_b = _state(b)
    with _client(a) as c:
        created = c.post("/api/v1/groups", json={"profile": {"name": "Only in A"}})
        assert created.status_code == 200
        uid = _state(a)["users"][0]["id"]
        assert c.put(f"/api/v1/groups/{created.json()['id']}/users/{uid}").status_code == 204
    names_a = {g["profile"]["name"] for g in _state(a)["groups"]}
    assert "Only in A" in names_a
    assert _state(b) == before_b
    with _client(b) as c:
        assert c.get(f"/api/v1/groups/{created.json()['id']}").status_code == 404


def test_orgs_have_their_own_rate_limits_and_stats(oktasim, tmp_path):
    # /api/v1/users: 600 a window for the org, 0.01 of it = 6, half per token = 3
    oktasim([*SMALL, "--orgs", "2", "--rate-limit-scale", "0.01", "--orgs-file", str(tmp_path / "orgs.jsonl")])
    a, b = _orgs(tmp_path / "orgs.jsonl")
    with _client(a) as c:
        codes = [c.get("/api/v1/users").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    with _client(b) as c:
        r = c.get("/api/v1/users")
    assert r.status_code == 200
    assert (r.headers["X-Rate-Limit-Limit"], r.headers["X-Rate-Limit-Remaining"]) == ("3", "2")
    stats_a = httpx.get(f"{a['url']}/__sim/stats").json()
    stats_b = httpx.get(f"{b['url']}/__sim/stats").json()
    assert (stats_a["requests_total"], stats_a["throttled_total"]) == (4, 1)
    assert (stats_b["requests_total"], stats_b["throttled_total"]) == (1, 0)


def test_orgs_have_their_own_concurrency_limit(oktasim, tmp_path):
    oktasim([*SMALL, "--orgs", "2", "--concurrency-limit", "1", "--latency-ms", "2000",
             "--orgs-file", str(tmp_path / "orgs.jsonl")])
    a, b = _orgs(tmp_path / "orgs.jsonl")
    results: dict[str, list[int]] = {"a": [], "b": []}

    def call(name: str, org: dict) -> None:
        with _client(org) as c:
            results[name].append(c.get("/api/v1/org").status_code)

    threads = [threading.Thread(target=call, args=("a", a)) for _ in range(2)]
    threads.append(threading.Thread(target=call, args=("b", b)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results["a"]) == [200, 429]     # org A's second request in flight is over its limit
    assert results["b"] == [200]                  # org B has its own limit


def test_given_api_token_is_accepted_by_every_org(oktasim, tmp_path):
    token = "00given-" + "g" * 34
    oktasim([*SMALL, "--orgs", "2", "--api-token", f"{token}=read-only", "--orgs-file", str(tmp_path / "o.jsonl")])
    orgs = _orgs(tmp_path / "o.jsonl")
    assert [o["token"] for o in orgs] == [token, token]
    for org in orgs:
        with _client(org) as c:
            assert c.get("/api/v1/users").status_code == 200
            assert c.post("/api/v1/groups", json={"profile": {"name": "x"}}).status_code == 403


def test_one_org_keeps_the_default_token_and_writes_the_file(oktasim, tmp_path):
    sim = oktasim([*SMALL, "--orgs-file", str(tmp_path / "orgs.jsonl")])
    assert _orgs(tmp_path / "orgs.jsonl") == [{"url": sim.url, "token": SIM_TOKEN, "users": 30, "groups": 6,
                                               "apps": 4, "seed": 0}]


def test_mixed_sizes_are_listed_and_served(oktasim, tmp_path):
    oktasim(["--orgs", "12", "--org-sizes", "mixed", "--seed", "3", "--orgs-file", str(tmp_path / "orgs.jsonl")])
    orgs = _orgs(tmp_path / "orgs.jsonl")
    assert len(orgs) == 12 and len({o["users"] for o in orgs}) > 1
    for org in orgs[:3]:
        state = _state(org)
        assert len(state["users"]) == org["users"]
        assert len(state["groups"]) == org["groups"]
        assert len(state["apps"]) == org["apps"]


def test_mixed_sizes_spread_like_real_customers():
    sizes = [s.users for s in plan(1000, 0, "mixed", 0, 0, 0, None)]
    small = sum(20 <= u <= 500 for u in sizes)
    thousands = sum(1000 <= u < 20_000 for u in sizes)
    huge = sizes.count(20_000)
    assert small + thousands + huge == 1000
    assert small >= 750 and thousands >= 50 and 1 <= huge <= 30


@pytest.mark.parametrize("args, message", [
    (["--orgs", "2", "--host", "localhost"], "IPv4 loopback"),
    (["--orgs", "2", "--host", "10.0.0.1"], "IPv4 loopback"),
    (["--orgs", "0"], "--orgs must be at least 1"),
])
def test_bad_multi_org_flags_are_refused(args, message):
    r = subprocess.run([sys.executable, "-m", "oktasim", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert message in r.stderr
