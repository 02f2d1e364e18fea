"""OAuth over real HTTP: /oauth2/v1/token with private_key_jwt (Bearer and DPoP apps), then the
tokens on /api/v1. Keys are generated here; no private key is stored anywhere."""

from __future__ import annotations

import time

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oktasim.oauth import JWT_BEARER, client_assertion, dpop_proof
from tests.support.sim import Sim

CLIENT_ID = "0oasimtestapp0000001"
KID = "test-key-1"
SCOPES = "okta.users.read okta.groups.read"


def _rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def client_key():
    return _rsa()


@pytest.fixture(scope="module")
def proof_key():
    return _rsa()


@pytest.fixture(scope="module")
def public_pem(client_key, tmp_path_factory):
    path = tmp_path_factory.mktemp("oauth") / "app.pub"
    path.write_bytes(client_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


def _start(public_pem: str, *extra: str) -> Sim:
    return Sim(["--users", "20", "--groups", "5", "--apps", "3", "--oauth-client-id", CLIENT_ID,
                "--oauth-public-key", public_pem, "--oauth-key-id", KID, "--oauth-scopes", SCOPES, *extra])


@pytest.fixture(scope="module")
def bearer_sim(public_pem):
    sim = _start(public_pem)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def dpop_sim(public_pem):
    sim = _start(public_pem, "--oauth-require-dpop")
    yield sim
    sim.stop()


def _form(key, token_url: str, scope: str = SCOPES, kid: str | None = KID, **claims) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "scope": scope,
            "client_assertion": client_assertion(key, CLIENT_ID, token_url, kid, **claims)}


def _token_url(sim: Sim) -> str:
    return f"{sim.url}/oauth2/v1/token"


def _post_token(sim: Sim, form: dict[str, str], proof: str | None = None) -> httpx.Response:
    headers = {"Accept": "application/json"}
    if proof:
        headers["DPoP"] = proof
    return httpx.post(_token_url(sim), data=form, headers=headers, timeout=30)


