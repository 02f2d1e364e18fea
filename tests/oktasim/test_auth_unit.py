"""What the HTTP tests cannot reach without waiting an hour: token and proof expiry under a controlled
clock, plus argument parsing and secret hygiene. Everything else is tested over HTTP in
test_auth_http.py and test_oauth_http.py."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from oktasim.auth import Authenticator, parse_api_token
from oktasim.errors import OktaError
from oktasim.oauth import JWT_BEARER, OAuthApp, TokenEndpoint, client_assertion, dpop_proof, load_public_key

TOKEN_URL = "http://127.0.0.1:9/oauth2/v1/token"
API_URL = "http://127.0.0.1:9/api/v1/users"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def client_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def proof_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _setup(client_key, dpop: bool):
    clock = Clock()
    app = OAuthApp("0oaUNIT", _pem(client_key), "k1", frozenset({"okta.users.read"}), dpop)
    auth = Authenticator({}, clock=clock)
    return clock, auth, TokenEndpoint(app, auth)


def _token(clock, endpoint, client_key, proof=None):
    form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "scope": "okta.users.read",
            "client_assertion": client_assertion(client_key, "0oaUNIT", TOKEN_URL, "k1", now=clock.t)}
    status, headers, body = endpoint.handle(TOKEN_URL, {"DPoP": proof} if proof else {}, form)
    assert status == 200, body
    return body["access_token"]


def test_bearer_token_expires_after_3600_seconds(client_key):
    clock, auth, endpoint = _setup(client_key, dpop=False)
    token = _token(clock, endpoint, client_key)
    clock.t += 3599
    assert auth.authenticate("GET", API_URL, {"Authorization": f"Bearer {token}"}).id == "0oaUNIT"
    clock.t += 1
    with pytest.raises(OktaError) as err:
        auth.authenticate("GET", API_URL, {"Authorization": f"Bearer {token}"})
    assert err.value.status == 401 and err.value.code == "E0000011"
    assert 'error="invalid_token"' in err.value.headers["WWW-Authenticate"]
    assert "expired" in err.value.headers["WWW-Authenticate"]


def test_dpop_proof_older_than_five_minutes_is_refused(client_key, proof_key):
    clock, auth, endpoint = _setup(client_key, dpop=True)
    status, headers, body = endpoint.handle(TOKEN_URL, {"DPoP": dpop_proof(proof_key, "POST", TOKEN_URL, now=clock.t)}, {
        "grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "scope": "okta.users.read",
        "client_assertion": client_assertion(client_key, "0oaUNIT", TOKEN_URL, "k1", now=clock.t)})
    assert (status, body["error"]) == (400, "use_dpop_nonce")
    token = _token(clock, endpoint, client_key,
                   dpop_proof(proof_key, "POST", TOKEN_URL, nonce=headers["DPoP-Nonce"], now=clock.t))
    old = dpop_proof(proof_key, "GET", API_URL, access_token=token, now=clock.t - 400)
    with pytest.raises(OktaError) as err:
        auth.authenticate("GET", API_URL, {"Authorization": f"DPoP {token}", "DPoP": old})
    assert err.value.status == 400 and err.value.empty_body
    assert "five minutes" in err.value.headers["WWW-Authenticate"]
    fresh = dpop_proof(proof_key, "GET", API_URL, access_token=token, now=clock.t)
    assert auth.authenticate("GET", API_URL, {"Authorization": f"DPoP {token}", "DPoP": fresh}).scopes == \
        frozenset({"okta.users.read"})


def test_token_request_principal_is_the_client_id(client_key):
    clock, auth, endpoint = _setup(client_key, dpop=False)
    assertion = client_assertion(client_key, "0oaUNIT", TOKEN_URL, "k1", now=clock.t)
    assert endpoint.principal_id({"client_assertion": assertion}) == "0oaUNIT"
    assert endpoint.principal_id({"client_id": "0oaUNIT"}) == "0oaUNIT"
    assert endpoint.principal_id({"client_id": "0oaOTHER"}) == "anonymous"
    assert endpoint.principal_id({"client_assertion": "not.a.jwt"}) == "anonymous"


def test_parse_api_token():
    assert parse_api_token("abc") == ("abc", "super-admin")
    assert parse_api_token("abc=read-only") == ("abc", "read-only")
    assert parse_api_token("abc=app-group-admin") == ("abc", "app-group-admin")
    assert parse_api_token("ab=c1") == ("ab=c1", "super-admin")  # '=' inside a token is kept
    with pytest.raises(ValueError, match="unknown level 'admin'") as err:
        parse_api_token("s3cret=admin")
    assert "s3cret" not in str(err.value)


def test_secrets_stay_out_of_reprs_and_errors(client_key):
    auth = Authenticator({"very-secret-token": "read-only"})
    principal = auth.authenticate("GET", API_URL, {"Authorization": "SSWS very-secret-token"})
    assert "very-secret" not in repr(principal) and principal.id.startswith("00T")
    with pytest.raises(OktaError) as err:
        auth.authenticate("GET", API_URL, {"Authorization": "SSWS wrong-secret-token"})
    assert "wrong-secret" not in str(err.value) and "wrong-secret" not in str(err.value.body())
    app = OAuthApp("0oaX", _pem(client_key), "k", frozenset(), False)
    assert "BEGIN PUBLIC KEY" not in repr(app)
    with pytest.raises(ValueError, match="unknown API token level"):
        Authenticator({"t": "root"})


def test_public_key_file_errors(client_key):
    private_pem = client_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
    with pytest.raises(ValueError, match="got a private key"):
        load_public_key(private_pem)
    with pytest.raises(ValueError, match="not a PEM public key"):
        load_public_key(b"hello")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="at least 2048 bits"):
        load_public_key(_pem(small))
