"""Client behaviour a simulator cannot produce, against a tiny real HTTP server: foreign next links,
truncated and non-JSON bodies, redirects, and the limiter calls around every attempt."""

from __future__ import annotations

import time
from email.utils import formatdate

import orjson
import pytest

from worker.okta.auth import SSWSAuth
from worker.okta.client import OktaClient
from worker.okta.errors import (
    OktaInvalidRequest,
    OktaRateLimited,
    OktaTransientError,
    RateLimitWait,
    RepeatedCursor,
    UnsafeNextLink,
)
from worker.okta.ratelimit.types import Permit, Wait

TOKEN = "00local-test-token-abcdefghijklmnop"


def _json(status: int, body, **headers) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json", **headers}, orjson.dumps(body)


def _client(url: str, **kw) -> OktaClient:
    kw.setdefault("backoff_base", 0.01)
    return OktaClient(url, SSWSAuth(TOKEN), **kw)


@pytest.mark.parametrize("make_next", [
    lambda a, b: f"{b.url}/api/v1/users?after=x",  # another port
    lambda a, b: f"http://localhost:{a.port}/api/v1/users?after=x",  # another host name
    lambda a, b: f"https://127.0.0.1:{a.port}/api/v1/users?after=x",  # another scheme
    lambda a, b: f"http://evil@127.0.0.1:{a.port}/api/v1/users?after=x",  # userinfo
])
def test_foreign_link_header_is_refused_and_never_contacted(local_server, make_next):
    foreign = local_server(lambda req: _json(200, []))
    holder = {}
    tenant = local_server(lambda req: _json(200, [{"id": "00u1"}], Link=[
        f'<{holder["self"]}/api/v1/users?limit=1>; rel="self"', f'<{holder["next"]}>; rel="next"']))
    holder["self"], holder["next"] = tenant.url, make_next(tenant, foreign)
    client = _client(tenant.url)
    with pytest.raises(UnsafeNextLink) as exc:
        client.get_page("/api/v1/users", {"limit": 1})
    assert "refusing next link" in str(exc.value) and TOKEN not in str(exc.value)
    got = []
    with pytest.raises(UnsafeNextLink):
        for user in client.paginate("/api/v1/users"):
            got.append(user)
    assert foreign.requests == []  # the Authorization header never went to the foreign host
    assert len(tenant.requests) == 2
    assert all(r["headers"]["Authorization"] == f"SSWS {TOKEN}" for r in tenant.requests)


def test_foreign_iam_body_link_is_refused(local_server):
    foreign = local_server(lambda req: _json(200, {"value": []}))
    tenant = local_server(lambda req: _json(200, {
        "value": [{"id": "00u1"}], "_links": {"next": {"href": f"{foreign.url}/api/v1/iam/assignees/users?after=00u1"}}}))
    with pytest.raises(UnsafeNextLink):
        list(_client(tenant.url).paginate("/api/v1/iam/assignees/users"))
    assert foreign.requests == []


def test_absolute_foreign_url_is_refused_before_sending(local_server):
    foreign = local_server(lambda req: _json(200, {}))
    tenant = local_server(lambda req: _json(200, {}))
    with pytest.raises(UnsafeNextLink):
        _client(tenant.url).request("GET", f"{foreign.url}/api/v1/users")
    with pytest.raises(UnsafeNextLink):
        _client(tenant.url).request("GET", f"//127.0.0.1:{foreign.port}/api/v1/users")
    assert foreign.requests == []


def test_iam_body_links_and_link_headers_are_followed(local_server):
    def handler(req):
        if "after=2" in req.path:
            return _json(200, {"value": [{"id": "c"}], "_links": {"self": {"href": "x"}}})
        if "after=1" in req.path:
            return _json(200, {"value": [{"id": "b"}], "_links": {"next": {"href": "/api/v1/iam/assignees/users?after=2"}}})
        return _json(200, {"value": [{"id": "a"}], "_links": {
            "next": {"href": f"http://127.0.0.1:{srv.port}/api/v1/iam/assignees/users?after=1"}}})
    srv = local_server(handler)
    assert [x["id"] for x in _client(srv.url).paginate("/api/v1/iam/assignees/users")] == ["a", "b", "c"]