def _oauth_error(resp: httpx.Response, status: int, error: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error, body
    return body["error_description"]


def _challenge(resp: httpx.Response) -> str:
    return resp.headers["WWW-Authenticate"]


# ---------------------------------------------------------------------------------------- Bearer

def test_bearer_token_and_its_use(bearer_sim, client_key):
    resp = _post_token(bearer_sim, _form(client_key, _token_url(bearer_sim)))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert set(body["scope"].split()) == set(SCOPES.split())
    assert "no-store" in resp.headers["Cache-Control"] and "DPoP-Nonce" not in resp.headers
    assert resp.headers["X-Rate-Limit-Limit"] == "1000"  # token endpoint 2,000 x the app's 50 %
    token = body["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    users = httpx.get(f"{bearer_sim.url}/api/v1/users?limit=2", headers=auth, timeout=30)
    assert users.status_code == 200 and len(users.json()) == 2
    assert users.headers["X-Rate-Limit-Limit"] == "300"

    # A scope the token lacks: 403, empty body, Okta's challenge naming the missing scope.
    apps = httpx.get(f"{bearer_sim.url}/api/v1/apps", headers=auth, timeout=30)
    assert apps.status_code == 403 and apps.content == b""
    challenge = _challenge(apps)
    assert challenge.startswith("Bearer authorization_uri=")
    for part in ('scope="okta.apps.read"', 'error="insufficient_scope"', 'resource="/api/v1/apps"',
                 'error_description="The access token provided does not contain the required scopes."'):
        assert part in challenge

    # The client role endpoints need okta.roles.read like the other role endpoints (checked before the client).
    roles = httpx.get(f"{bearer_sim.url}/oauth2/v1/clients/{CLIENT_ID}/roles", headers=auth, timeout=30)
    assert roles.status_code == 403 and 'scope="okta.roles.read"' in _challenge(roles)

    # A Bearer token presented with the DPoP scheme, and a token the server never issued.
    for header in (f"DPoP {token}", "Bearer " + "x" * 40):
        resp = httpx.get(f"{bearer_sim.url}/api/v1/users", headers={"Authorization": header}, timeout=30)
        assert resp.status_code == 401 and resp.json()["errorCode"] == "E0000011"
        assert 'error="invalid_token"' in _challenge(resp)


def test_replayed_assertion_is_refused(bearer_sim, client_key):
    form = _form(client_key, _token_url(bearer_sim))
    assert _post_token(bearer_sim, form).status_code == 200
    assert "already been used" in _oauth_error(_post_token(bearer_sim, form), 401, "invalid_client")


@pytest.mark.parametrize(("case", "kwargs", "words"), [
    ("wrong kid", {"kid": "another-key"}, "kid"),
    ("wrong audience", {"aud": "https://other.okta.com/oauth2/v1/token"}, "audience"),
    ("custom AS audience", {"aud": "{url}/oauth2/default/v1/token"}, "audience"),
    ("expired", {"iat": int(time.time()) - 900, "exp": int(time.time()) - 300}, "expired"),
    ("too far ahead", {"exp": int(time.time()) + 2 * 3600}, "future"),
    ("no exp", {"exp": None}, "expiration"),
    ("issuer", {"iss": "0oasomeoneelse"}, "iss"),
    ("subject", {"sub": "0oasomeoneelse"}, "sub"),
])
def test_bad_assertion_is_invalid_client(bearer_sim, client_key, case, kwargs, words):
    kwargs = {k: v.format(url=bearer_sim.url) if isinstance(v, str) else v for k, v in kwargs.items()}
    description = _oauth_error(_post_token(bearer_sim, _form(client_key, _token_url(bearer_sim), **kwargs)),
                               401, "invalid_client")
    assert words in description


def test_assertion_signed_by_another_key(bearer_sim):
    description = _oauth_error(_post_token(bearer_sim, _form(_rsa(), _token_url(bearer_sim))), 401, "invalid_client")
    assert "signature" in description


@pytest.mark.parametrize(("scope", "words"), [
    ("okta.users.read okta.apps.read", "okta.apps.read"),
    ("", "No scopes were requested."),
])
def test_scope_not_granted_is_invalid_scope(bearer_sim, client_key, scope, words):
    resp = _post_token(bearer_sim, _form(client_key, _token_url(bearer_sim), scope=scope))
    assert words in _oauth_error(resp, 400, "invalid_scope")


def test_request_shape_errors(bearer_sim, client_key):
    form = _form(client_key, _token_url(bearer_sim))
    _oauth_error(_post_token(bearer_sim, {**form, "grant_type": "password"}), 400, "unsupported_grant_type")
    _oauth_error(_post_token(bearer_sim, {**form, "client_assertion_type": "urn:x"}), 400, "invalid_request")
    secret = {"grant_type": "client_credentials", "scope": SCOPES, "client_id": CLIENT_ID, "client_secret": "s"}
    assert "private_key_jwt" in _oauth_error(_post_token(bearer_sim, secret), 401, "invalid_client")


# ------------------------------------------------------------------------------------------ DPoP

def _dpop_token(sim: Sim, client_key, proof_key, scope: str = SCOPES) -> str:
    url = _token_url(sim)
    first = _post_token(sim, _form(client_key, url, scope=scope), dpop_proof(proof_key, "POST", url))
    _oauth_error(first, 400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    resp = _post_token(sim, _form(client_key, url, scope=scope), dpop_proof(proof_key, "POST", url, nonce=nonce))
    assert resp.status_code == 200, resp.text
    assert resp.json()["token_type"] == "DPoP" and resp.headers["DPoP-Nonce"] == nonce
    return resp.json()["access_token"]


def test_dpop_token_round(dpop_sim, client_key, proof_key):
    url = _token_url(dpop_sim)
    # No proof at all.
    assert _oauth_error(_post_token(dpop_sim, _form(client_key, url)), 400, "invalid_dpop_proof") == \
        "The DPoP proof JWT header is missing."
    # First proof without a nonce: 400 use_dpop_nonce with the nonce in a header.
    form = _form(client_key, url)
    first = _post_token(dpop_sim, form, dpop_proof(proof_key, "POST", url))
    assert _oauth_error(first, 400, "use_dpop_nonce") == "Authorization server requires nonce in DPoP proof."
    nonce = first.headers["DPoP-Nonce"]
    assert nonce
    # The assertion was spent by that attempt (as at Okta): reusing it is refused.
    again = _post_token(dpop_sim, form, dpop_proof(proof_key, "POST", url, nonce=nonce))
    assert "already been used" in _oauth_error(again, 401, "invalid_client")
    # A wrong nonce is answered like a missing one.
    wrong = _post_token(dpop_sim, _form(client_key, url), dpop_proof(proof_key, "POST", url, nonce="stale"))
    _oauth_error(wrong, 400, "use_dpop_nonce")
    # Proof for the wrong method or URL.
    bad_htm = _post_token(dpop_sim, _form(client_key, url), dpop_proof(proof_key, "GET", url, nonce=nonce))
    assert "htm" in _oauth_error(bad_htm, 400, "invalid_dpop_proof")
    bad_typ = _post_token(dpop_sim, _form(client_key, url), dpop_proof(proof_key, "POST", url, nonce=nonce, typ="JWT"))
    assert "typ" in _oauth_error(bad_typ, 400, "invalid_dpop_proof")
    # A fresh assertion and a proof with the nonce: a DPoP token.
    resp = _post_token(dpop_sim, _form(client_key, url), dpop_proof(proof_key, "POST", url, nonce=nonce))
    assert resp.status_code == 200, resp.text
    assert resp.json()["token_type"] == "DPoP" and resp.json()["expires_in"] == 3600


def test_dpop_resource_requests(dpop_sim, client_key, proof_key):
    token = _dpop_token(dpop_sim, client_key, proof_key)
    url = f"{dpop_sim.url}/api/v1/users"

    def call(proof: str | None, scheme: str = "DPoP", target: str = url + "?limit=3") -> httpx.Response:
        headers = {"Authorization": f"{scheme} {token}"}
        if proof:
            headers["DPoP"] = proof
        return httpx.get(target, headers=headers, timeout=30)

    proof = dpop_proof(proof_key, "GET", url, access_token=token)
    ok = call(proof)
    assert ok.status_code == 200 and len(ok.json()) == 3 and ok.headers["X-Rate-Limit-Limit"] == "300"

    def refused(resp: httpx.Response, words: str) -> None:
        assert resp.status_code == 400 and resp.content == b"", resp.text
        challenge = _challenge(resp)
        assert challenge.startswith('DPoP algs="RS256 RS384 RS512 ES256 ES384 ES512"')
        assert 'error="invalid_dpop_proof"' in challenge and 'resource="/api/v1/users"' in challenge
        assert words in challenge, challenge

    refused(call(proof), "The DPoP proof JWT has already been used.")
    refused(call(None), "missing")
    refused(call(dpop_proof(proof_key, "GET", f"{dpop_sim.url}/api/v1/groups", access_token=token)), "'htu'")
    refused(call(dpop_proof(proof_key, "GET", url, access_token=token, htu=url + "?limit=3")), "'htu'")
    refused(call(dpop_proof(proof_key, "POST", url, access_token=token)), "'htm'")
    refused(call(dpop_proof(proof_key, "GET", url)), "'ath'")
    refused(call(dpop_proof(proof_key, "GET", url, access_token="another-token")), "'ath'")
    refused(call(dpop_proof(_rsa(), "GET", url, access_token=token)), "bound")
    refused(call(dpop_proof(proof_key, "GET", url, access_token=token, now=time.time() - 600)), "five minutes")

    # A DPoP-bound token sent as a Bearer token.
    bearer = call(None, scheme="Bearer")
    assert bearer.status_code == 401 and bearer.json()["errorCode"] == "E0000011"
    assert 'error="invalid_token"' in _challenge(bearer)

    # Missing scope with a DPoP token: the challenge uses the DPoP scheme.
    apps_url = f"{dpop_sim.url}/api/v1/apps"
    apps = call(dpop_proof(proof_key, "GET", apps_url, access_token=token), target=apps_url)
    assert apps.status_code == 403 and apps.content == b""
    assert _challenge(apps).startswith("DPoP algs=") and 'scope="okta.apps.read"' in _challenge(apps)
    assert 'error="insufficient_scope"' in _challenge(apps)
