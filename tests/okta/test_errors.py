"""Okta's error shapes -> typed exceptions (status, errorCode, errorSummary, errorCauses, request id)."""

import pickle

import orjson
import pytest

from worker.okta.errors import (
    OktaAuthenticationError,
    OktaConflict,
    OktaError,
    OktaInvalidRequest,
    OktaNotFound,
    OktaPermissionDenied,
    OktaRateLimited,
    OktaTransientError,
    RateLimitWait,
    error_from_response,
    parse_www_authenticate,
)


def _okta(code, summary, causes=()):
    return orjson.dumps({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oaeX",
                         "errorCauses": [{"errorSummary": c} for c in causes]})


@pytest.mark.parametrize("status, body, cls, code", [
    (404, _okta("E0000007", "Not found: Resource not found: 00u1 (User)"), OktaNotFound, "E0000007"),
    (403, _okta("E0000006", "You do not have permission to perform the requested action"), OktaPermissionDenied, "E0000006"),
    (409, _okta("E0000090", "The role specified is already assigned to the user."), OktaConflict, "E0000090"),
    (400, _okta("E0000001", "Api validation failed: name", ["name: may not be empty"]), OktaInvalidRequest, "E0000001"),
    (405, _okta("E0000022", "The endpoint does not support the provided HTTP method"), OktaInvalidRequest, "E0000022"),
    (401, _okta("E0000011", "Invalid token provided"), OktaAuthenticationError, "E0000011"),
    (429, _okta("E0000047", "API call exceeded rate limit due to too many requests."), OktaRateLimited, "E0000047"),
    (500, _okta("E0000009", "Internal Server Error"), OktaTransientError, "E0000009"),
    (503, _okta("E0000010", "Service is in read only mode"), OktaTransientError, "E0000010"),
    (502, b"<html>Bad gateway</html>", OktaTransientError, None),
    (404, b'{"status":404,"message":"Resource not found"}', OktaNotFound, None),
    (401, b'{"error":"invalid_client","error_description":"The client_assertion token has an invalid \'kid\'."}',
     OktaAuthenticationError, "invalid_client"),
    (400, b'{"error":"invalid_scope","error_description":"No scopes were requested."}', OktaAuthenticationError,
     "invalid_scope"),
])
def test_shapes_become_typed_errors(status, body, cls, code):
    err = error_from_response(status, {"X-Okta-Request-Id": "rid-1"}, body, method="GET",
                              url="https://acme.okta.com/api/v1/users?search=profile.email+eq+%22a%40b.c%22")
    assert type(err) is cls and isinstance(err, OktaError)
    assert err.status == status and err.error_code == code and err.request_id == "rid-1"
    assert "rid-1" in str(err) and "GET https://acme.okta.com/api/v1/users" in str(err)
    assert "a%40b.c" not in str(err)  # queries (search expressions) are left out of messages
    assert err.errorCode == code  # camelCase aliases


def test_causes_and_retry_later_conflicts():
    err = error_from_response(400, {}, _okta("E0000001", "Api validation failed", ["login: already exists"]))
    assert err.error_causes == ["login: already exists"] and "login: already exists" in str(err)
    assert not err.retryable
    assert error_from_response(409, {}, _okta("E0000268", "Another request is making changes")).retryable
    assert not error_from_response(409, {}, _okta("E0000090", "duplicate")).retryable
    assert error_from_response(429, {}, _okta("E0000047", "x")).retryable


def test_header_only_errors():
    scope = ('Bearer authorization_uri="http://o/oauth2/v1/authorize", realm="http://o", scope="okta.groups.read", '
             'error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", '
             'resource="/api/v1/groups"')
    err = error_from_response(403, {"WWW-Authenticate": scope}, b"")
    assert isinstance(err, OktaPermissionDenied) and err.error_code == "insufficient_scope"
    assert "okta.groups.read" in str(err)
    replay = ('DPoP algs="RS256 ES256", error="invalid_dpop_proof", '
              'error_description="The DPoP proof JWT has already been used.", resource="/api/v1/users"')
    err = error_from_response(400, {"WWW-Authenticate": replay}, b"")
    assert isinstance(err, OktaAuthenticationError) and "already been used" in str(err)
    scheme, params = parse_www_authenticate(replay)
    assert scheme == "DPoP" and params["algs"] == "RS256 ES256" and params["resource"] == "/api/v1/users"


def test_errors_survive_pickling_for_celery():
    err = error_from_response(404, {"X-Okta-Request-Id": "r"}, _okta("E0000007", "Not found"), method="GET",
                              url="https://acme.okta.com/api/v1/users/00u1")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is OktaNotFound and back.error_code == "E0000007" and back.request_id == "r"
    assert str(back) == str(err)
    wait = pickle.loads(pickle.dumps(RateLimitWait(3.5, "paused")))
    assert wait.seconds == 3.5 and wait.reason == "paused"
