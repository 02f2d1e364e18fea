"""Every error recorded from real Okta goes through the error parser; Link and rate-limit headers parse.

(The recorded success bodies go through the connector's mapping in tests/connector/test_mapping.py.)
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
import yaml

from tests.support.recordings import RECORDINGS
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


@pytest.fixture(scope="module")
def recorded():
    return list(_interactions())


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
