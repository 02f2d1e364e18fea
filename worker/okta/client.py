"""The Okta HTTP client: one pooled httpx.Client per process, auth, limiter, retries, pagination.

    client = OktaClient("acme.okta.com", SSWSAuth(token), tenant="t1", limiter=limiter)
    for user in client.paginate("/api/v1/users", {"limit": 200}): ...
    page = client.get_page(stream.cursor or "/api/v1/groups")  # one page per Celery task

Every HTTP attempt asks the limiter first and reports the outcome to it afterwards. Transient
failures (5xx, 429, timeouts, resets, truncated or non-JSON bodies) are retried with bounded
exponential backoff and jitter, 429s after X-Rate-Limit-Reset (read against the response's Date),
each retry carrying X-Okta-Retry-For / X-Okta-Retry-Count as Okta's SDKs send them. With
on_wait="raise" no wait is slept: RateLimitWait tells the Celery task how long to defer itself.
Requests and next links only ever go to the tenant's own scheme, host and port.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson

from worker.okta.auth import Auth
from worker.okta.domain import normalize_domain, origin_of
from worker.okta.errors import (
    OktaError,
    OktaInvalidRequest,
    OktaRateLimited,
    OktaTransientError,
    RateLimitWait,
    RepeatedCursor,
    UnsafeNextLink,
    error_from_response,
)

__all__ = ["OktaClient", "Response", "Page", "http_client", "parse_link_header", "USER_AGENT"]

log = logging.getLogger(__name__)

USER_AGENT = "oktasync/0.1 (+httpx)"
AUTH_RETRIES = 2  # extra attempts for auth problems one retry can fix (DPoP nonce, expired token)
_LIST_KEYS = ("value", "roles", "resource-sets", "resources", "members", "bindings", "items")

# -- one connection pool per process --------------------------------------------------------------

_HTTP: httpx.Client | None = None
_HTTP_PID: int | None = None
_HTTP_LOCK = threading.Lock()


def http_client() -> httpx.Client:
    """This process' pooled httpx.Client, created on first use and re-created in a forked child
    (a pool's sockets must never be shared between processes)."""
    global _HTTP, _HTTP_PID
    pid = os.getpid()
    client = _HTTP
    if client is not None and _HTTP_PID == pid:
        return client
    with _HTTP_LOCK:
        if _HTTP is None or _HTTP_PID != pid:
            # The parent's client is dropped, not closed: closing would touch sockets it still uses.
            _HTTP = httpx.Client(
                follow_redirects=False,  # a redirect could carry credentials to another host
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30),
                headers={"User-Agent": USER_AGENT},
                trust_env=False,
            )
            _HTTP_PID = pid
        return _HTTP


def _after_fork() -> None:
    global _HTTP, _HTTP_LOCK, _HTTP_PID
    _HTTP_LOCK = threading.Lock()
    _HTTP, _HTTP_PID = None, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # httpx.Headers: case-insensitive
    data: Any  # parsed JSON, or None for an empty body
    url: str
    method: str = "GET"

    @property
    def request_id(self) -> str | None:
        return self.headers.get("X-Okta-Request-Id")


@dataclass(frozen=True)
class Page:
    items: list | dict  # the body as Okta sent it: an array, or an IAM object with the list inside
    next_url: str | None
    response: Response = field(repr=False)

    @property
    def records(self) -> list:
        """The page's objects: the array itself, or the list inside an IAM body
        (`value`, `roles`, `resource-sets`, `resources`, ...)."""
        if isinstance(self.items, list):
            return self.items
        for key in _LIST_KEYS:
            value = self.items.get(key)
            if isinstance(value, list):
                return value
        lists = [v for k, v in self.items.items() if k not in ("_links", "_embedded") and isinstance(v, list)]
        return lists[0] if len(lists) == 1 else []


# -- Link header ----------------------------------------------------------------------------------

_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_LINK_PARAM = re.compile(r';\s*([A-Za-z*-]+)\s*=\s*(?:"([^"]*)"|([^;,\s]+))')


def parse_link_header(values: list[str]) -> dict[str, str]:
    """{rel: url} from Link header lines (Okta sends one line per rel; comma-joined also works)."""
    links: dict[str, str] = {}
    for value in values:
        for match in _LINK.finditer(value):
            url, params = match.group(1).strip(), match.group(2)
            for pm in _LINK_PARAM.finditer(params):
                if pm.group(1).lower() == "rel":
                    for rel in (pm.group(2) if pm.group(2) is not None else pm.group(3)).split():
                        links.setdefault(rel.lower(), url)
    return links


