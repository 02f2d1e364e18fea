"""OAuth paths the simulator does not exercise, against a small real HTTP server playing Okta:
a resource-server DPoP nonce, an access token revoked early, and clock skew in the error."""

from __future__ import annotations

import time
from email.utils import formatdate
from urllib.parse import parse_qs

import jwt
import orjson
import pytest

from worker.okta.auth import PrivateKeyJWTAuth
from worker.okta.client import OktaClient
from worker.okta.errors import OktaAuthenticationError

JSON = {"Content-Type": "application/json"}


def _token_response(n: int, token_type: str = "DPoP"):
    return 200, JSON, orjson.dumps({"access_token": f"at-{n}", "token_type": token_type, "expires_in": 3600,
                                    "scope": "okta.users.read"})


def test_resource_dpop_nonce_and_revoked_token(local_server, pkcs8_pem):
    tokens = []

    def handler(req):
        if req.path == "/oauth2/v1/token":
            tokens.append(parse_qs(srv.requests[-1]["body"].decode()))
            return _token_response(len(tokens))
        api_calls = [r for r in srv.requests if r["path"].startswith("/api/")]
        if len(api_calls) == 1:  # Okta wants a nonce in resource proofs
            return 401, {**JSON, "DPoP-Nonce": "server-nonce-1",
                         "WWW-Authenticate": 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"'}, b""
        if len(api_calls) == 3:  # the token was revoked early
            return 401, {**JSON, "WWW-Authenticate": 'DPoP error="invalid_token", error_description="The token has expired."'}, \
                orjson.dumps({"errorCode": "E0000011", "errorSummary": "Invalid token provided"})
        return 200, JSON, b"[]"

    srv = local_server(handler)
    auth = PrivateKeyJWTAuth("0oaX", pkcs8_pem, "k1", dpop=True)
    client = OktaClient(srv.url, auth, backoff_base=0.01)
    assert client.request("GET", "/api/v1/users").data == []
    api = [r for r in srv.requests if r["path"].startswith("/api/")]
    first, second = (jwt.decode(r["headers"]["DPoP"], options={"verify_signature": False}) for r in api)
    assert "nonce" not in first and second["nonce"] == "server-nonce-1" and first["jti"] != second["jti"]
    assert api[1]["headers"]["Authorization"] == "DPoP at-1"

    assert client.request("GET", "/api/v1/groups").data == []  # 401 invalid_token -> new token -> 200
    api = [r for r in srv.requests if r["path"].startswith("/api/")]
    assert len(tokens) == 2 and api[-1]["headers"]["Authorization"] == "DPoP at-2"
    assert tokens[0]["client_assertion"] != tokens[1]["client_assertion"]
    assert tokens[0]["scope"] == ["okta.users.read okta.groups.read okta.apps.read okta.roles.read okta.logs.read"]


@pytest.mark.parametrize("description, offset, says", [
    ("The client_assertion token is expired.", 600, "600s behind Okta's"),
    ("The client_assertion token was issued in the future.", -300, "300s ahead of Okta's"),
])
def test_clock_skew_is_named_with_the_measured_offset(local_server, pkcs8_pem, description, offset, says):
    def handler(req):
        return 401, {**JSON, "Date": formatdate(time.time() + offset, usegmt=True)}, orjson.dumps(
            {"error": "invalid_client", "error_description": description})

    srv = local_server(handler)
    with pytest.raises(OktaAuthenticationError) as exc:
        OktaClient(srv.url, PrivateKeyJWTAuth("0oaX", pkcs8_pem, "k1")).get_page("/api/v1/users")
    got = str(exc.value)
    assert "clock skew: this machine's clock is" in got
    seconds = int(got.split("clock is ")[1].split("s ")[0])
    assert abs(seconds - abs(offset)) <= 2 and got.endswith(says.split("s ", 1)[1])
    assert len(srv.requests) == 1  # not retried
