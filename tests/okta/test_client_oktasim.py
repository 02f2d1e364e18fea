"""The client against the simulator over real HTTP: each auth path, every list shape, the error
types, retries under injected faults, 429s, and the limiter in the loop."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.sim import SIM_TOKEN
from worker.connector.types.resource_set import principal_from_member
from worker.okta.auth import PrivateKeyJWTAuth, SSWSAuth
from worker.okta.client import OktaClient
from worker.okta.errors import (
    OktaAuthenticationError,
    OktaConflict,
    OktaInvalidRequest,
    OktaNotFound,
    OktaPermissionDenied,
    OktaTransientError,
    RateLimitWait,
    error_from_response,
)

CLIENT_ID = "0oasimclient00000001"
KID = "sim-key-1"


def _client(sim, auth=None, **kw) -> OktaClient:
    kw.setdefault("backoff_base", 0.01)
    return OktaClient(sim.url, auth or SSWSAuth(SIM_TOKEN), **kw)


@pytest.fixture
def oauth_sim(oktasim, public_pem_file):
    def start(*extra: str):
        return oktasim(["--users", "40", "--oauth-client-id", CLIENT_ID, "--oauth-public-key", public_pem_file,
                        "--oauth-key-id", KID, *extra])
    return start


def _ids(items) -> list[str]:
    return [x["id"] for x in items]


# -- SSWS and pagination ----------------------------------------------------------------------------

def test_ssws_pages_users_by_link_header(oktasim):
    sim = oktasim(["--users", "40"])
    client = _client(sim)
    page = client.get_page("/api/v1/users", {"limit": 7})
    assert len(page.records) == 7 and page.next_url and "after=" in page.next_url
    assert 'rel="next"' in " ".join(page.response.headers.get_list("Link"))
    users = list(client.paginate("/api/v1/users", {"limit": 7}))
    want = {u["id"] for u in sim.state()["users"] if u["status"] != "DEPROVISIONED"}
    assert {u["id"] for u in users} == want and len(users) == len(want)
    assert all(u["profile"]["login"] for u in users)


def test_every_list_shape_paginates(oktasim):
    sim = oktasim(["--users", "60", "--groups", "12", "--apps", "6"])
    client = _client(sim)
    state = sim.state()
    big_group = max(state["groups"], key=lambda g: len(g["members"]))
    app = max(state["apps"], key=lambda a: len(a["users"]))
    app_with_groups = max(state["apps"], key=lambda a: len(a["groups"]))
    link_lists = {
        "/api/v1/groups": ({"limit": 5}, {g["id"] for g in state["groups"]}),
        "/api/v1/apps": ({"limit": 2}, {a["id"] for a in state["apps"]}),
        f"/api/v1/groups/{big_group['id']}/users": ({"limit": 4}, set(big_group["members"])),
        f"/api/v1/apps/{app['id']}/users": ({"limit": 3}, {u["id"] for u in app["users"]}),
        f"/api/v1/apps/{app_with_groups['id']}/groups": ({"limit": 20}, set(app_with_groups["groups"])),
    }
    for path, (params, want) in link_lists.items():
        got = _ids(client.paginate(path, params))
        assert set(got) == want and len(got) == len(want), path
    assert len(big_group["members"]) > 4 and len(app["users"]) > 3  # several pages were followed

    # IAM: the next page is in the body (_links.next.href); the simulator also sends a Link header
    # (test_client_local covers a body link alone).
    page = client.get_page("/api/v1/iam/assignees/users", {"limit": 2})
    assert isinstance(page.items, dict) and page.next_url and "after=" in page.next_url
    assert page.items["_links"]["next"]["href"] == page.next_url
    assignees = _ids(client.paginate("/api/v1/iam/assignees/users", {"limit": 2}))
    user_role_holders = {r["principal_id"] for r in state["role_assignments"] if r["principal_type"] == "user"}
    assert set(assignees) <= {u["id"] for u in state["users"]}
    assert len(assignees) >= 3 and set(assignees) & user_role_holders
    assert set(_ids(client.paginate("/api/v1/iam/roles"))) == {c["id"] for c in state["custom_roles"]}
    assert set(_ids(client.paginate("/api/v1/iam/resource-sets"))) == {s["id"] for s in state["resource_sets"]}
    for rs in state["resource_sets"]:
        bindings = _ids(client.paginate(f"/api/v1/iam/resource-sets/{rs['id']}/bindings"))
        assert set(bindings) == {b["role"] for b in rs["bindings"]}
        for b in rs["bindings"]:
            members = client.paginate(f"/api/v1/iam/resource-sets/{rs['id']}/bindings/{b['role']}/members")
            assert {principal_from_member(mm) for mm in members} == {(x["type"], x["id"]) for x in b["members"]}
    assert set(_ids(client.paginate("/api/v1/api-tokens"))) == {t["id"] for t in state["api_tokens"]}
    for u in list(user_role_holders)[:3]:
        for r in client.get_page(f"/api/v1/users/{u}/roles").records:
            assert r["type"] and r["assignmentType"]


# -- OAuth: JWT Bearer, JWT + DPoP ------------------------------------------------------------------

def test_jwt_bearer_token_cached_per_process(oauth_sim, pkcs8_pem):
    sim = oauth_sim()
    auth = PrivateKeyJWTAuth(CLIENT_ID, pkcs8_pem, KID)
    client = _client(sim, auth)
    assert len(list(client.paginate("/api/v1/users", {"limit": 10}))) > 10
    assert auth.current_token(sim.url).token_type == "Bearer"
    assert auth.token_requests == 1 and auth.proofs_made == 0
    # Another client (a later task) with the same credentials reuses the process' token.
    again = PrivateKeyJWTAuth(CLIENT_ID, pkcs8_pem.replace("\n", "\\n"), KID)
    _client(sim, again).get_page("/api/v1/groups")
    assert again.token_requests == 0
    assert sim.stats()["buckets"]["/oauth2/v1/token"]["requests"] == 1


def test_jwt_dpop_with_nonce_round(oauth_sim, pkcs1_pem):
    sim = oauth_sim("--oauth-require-dpop")
    auth = PrivateKeyJWTAuth(CLIENT_ID, pkcs1_pem, KID)
    client = _client(sim, auth)
    users = list(client.paginate("/api/v1/users", {"limit": 9}))
    assert len(users) > 9
    token = auth.current_token(sim.url)
    assert token.token_type == "DPoP"
    # no proof -> "proof missing"; proof without nonce -> use_dpop_nonce; proof with nonce -> token.
    assert auth.token_requests == 3 and auth.assertions_made == 3
    pages = -(-len(users) // 9)
    assert auth.proofs_made == 2 + pages  # two token proofs, one per API request
    assert sim.stats()["buckets"]["/oauth2/v1/token"]["requests"] == 3
    # A later token (e.g. another scope set) goes straight to DPoP with the known nonce: one request.
    prov = PrivateKeyJWTAuth(CLIENT_ID, pkcs1_pem, KID, use="provisioning")
    _client(sim, prov).get_page("/api/v1/groups")
    assert prov.token_requests == 1


def test_dpop_replayed_proof_is_rejected_and_client_never_replays(oauth_sim, pkcs8_pem):
    sim = oauth_sim("--oauth-require-dpop")
    auth = PrivateKeyJWTAuth(CLIENT_ID, pkcs8_pem, KID)
    client = _client(sim, auth)
    client.get_page("/api/v1/groups")
    url = f"{sim.url}/api/v1/users?limit=1"
    headers = auth.headers(sim.url, "GET", url)
    assert headers["Authorization"].startswith("DPoP ") and headers["DPoP"]
    with httpx.Client() as raw:
        first = raw.get(url, headers=headers)
        replay = raw.get(url, headers=headers)
    assert first.status_code == 200
    assert replay.status_code == 400 and "already been used" in replay.headers["WWW-Authenticate"]
    err = error_from_response(replay.status_code, replay.headers, replay.content, method="GET", url=url)
    assert isinstance(err, OktaAuthenticationError) and err.error_code == "invalid_dpop_proof"
    assert headers["DPoP"] not in str(err) and headers["Authorization"].split()[1] not in str(err)
    # The client makes a fresh proof for every attempt: 30 requests, no rejection.
    for _ in range(30):
        client.request("GET", "/api/v1/users", params={"limit": 1})


def test_dpop_retries_under_faults_use_new_proofs_and_assertions(oauth_sim, pkcs8_pem):
    sim = oauth_sim("--oauth-require-dpop", "--fault-rate", "0.3", "--seed", "7")
    auth = PrivateKeyJWTAuth(CLIENT_ID, pkcs8_pem, KID)
    client = _client(sim, auth, max_retries=8)
    got = _ids(client.paginate("/api/v1/users", {"limit": 5}))
    want = {u["id"] for u in sim.state()["users"] if u["status"] != "DEPROVISIONED"}
    assert set(got) == want and len(got) == len(want)
    pages = -(-len(want) // 5)
    assert sim.stats()["requests_total"] > pages + 3  # faults happened and were retried


def test_oauth_configuration_errors_are_named(oauth_sim, pkcs8_pem):
    sim = oauth_sim("--oauth-scopes", "okta.users.read okta.groups.read")
    with pytest.raises(OktaAuthenticationError) as exc:
        _client(sim, PrivateKeyJWTAuth(CLIENT_ID, pkcs8_pem, "wrong-kid")).get_page("/api/v1/users")
    assert exc.value.error_code == "invalid_client" and "'wrong-kid'" in str(exc.value) and "kid" in str(exc.value)

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    from cryptography.hazmat.primitives import serialization
    other_pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    with pytest.raises(OktaAuthenticationError, match="does not match"):
        _client(sim, PrivateKeyJWTAuth(CLIENT_ID, other_pem, KID)).get_page("/api/v1/users")
    with pytest.raises(OktaAuthenticationError, match="does not know client id"):
        _client(sim, PrivateKeyJWTAuth("0oaunknown", pkcs8_pem, KID)).get_page("/api/v1/users")

    # The app lacks okta.apps.read / okta.roles.read (and okta.logs.read): Okta refuses the token
    # request naming them, the client asks again without them, and only what needs them is refused.
    partial = PrivateKeyJWTAuth(CLIENT_ID, pkcs8_pem, KID)
    client = _client(sim, partial)
    client.get_page("/api/v1/users")
    assert partial.refused_scopes == {"okta.apps.read", "okta.roles.read", "okta.logs.read"}
    with pytest.raises(OktaPermissionDenied) as exc:
        client.get_page("/api/v1/apps")
    assert exc.value.error_code == "insufficient_scope" and "okta.apps.read" in str(exc.value)

    # None of the requested scopes granted: the token request itself is refused, with a hint.
    with pytest.raises(OktaAuthenticationError) as exc:
        _client(sim, PrivateKeyJWTAuth(CLIENT_ID, pkcs8_pem, KID, scopes=["okta.apps.read"])).get_page("/api/v1/users")
    assert exc.value.error_code == "invalid_scope" and "okta.apps.read" in str(exc.value)
    assert "grant them to the service app" in str(exc.value)

    # A token without the scope an endpoint needs: 403 insufficient_scope, naming the scope.
    narrow = PrivateKeyJWTAuth(CLIENT_ID, pkcs8_pem, KID, scopes=["okta.users.read"])
    client = _client(sim, narrow)
    client.get_page("/api/v1/users")
    with pytest.raises(OktaPermissionDenied) as exc:
        client.get_page("/api/v1/groups")
    assert exc.value.error_code == "insufficient_scope" and "okta.groups.read" in str(exc.value)
    token = narrow.current_token(sim.url).value
    assert token not in str(exc.value) and token not in repr(narrow)


# -- errors, retries, 429 ------------------------------------------------------------------------------

def test_each_error_type_from_the_simulator(oktasim):
    sim = oktasim(["--users", "20", "--api-token", f"{SIM_TOKEN}=super-admin", "--api-token", "00readonly-token=read-only"])
    client = _client(sim)
    state = sim.state()
    with pytest.raises(OktaNotFound) as exc:
        client.request("GET", "/api/v1/users/00unotthere000000000")
    assert exc.value.error_code == "E0000007" and exc.value.request_id and exc.value.status == 404
    with pytest.raises(OktaAuthenticationError) as exc:
        _client(sim, SSWSAuth("00wrong-token")).get_page("/api/v1/users")
    assert exc.value.error_code == "E0000011" and "00wrong-token" not in str(exc.value)
    okta_group = next(g for g in state["groups"] if g["type"] == "OKTA_GROUP")
    user = state["users"][0]["id"]
    with pytest.raises(OktaPermissionDenied) as exc:
        _client(sim, SSWSAuth("00readonly-token")).request("PUT", f"/api/v1/groups/{okta_group['id']}/users/{user}")
    assert exc.value.error_code == "E0000006"
    with pytest.raises(OktaInvalidRequest) as exc:
        client.request("POST", "/api/v1/groups", json={"profile": {}})
    assert exc.value.error_code == "E0000001" and exc.value.status == 400
    with pytest.raises(OktaInvalidRequest) as exc:
        client.request("DELETE", "/api/v1/users")
    assert exc.value.status == 405
    plain = next(u["id"] for u in state["users"] if u["status"] == "ACTIVE" and not any(
        r["principal_id"] == u["id"] for r in state["role_assignments"]))
    created = client.request("POST", f"/api/v1/users/{plain}/roles", json={"type": "HELP_DESK_ADMIN"})
    assert created.status == 201 and created.data["type"] == "HELP_DESK_ADMIN"
    with pytest.raises(OktaConflict) as exc:
        client.request("POST", f"/api/v1/users/{plain}/roles", json={"type": "HELP_DESK_ADMIN"})
    assert exc.value.error_code == "E0000090" and not exc.value.retryable
    assert sim.stats()["requests_total"] == 7  # none of these was retried


def test_transient_faults_are_retried_until_the_limit(oktasim):
    sim = oktasim(["--users", "30", "--fault-rate", "0.35", "--seed", "3"])
    got = _ids(_client(sim, max_retries=8).paginate("/api/v1/users", {"limit": 4}))
    assert len(got) == len(set(got)) == len([u for u in sim.state()["users"] if u["status"] != "DEPROVISIONED"])
    assert sim.stats()["requests_total"] > -(-len(got) // 4)

    broken = oktasim(["--users", "5", "--fault-rate", "1.0"])
    with pytest.raises(OktaTransientError) as exc:
        _client(broken, max_retries=3).get_page("/api/v1/users")
    assert "gave up after 4 attempts" in str(exc.value)
    assert broken.stats()["requests_total"] == 4


def test_429_waits_for_reset_or_raises(oktasim):
    # /api/v1/apps* allows 50 requests per window for one token; windows of 2 s.
    sim = oktasim(["--users", "5", "--apps", "3", "--window-seconds", "2"])
    client = _client(sim, max_retries=3)
    for _ in range(60):
        client.request("GET", "/api/v1/apps", params={"limit": 1})
    stats = sim.stats()
    assert stats["buckets"]["/api/v1/apps*"]["throttled"] >= 1
    assert stats["requests_total"] == 60 + stats["throttled_total"]

    raising = _client(sim, on_wait="raise")
    with pytest.raises(RateLimitWait) as exc:
        for _ in range(60):
            raising.request("GET", "/api/v1/apps", params={"limit": 1})
    assert 1.0 <= exc.value.seconds <= 4.5 and "E0000047" in exc.value.reason


def test_with_the_in_process_limiter_no_429(oktasim):
    from worker.okta.ratelimit import MemoryLimiter

    sim = oktasim(["--users", "5", "--apps", "3", "--window-seconds", "2"])
    client = _client(sim, limiter=MemoryLimiter(), tenant="t1")
    for _ in range(15):
        client.request("GET", "/api/v1/apps", params={"limit": 1})
    assert sim.stats()["throttled_total"] == 0


def test_with_the_redis_limiter_through_token_requests(oauth_sim, pkcs8_pem, redis_url):
    import redis

    from worker.okta.ratelimit import RedisLimiter

    sim = oauth_sim("--oauth-require-dpop", "--window-seconds", "2")
    conn = redis.Redis.from_url(redis_url)
    client = _client(sim, PrivateKeyJWTAuth(CLIENT_ID, pkcs8_pem, KID), limiter=RedisLimiter(conn), tenant="t-redis")
    for _ in range(12):
        client.request("GET", "/api/v1/apps", params={"limit": 1})
    assert sim.stats()["throttled_total"] == 0
    keys = [k.decode() for k in conn.keys("*")]
    assert any("t-redis" in k for k in keys)  # the limiter saw this tenant's traffic
    conn.close()