def test_repeated_cursor_is_an_error(local_server):
    def handler(req):
        # page 1 -> after=A -> after=B -> after=A again: a loop
        nxt = {"/api/v1/groups": "A", "/api/v1/groups?after=A": "B", "/api/v1/groups?after=B": "A"}[req.path]
        return _json(200, [{"id": req.path}], Link=f'<http://127.0.0.1:{srv.port}/api/v1/groups?after={nxt}>; rel="next"')
    srv = local_server(handler)
    seen = []
    with pytest.raises(RepeatedCursor):
        for g in _client(srv.url).paginate("/api/v1/groups"):
            seen.append(g)
    assert len(seen) == 3 and len(srv.requests) == 3

    def self_loop(req):
        return _json(200, [], Link=f'<http://127.0.0.1:{srv2.port}{req.path}>; rel="next"')
    srv2 = local_server(self_loop)
    with pytest.raises(RepeatedCursor):
        _client(srv2.url).get_page("/api/v1/groups?after=Z")


def test_truncated_body_is_retried_with_okta_retry_headers(local_server):
    def handler(req):
        if len(srv.requests) == 1:
            h = req
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "500")
            h.send_header("X-Okta-Request-Id", "req-first")
            h.end_headers()
            h.wfile.write(b'[{"id":"00u1","sta')
            h.close_connection = True
            return None
        return _json(200, [{"id": "00u1"}], **{"X-Okta-Request-Id": "req-second"})
    srv = local_server(handler)
    resp = _client(srv.url).request("GET", "/api/v1/users")
    assert resp.data == [{"id": "00u1"}]
    first, second = srv.requests
    assert "X-Okta-Retry-Count" not in first["headers"]
    assert second["headers"]["X-Okta-Retry-Count"] == "1"
    assert second["headers"]["X-Okta-Retry-For"] == "req-first"


def test_non_json_body_retried_then_gives_up(local_server, caplog):
    srv = local_server(lambda req: (200, {"Content-Type": "text/html"}, b"<html>proxy error</html>"))
    with caplog.at_level("DEBUG"), pytest.raises(OktaTransientError) as exc:
        _client(srv.url, max_retries=2).request("GET", "/api/v1/users")
    assert "retry 2/2" in caplog.text and TOKEN not in caplog.text
    assert "not JSON" in str(exc.value) and "gave up after 3 attempts" in str(exc.value)
    assert len(srv.requests) == 3
    assert [r["headers"].get("X-Okta-Retry-Count") for r in srv.requests] == [None, "1", "2"]


def test_connection_refused_is_transient(local_server):
    srv = local_server(lambda req: _json(200, {}))
    url = srv.url
    srv.stop()
    with pytest.raises(OktaTransientError, match="connection failed"):
        _client(url, max_retries=1).request("GET", "/api/v1/users")


def test_redirect_is_not_followed(local_server):
    other = local_server(lambda req: _json(200, {}))
    srv = local_server(lambda req: (302, {"Location": f"{other.url}/api/v1/users"}, b""))
    with pytest.raises(OktaInvalidRequest, match="redirects are not followed"):
        _client(srv.url).request("GET", "/api/v1/users")
    assert other.requests == []


def test_429_waits_until_reset_read_against_date(local_server):
    def handler(req):
        if len(srv.requests) == 1:
            # The server's clock is 1000 s behind ours: only Date tells the true wait (reset - Date + 1).
            server_now = int(time.time()) - 1000
            return _json(429, {"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests.",
                               "errorCauses": []}, **{"Date": formatdate(server_now, usegmt=True),
                                                      "X-Rate-Limit-Limit": "10", "X-Rate-Limit-Remaining": "0",
                                                      "X-Rate-Limit-Reset": str(server_now + 1),
                                                      "X-Okta-Request-Id": "r429"})
        return _json(200, [])
    srv = local_server(handler)
    slept = []
    client = _client(srv.url, sleep=lambda s: (slept.append(s), time.sleep(s)))
    assert client.request("GET", "/api/v1/users").data == []
    assert len(slept) == 1 and 2.0 <= slept[0] <= 2.3
    assert srv.requests[1]["headers"]["X-Okta-Retry-For"] == "r429"

    srv.requests.clear()
    with pytest.raises(RateLimitWait) as exc:
        _client(srv.url, on_wait="raise").request("GET", "/api/v1/users")
    assert 2.0 <= exc.value.seconds <= 2.3 and "E0000047" in exc.value.reason
    assert isinstance(exc.value.__cause__, OktaRateLimited)
    assert len(srv.requests) == 1


def test_concurrency_429_is_flagged(local_server):
    srv = local_server(lambda req: _json(429, {"errorCode": "E0000047", "errorSummary": "x"}, **{
        "X-Rate-Limit-Limit": "0", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(int(time.time()) + 30)}))
    with pytest.raises(OktaRateLimited) as exc:
        _client(srv.url, max_retries=0).request("GET", "/api/v1/users")
    assert exc.value.concurrency and "concurrency" in str(exc.value)