def _cursor_key(url: str) -> tuple:
    """What identifies a page: the path plus the cursor (`after`) if any, else the whole query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    after = [v for k, v in query if k == "after"]
    if after:
        return (parts.path, "after", after[-1])
    return (parts.path, "query", tuple(sorted(query)))


def _first_number(value: str | None) -> float | None:
    # Repeated rate-limit headers have been seen (OKTA-379654); like Okta's SDK, take the minimum.
    if value is None:
        return None
    numbers = []
    for part in value.split(","):
        try:
            numbers.append(float(part.strip()))
        except ValueError:
            continue
    return min(numbers) if numbers else None


def reset_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds until X-Rate-Limit-Reset, measured against the response's Date (not our clock),
    plus one second as Okta's SDKs add; None without usable headers."""
    reset = _first_number(headers.get("X-Rate-Limit-Reset"))
    if reset is None:
        return None
    date = headers.get("Date")
    server_now: float | None = None
    if date:
        if date.count(",") > 1:  # repeated Date headers joined by ", ": keep the first
            day, rest = date.split(",", 2)[:2]
            date = f"{day},{rest}"
        try:
            server_now = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            server_now = None
    if server_now is None:
        server_now = time.time() if now is None else now
    return max(0.0, reset - server_now) + 1.0


_RESERVED_HEADERS = frozenset({"authorization", "dpop", "x-okta-retry-for", "x-okta-retry-count", "host",
                               "content-length", "cookie"})


def _extra_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if not headers:
        return {}
    bad = sorted(k for k in headers if k.lower() in _RESERVED_HEADERS)
    if bad:
        raise ValueError(f"request headers {', '.join(bad)} are set by the client and cannot be passed in")
    return {str(k): str(v) for k, v in headers.items()}


# -- the client -----------------------------------------------------------------------------------


