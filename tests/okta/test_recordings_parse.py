"""Every relevant body recorded from real Okta goes through the models and the error parser."""

from __future__ import annotations

import re
from collections import Counter

import httpx
import orjson
import pytest
import yaml

from tests.support.recordings import RECORDINGS
from worker.okta import models as m
from worker.okta.client import parse_link_header, reset_wait
from worker.okta.errors import (
    OktaAuthenticationError,
    OktaError,
    OktaInvalidRequest,
    OktaNotFound,
    OktaPermissionDenied,
    error_from_response,
)

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ID = r"[^/]+"
# (method regex, path regex, parser) for successful bodies; the first match wins.
ROUTES: list[tuple[str, str, object]] = [
    ("GET|POST", rf"/api/v1/users/{ID}/roles", m.parse_role_assignment),
    ("GET|POST", rf"/api/v1/groups/{ID}/roles", m.parse_role_assignment),
    ("GET", rf"/api/v1/users/{ID}/groups", m.parse_group),
    ("GET", rf"/api/v1/groups/{ID}/users", m.parse_user),
    ("GET", rf"/api/v1/groups/{ID}/apps", m.parse_app),
    ("GET|POST|PUT", r"/api/v1/users", m.parse_user),
    ("GET|POST|PUT", rf"/api/v1/users/{ID}", m.parse_user),
    ("GET|POST|PUT", r"/api/v1/groups", m.parse_group),
    ("GET|POST|PUT", rf"/api/v1/groups/(?!rules$){ID}", m.parse_group),
    ("GET|POST|PUT", rf"/api/v1/apps/{ID}/users(/{ID})?", m.parse_app_user),
    ("GET|PUT", rf"/api/v1/apps/{ID}/groups(/{ID})?", m.parse_app_group),
    ("GET|POST|PUT", r"/api/v1/apps", m.parse_app),
    ("GET|POST|PUT", rf"/api/v1/apps/{ID}", m.parse_app),
    ("GET|POST|PUT", r"/api/v1/iam/roles", m.parse_custom_role),
    ("GET|PUT", rf"/api/v1/iam/roles/{ID}", m.parse_custom_role),
    ("GET|POST|PATCH|PUT", rf"/api/v1/iam/resource-sets/{ID}/bindings", m.parse_binding),
    ("GET|POST|PUT", r"/api/v1/iam/resource-sets", m.parse_resource_set),
    ("GET|PUT|PATCH", rf"/api/v1/iam/resource-sets/{ID}", m.parse_resource_set),
    ("GET", r"/api/v1/api-tokens/?", m.parse_api_token),
    ("GET", rf"/api/v1/api-tokens/{ID}", m.parse_api_token),
]
IAM_LIST_KEYS = {m.parse_custom_role: "roles", m.parse_resource_set: "resource-sets", m.parse_binding: "roles"}


def _interactions():
    if not RECORDINGS.is_dir():
        pytest.fail(f"the Okta recordings folder {RECORDINGS} is missing: these tests need real Okta bodies")
    files = sorted(RECORDINGS.glob("*/*.yaml"))
    if not files:
        pytest.fail(f"no *.yaml recordings under {RECORDINGS}")
    for path in files:
        for it in yaml.load(path.read_text(), Loader=_LOADER)["interactions"]:
            yield path.name, it


def _headers(raw: dict) -> httpx.Headers:
    pairs = []
    for name, value in (raw or {}).items():
        for v in value if isinstance(value, list) else [value]:
            pairs.append((name, str(v)))
    return httpx.Headers(pairs)


def _body(resp: dict) -> bytes:
    body = resp.get("body")
    text = body.get("string") if isinstance(body, dict) else body
    if text is None:
        return b""
    return text.encode() if isinstance(text, str) else bytes(text)


def _route(method: str, path: str):
    for methods, pattern, parser in ROUTES:
        if re.fullmatch(methods, method) and re.fullmatch(pattern, path):
            return parser
    return None


@pytest.fixture(scope="module")
def recorded():
    return list(_interactions())


def test_every_recorded_success_body_parses(recorded):
    parsed: Counter[str] = Counter()
    for name, it in recorded:
        req, resp = it["request"], it["response"]
        status = resp["status"]["code"]
        path = httpx.URL(req["uri"]).path
        body = _body(resp)
        if status >= 300 or not body.strip():
            continue
        parser = _route(req["method"], path)
        if parser is None:
            continue
        data = orjson.loads(body)
        if isinstance(data, dict) and parser in IAM_LIST_KEYS and IAM_LIST_KEYS[parser] in data:
            data = data[IAM_LIST_KEYS[parser]]
        items = data if isinstance(data, list) else [data]
        try:
            out = m.parse_list(parser, items)
        except m.ModelError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{name}: {req['method']} {path}: {exc}")
        for obj in out:
            assert obj.id if hasattr(obj, "id") else obj.role_id
        parsed[parser.__name__] += len(out)
    # Each model met real data (so this test cannot pass by skipping everything).
    for parser in ("parse_user", "parse_group", "parse_app", "parse_app_user", "parse_app_group",
                   "parse_role_assignment", "parse_custom_role", "parse_resource_set", "parse_api_token"):
        assert parsed[parser] > 0, f"no recorded body reached {parser}: {dict(parsed)}"
    assert parsed["parse_user"] >= 50