def test_bodiless_put_sends_content_length_zero_and_extra_headers(local_server):
    srv = local_server(lambda req: (204, {}, b""))
    client = _client(srv.url)
    assert client.request("PUT", "/api/v1/groups/00g1/users/00u1").data is None
    assert srv.requests[0]["headers"]["Content-Length"] == "0"
    client.get_page("/api/v1/users", headers={"Content-Type": "application/json; okta-response=omitCredentials"})
    assert srv.requests[1]["headers"]["Content-Type"] == "application/json; okta-response=omitCredentials"
    with pytest.raises(ValueError, match="Authorization"):
        client.request("GET", "/x", headers={"Authorization": "SSWS other"})


# -- the limiter protocol (a recording stand-in for the limiter: it is the collaborator, not the
#    thing under test; its answers are the limiter's own Permit and Wait) --------------------------


class RecordingLimiter:
    def __init__(self, waits: int = 0):
        self.waits = waits
        self.calls: list[tuple] = []

    def acquire(self, tenant, method, path, use="sync"):
        self.calls.append(("acquire", tenant, method, path, use))
        if self.waits:
            self.waits -= 1
            return Wait(0.01, "rate")
        return Permit(tenant, path, use, f"lease-{len(self.calls)}")

    def release(self, permit, status, headers):
        self.calls.append(("release", permit.lease, status, headers.get("X-Rate-Limit-Remaining") if headers else None))


def test_limiter_acquire_and_release_around_every_attempt(local_server):
    def handler(req):
        if len(srv.requests) == 1:
            return _json(503, {"errorCode": "E0000010", "errorSummary": "Service is in read only mode"},
                         **{"X-Rate-Limit-Remaining": "9"})
        return _json(200, [], **{"X-Rate-Limit-Remaining": "8"})
    srv = local_server(handler)
    limiter = RecordingLimiter(waits=1)
    _client(srv.url, tenant="t1", limiter=limiter, use="provisioning").request("GET", "/api/v1/users?limit=5")
    kinds = [c[0] for c in limiter.calls]
    assert kinds == ["acquire", "acquire", "release", "acquire", "release"]
    assert limiter.calls[0][1:] == ("t1", "GET", "/api/v1/users", "provisioning")
    assert limiter.calls[2][2:] == (503, "9") and limiter.calls[4][2:] == (200, "8")


def test_limiter_released_without_status_when_no_response(local_server):
    srv = local_server(lambda req: _json(200, {}))
    url = srv.url
    srv.stop()
    limiter = RecordingLimiter()
    with pytest.raises(OktaTransientError):
        _client(url, limiter=limiter, max_retries=1).request("GET", "/api/v1/users")
    releases = [c for c in limiter.calls if c[0] == "release"]
    assert len(releases) == 2 and all(c[2] is None for c in releases)


def test_limiter_wait_raises_in_raise_mode(local_server):
    srv = local_server(lambda req: _json(200, {}))
    limiter = RecordingLimiter(waits=5)
    with pytest.raises(RateLimitWait) as exc:
        _client(srv.url, limiter=limiter, on_wait="raise").request("GET", "/api/v1/users")
    assert exc.value.seconds == pytest.approx(0.01) and "rate" in exc.value.reason
    assert srv.requests == []
    # Short waits may be slept inline when the caller allows it.
    limiter = RecordingLimiter(waits=2)
    _client(srv.url, limiter=limiter, on_wait="raise", inline_wait=0.05).request("GET", "/api/v1/users")
    assert len(srv.requests) == 1


def _child(url: str, inherited, queue) -> None:
    from worker.okta.client import http_client as child_pool
    try:
        fresh = child_pool()
        status = _client(url).request("GET", "/api/v1/users").status
        queue.put((fresh is not inherited, child_pool() is fresh, status))
    except Exception as exc:  # report, don't hang the parent
        queue.put(repr(exc))


def test_connection_pool_is_recreated_after_fork(local_server):
    import multiprocessing

    from worker.okta.client import http_client

    srv = local_server(lambda req: _json(200, []))
    parent = http_client()
    _client(srv.url).request("GET", "/api/v1/users")  # the parent's pool holds a live connection
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(srv.url, parent, queue))
    proc.start()
    result = queue.get(timeout=20)
    proc.join(10)
    assert result == (True, True, 200)
    assert http_client() is parent  # the parent keeps its own pool
    assert _client(srv.url).request("GET", "/api/v1/users").status == 200