class OktaClient:
    def __init__(
        self,
        domain: str,
        auth: Auth,
        *,
        tenant: str = "default",
        limiter: Any = None,
        use: str = "sync",
        on_wait: str = "sleep",
        max_retries: int = 4,
        timeout: float = 30.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_rate_limit_wait: float = 120.0,
        inline_wait: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        response_hooks: Sequence[Callable[[httpx.Response], None]] = (),
    ):
        if on_wait not in ("sleep", "raise"):
            raise ValueError(f"on_wait must be 'sleep' or 'raise', got {on_wait!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.base_url = normalize_domain(domain)
        self._origin = origin_of(self.base_url)
        self.auth = auth
        self.tenant = tenant
        # httpx response hooks of this client's requests only (the connection pool is shared).
        self.response_hooks = tuple(response_hooks)
        self.limiter = limiter
        self.use = use
        self.on_wait = on_wait
        self.max_retries = max_retries
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_rate_limit_wait = max_rate_limit_wait
        self.inline_wait = inline_wait  # with on_wait="raise", waits up to this are still slept
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"OktaClient({self.base_url!r}, auth={self.auth!r}, tenant={self.tenant!r}, use={self.use!r})"

    # -- URLs --

    def _resolve(self, path_or_url: str) -> str:
        if not isinstance(path_or_url, str) or not path_or_url:
            raise OktaInvalidRequest(f"request path must be a non-empty string, got {path_or_url!r}")
        parts = urlsplit(path_or_url)
        if parts.scheme or parts.netloc:
            self._check_same_origin(path_or_url, "URL")
            return path_or_url
        if not path_or_url.startswith("/"):
            path_or_url = "/" + path_or_url
        return self.base_url + path_or_url

    def _check_same_origin(self, url: str, what: str) -> None:
        try:
            origin = origin_of(url)
        except ValueError:
            raise UnsafeNextLink(f"refusing {what} with an invalid host or port (tenant {self.base_url})") from None
        parts = urlsplit(url)
        if origin != self._origin or parts.username is not None or parts.password is not None:
            scheme, host, port = origin
            raise UnsafeNextLink(
                f"refusing {what} to {scheme}://{host}:{port}: not the tenant's origin {self.base_url} "
                "(credentials are only ever sent to the tenant's domain)")

    # -- waiting --

    def _wait(self, seconds: float, reason: str, cause: BaseException | None = None) -> None:
        if seconds <= 0:
            return
        if self.on_wait == "raise" and seconds > self.inline_wait:
            raise RateLimitWait(seconds, reason) from cause
        self._sleep(seconds)

    def _backoff(self, retry: int) -> float:
        # Exponential with "equal jitter": half fixed, half random, bounded by backoff_max.
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** retry))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _retry_delay(self, err: OktaError, retry: int) -> float:
        if isinstance(err, OktaRateLimited) and err.retry_after is not None and not err.concurrency:
            return min(self.max_rate_limit_wait, err.retry_after) + random.uniform(0, 0.25)
        return self._backoff(retry)

    # -- limiter --

    def _acquire(self, method: str, path: str) -> Any:
        if self.limiter is None:
            return None
        while True:
            got = self.limiter.acquire(self.tenant, method, path, self.use)
            if hasattr(got, "lease"):  # a Permit
                return got
            # At least a few ms, so a limiter answering "wait 0" cannot make this spin.
            self._wait(max(float(got.seconds), 0.005), f"rate limiter: {got.reason}")

    def _release(self, permit: Any, status: int | None, headers: Mapping[str, str]) -> None:
        if permit is not None:
            self.limiter.release(permit, status, headers)

    # -- one HTTP exchange through the limiter --

    def _exchange(self, method: str, url: str, **kw: Any) -> httpx.Response:
        path = urlsplit(url).path or "/"
        permit = self._acquire(method, path)
        status: int | None = None
        headers: Mapping[str, str] = {}
        try:
            http = http_client()
            resp = None
            try:
                # Streamed, so that the headers (request id, rate limit) survive a body cut short.
                resp = http.send(http.build_request(method, url, timeout=self.timeout, **kw), stream=True)
                status, headers = resp.status_code, resp.headers
                for hook in self.response_hooks:
                    hook(resp)
                resp.read()
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if resp is not None:
                    resp.close()
                what = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
                stage = "reading the body" if resp is not None else "sending"
                raise OktaTransientError(
                    f"Okta request {what} while {stage} ({type(exc).__name__}: {exc}) [{method} {path}]",
                    status=status, method=method, url=url,
                    request_id=headers.get("X-Okta-Request-Id") if headers else None) from None
            return resp
        finally:
            self._release(permit, status, headers)

    def _send_token(self, url: str, form: Mapping[str, str], headers: Mapping[str, str]
                    ) -> tuple[int, Mapping[str, str], bytes]:
        resp = self._exchange("POST", url, data=dict(form), headers=dict(headers))
        if resp.status_code == 429 or resp.status_code >= 500:
            raise self._error(resp, "POST")
        return resp.status_code, resp.headers, resp.content

    def _error(self, resp: httpx.Response, method: str) -> OktaError:
        err = error_from_response(resp.status_code, resp.headers, resp.content, method=method, url=str(resp.url))
        if isinstance(err, OktaRateLimited):
            err.retry_after = reset_wait(resp.headers)
        return err

    # -- public API --

    def request(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, headers: Mapping[str, str] | None = None) -> Response:
        """One logical request: retried while transient, raises a typed OktaError otherwise.
        `headers`: extra request headers (e.g. Okta's `okta-response=omitCredentials` content type);
        they cannot replace the auth or retry headers."""
        method = method.upper()
        extra = _extra_headers(headers)
        url = self._resolve(path_or_url)
        if params:
            # Fold params into the URL once, so retries and the DPoP htu see the same URL.
            sep = "&" if urlsplit(url).query else "?"
            url = url + sep + urlencode([(k, str(v).lower() if isinstance(v, bool) else v)
                                         for k, v in params.items() if v is not None])
        content: bytes | None = None
        headers = {"Accept": "application/json", **extra}
        if json is not None:
            content = orjson.dumps(json)
            headers.setdefault("Content-Type", "application/json")
        elif method in ("POST", "PUT", "PATCH"):
            content = b""  # Okta answers 411 to a bodiless PUT/POST without Content-Length: 0
        retries = auth_retries = 0
        retry_for: str | None = None
        while True:
            attempt_headers = dict(headers)
            if retries:
                attempt_headers["X-Okta-Retry-Count"] = str(retries)
                if retry_for:
                    attempt_headers["X-Okta-Retry-For"] = retry_for
            try:
                self.auth.prepare(self.base_url, self._send_token)
                attempt_headers.update(self.auth.headers(self.base_url, method, url))
                resp = self._exchange(method, url, content=content, headers=attempt_headers)
                if self.auth.on_response(self.base_url, resp.status_code, resp.headers) and auth_retries < AUTH_RETRIES:
                    auth_retries += 1
                    continue
                if 300 <= resp.status_code < 400:
                    raise OktaInvalidRequest(
                        f"Okta answered {resp.status_code} redirect; redirects are not followed "
                        f"[{method} {urlsplit(url).path}]", status=resp.status_code, method=method, url=url)
                if resp.status_code >= 400:
                    raise self._error(resp, method)
                return self._parse(method, resp)
            except OktaError as err:
                if not isinstance(err, (OktaTransientError, OktaRateLimited)):
                    raise
                retry_for = retry_for or err.request_id
                if retries >= self.max_retries:
                    if self.max_retries:
                        err.args = (f"{err.args[0]} (gave up after {retries + 1} attempts)",)
                    raise
                delay = self._retry_delay(err, retries)
                retries += 1
                # Messages carry Okta's texts, method and path only: safe to log.
                log.info("okta tenant=%s retry %d/%d in %.2fs: %s", self.tenant, retries, self.max_retries,
                         delay, err)
                self._wait(delay, f"retry {retries}/{self.max_retries} after: {err}", cause=err)

    def _parse(self, method: str, resp: httpx.Response) -> Response:
        body = resp.content
        data = None
        if body.strip():
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise OktaTransientError(
                    f"Okta {resp.status_code} body is truncated or not JSON ({len(body)} bytes) "
                    f"[{method} {resp.url.path}]", status=resp.status_code, method=method, url=str(resp.url),
                    request_id=resp.headers.get("X-Okta-Request-Id")) from None
        return Response(status=resp.status_code, headers=resp.headers, data=data, url=str(resp.url), method=method)

    def get(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path_or_url, params=params).data

    def get_page(self, path_or_url: str, params: Mapping[str, Any] | None = None, *,
                 headers: Mapping[str, str] | None = None) -> Page:
        """Fetch one page; `next_url` is the checked next link (same origin, new cursor) or None."""
        resp = self.request("GET", path_or_url, params=params, headers=headers)
        data = resp.data if resp.data is not None else []
        if not isinstance(data, (list, dict)):
            raise OktaTransientError(f"Okta list body is a {type(data).__name__}, not an array or object "
                                     f"[GET {urlsplit(resp.url).path}]", status=resp.status, url=resp.url)
        next_url = self._next_link(resp, data)
        if next_url is not None and _cursor_key(next_url) == _cursor_key(resp.url):
            raise RepeatedCursor(f"Okta returned the page's own cursor as next link [GET {urlsplit(resp.url).path}]",
                                 status=resp.status, url=resp.url, request_id=resp.request_id)
        return Page(items=data, next_url=next_url, response=resp)

    def _next_link(self, resp: Response, data: Any) -> str | None:
        headers = resp.headers
        values = headers.get_list("Link") if isinstance(headers, httpx.Headers) else (
            [headers["Link"]] if headers.get("Link") else [])
        nxt = parse_link_header(values).get("next")
        if nxt is None and isinstance(data, dict):
            links = data.get("_links")
            href = links.get("next", {}).get("href") if isinstance(links, dict) and isinstance(links.get("next"), dict) else None
            nxt = href if isinstance(href, str) and href else None
        if nxt is None:
            return None
        if not urlsplit(nxt).scheme and not urlsplit(nxt).netloc and nxt.startswith("/"):
            nxt = self.base_url + nxt  # a relative link is on the tenant's origin by construction
        self._check_same_origin(nxt, "next link")
        return nxt

    def paginate(self, path: str, params: Mapping[str, Any] | None = None, *,
                 headers: Mapping[str, str] | None = None) -> Iterator[Any]:
        """Every object of a list, following next links; RepeatedCursor if a cursor comes back."""
        seen: set[tuple] = set()
        page = self.get_page(path, params, headers=headers)
        seen.add(_cursor_key(page.response.url))
        while True:
            yield from page.records
            if page.next_url is None:
                return
            key = _cursor_key(page.next_url)
            if key in seen:
                raise RepeatedCursor(f"Okta returned an already followed cursor [GET {urlsplit(page.next_url).path}]",
                                     url=page.next_url, request_id=page.response.request_id)
            seen.add(key)
            page = self.get_page(page.next_url, headers=headers)

    def close(self) -> None:
        """Nothing to close per client: the connection pool belongs to the process."""