def test_recorded_fields_land_in_the_models(recorded):
    users = groups = tokens = roles = 0
    for _, it in recorded:
        req, resp = it["request"], it["response"]
        path = httpx.URL(req["uri"]).path
        if resp["status"]["code"] != 200 or req["method"] != "GET":
            continue
        body = _body(resp)
        if path == "/api/v1/users" and body.strip():
            for u in m.parse_list(m.parse_user, orjson.loads(body)):
                assert u.status and u.login and "@" in u.login
                users += 1
        elif path == "/api/v1/groups" and body.strip():
            for g in m.parse_list(m.parse_group, orjson.loads(body)):
                assert g.type in ("OKTA_GROUP", "APP_GROUP", "BUILT_IN") and g.name
                groups += 1
        elif path == "/api/v1/api-tokens" and body.strip():
            for t in m.parse_list(m.parse_api_token, orjson.loads(body)):
                assert t.id.startswith("00T") and t.user_id
                tokens += 1
        elif re.fullmatch(r"/api/v1/(users|groups)/[^/]+/roles", path):
            for r in m.parse_list(m.parse_role_assignment, orjson.loads(body)):
                assert r.type and r.assignment_type in ("USER", "GROUP", "CLIENT")
                roles += 1
    assert users and groups and tokens and roles


def test_every_recorded_error_parses_to_its_type(recorded):
    seen: Counter[str] = Counter()
    for name, it in recorded:
        req, resp = it["request"], it["response"]
        status = resp["status"]["code"]
        if status < 400:
            continue
        headers = _headers(resp.get("headers"))
        err = error_from_response(status, headers, _body(resp), method=req["method"], url=req["uri"])
        assert isinstance(err, OktaError), name
        assert err.status == status
        assert err.request_id == headers.get("x-okta-request-id")
        if status == 404:
            assert isinstance(err, OktaNotFound), (name, err)
        elif status == 403:
            assert isinstance(err, OktaPermissionDenied), (name, err)
        elif status == 401 or "/oauth2/" in req["uri"]:
            assert isinstance(err, OktaAuthenticationError), (name, err)
        elif status == 400:
            assert isinstance(err, OktaInvalidRequest), (name, err)
        assert err.error_code or err.error_summary, (name, str(err))
        # Nothing from the request's credentials leaks into the message.
        for cred in (req.get("headers") or {}).get("Authorization", []) or []:
            assert cred.split(" ", 1)[-1] not in str(err)
        seen[type(err).__name__] += 1
        if isinstance(err, OktaNotFound) and err.error_code:
            assert err.error_code == "E0000007" and err.error_causes == []
    assert seen["OktaNotFound"] and seen["OktaInvalidRequest"] and seen["OktaAuthenticationError"]
    assert seen["OktaPermissionDenied"]


def test_recorded_dpop_token_errors(recorded):
    errors = {}
    for _, it in recorded:
        req, resp = it["request"], it["response"]
        if req["uri"].endswith("/oauth2/v1/token") and resp["status"]["code"] == 400:
            err = error_from_response(400, _headers(resp.get("headers")), _body(resp), method="POST", url=req["uri"])
            errors[err.error_code] = err
    assert set(errors) >= {"use_dpop_nonce", "invalid_dpop_proof"}
    assert "requires nonce" in errors["use_dpop_nonce"].error_summary


def test_recorded_link_headers_and_rate_limit_resets(recorded):
    nexts = resets = 0
    for _, it in recorded:
        req, resp = it["request"], it["response"]
        headers = _headers(resp.get("headers"))
        links = parse_link_header(headers.get_list("link"))
        if headers.get_list("link"):
            assert "self" in links or "next" in links
        if "next" in links:
            # (the sanitized recordings name different hosts in request and link, so compare shapes)
            nxt = httpx.URL(links["next"])
            assert nxt.scheme == "https" and nxt.host.endswith(".okta.com") and "after=" in links["next"]
            nexts += 1
        if headers.get("x-rate-limit-reset") and headers.get("date"):
            wait = reset_wait(headers)
            assert wait is not None and 1.0 <= wait <= 62.0, (req["uri"], headers.get("date"), wait)
            resets += 1
    assert nexts >= 3 and resets > 100
