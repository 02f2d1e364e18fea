"""Typed errors for everything Okta answers (or fails to answer).

Okta has four error shapes: the management body (errorCode/errorSummary/errorCauses), the OAuth body
of /oauth2/* (error/error_description), header-only errors in WWW-Authenticate (insufficient scope,
DPoP problems), and a rare `{"status":404,"message":...}`. `error_from_response` turns all of them
into one exception hierarchy. Messages carry Okta's texts, the method and the URL path, never request
headers, so no credential can end up in a message or a log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = [
    "OktaError", "OktaNotFound", "OktaPermissionDenied", "OktaConflict", "OktaInvalidRequest",
    "OktaAuthenticationError", "OktaRateLimited", "OktaTransientError", "UnsafeNextLink",
    "RepeatedCursor", "RateLimitWait", "error_from_response", "parse_www_authenticate",
    "RETRY_LATER_CODES",
]

# Conflicts Okta documents as "try again later" (activation in progress, group rules being set up,
# concurrent role change): provisioning may retry them, a plain conflict it must not.
RETRY_LATER_CODES = frozenset({"E0000112", "E0000249", "E0000268"})
# 5xx-like error codes that can come with other statuses.
_TRANSIENT_CODES = frozenset({"E0000009", "E0000010", "E0000100"})


class OktaError(Exception):
    """Base of all Okta errors. Attributes mirror Okta's error body plus the request id."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        error_summary: str | None = None,
        error_causes: list[str] | None = None,
        request_id: str | None = None,
        error_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.error_summary = error_summary
        self.error_causes = list(error_causes or [])
        self.request_id = request_id
        self.error_id = error_id
        self.method = method
        self.url = url

    # camelCase aliases, as Okta names the fields.
    @property
    def errorCode(self) -> str | None:  # noqa: N802
        return self.error_code

    @property
    def errorSummary(self) -> str | None:  # noqa: N802
        return self.error_summary

    @property
    def errorCauses(self) -> list[str]:  # noqa: N802
        return self.error_causes

    def __reduce__(self):
        # Picklable (Celery stores exceptions), keeping every attribute.
        return (_rebuild, (type(self), str(self), self.__dict__.copy()))


def _rebuild(cls: type[OktaError], message: str, state: dict[str, Any]) -> OktaError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class OktaNotFound(OktaError):
    """404: the object does not exist (or the path is wrong, E0000008)."""


class OktaPermissionDenied(OktaError):
    """403: the admin role or the OAuth scopes do not allow this (E0000006, insufficient_scope...)."""


class OktaConflict(OktaError):
    """409: duplicate assignment, or a 'try later' conflict (then `retryable` is True)."""


class OktaInvalidRequest(OktaError):
    """400/405/411/other 4xx: the request itself is wrong; retrying cannot help."""


class OktaAuthenticationError(OktaError):
    """401, or the token endpoint refusing the client (invalid_client, invalid_scope, DPoP...)."""


class OktaRateLimited(OktaError):
    """429 (E0000047, or the concurrency limit when Limit = Remaining = 0)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, concurrency: bool = False,
                 **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.concurrency = concurrency


class OktaTransientError(OktaError):
    """5xx, timeouts, connection resets, truncated or non-JSON bodies: worth retrying later."""

    retryable = True


class UnsafeNextLink(OktaError):
    """A pagination link (or URL) that points outside the tenant's origin; never followed."""


class RepeatedCursor(OktaError):
    """Okta returned a next link already followed: following it would loop forever."""


class RateLimitWait(Exception):
    """The client would have to wait `seconds` (limiter pacing, 429 reset, retry backoff) and was
    told not to sleep (on_wait="raise"): re-enqueue the task with this countdown."""

    def __init__(self, seconds: float, reason: str):
        super().__init__(f"wait {seconds:.2f}s: {reason}")
        self.seconds = float(seconds)
        self.reason = reason

    def __reduce__(self):
        return (RateLimitWait, (self.seconds, self.reason))


_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_www_authenticate(value: str | None) -> tuple[str | None, dict[str, str]]:
    """`DPoP algs="...", error="invalid_dpop_proof", ...` -> ("DPoP", {"error": ..., ...})."""
    if not value:
        return None, {}
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if "=" in scheme:  # no scheme, just parameters
        scheme, rest = "", value
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _PARAM.finditer(rest)}
    return (scheme or None), params


def _path_only(url: str | None) -> str | None:
    # Queries can hold search expressions with e-mail addresses; the path is enough to say what failed.
    if not url:
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else parts.path


def _decode(body: bytes | str | Any) -> Any:
    if isinstance(body, (dict, list)):
        return body
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def _causes(raw: Any) -> list[str]:
    out: list[str] = []
    if isinstance(raw, list):
        for cause in raw:
            if isinstance(cause, dict) and isinstance(cause.get("errorSummary"), str):
                out.append(cause["errorSummary"])
            elif isinstance(cause, str):
                out.append(cause)
    return out


def _class_for(status: int, code: str | None) -> type[OktaError]:
    if status == 429 or code == "E0000047":
        return OktaRateLimited
    if status >= 500 or status == 408 or code in _TRANSIENT_CODES:
        return OktaTransientError
    if status == 401:
        return OktaAuthenticationError
    if status == 403:
        return OktaPermissionDenied
    if status == 404:
        return OktaNotFound
    if status == 409:
        return OktaConflict
    return OktaInvalidRequest


_AUTH_OAUTH_ERRORS = frozenset({
    "invalid_client", "invalid_scope", "invalid_dpop_proof", "use_dpop_nonce", "invalid_token",
    "unauthorized_client", "access_denied", "unsupported_grant_type", "invalid_grant",
})


def error_from_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes | str | Any,
    *,
    method: str | None = None,
    url: str | None = None,
    hint: str | None = None,
) -> OktaError:
    """Build the typed exception for an error response (any of Okta's error shapes)."""
    data = _decode(body)
    request_id = _header(headers, "X-Okta-Request-Id")
    code = summary = error_id = None
    causes: list[str] = []
    oauth_error = None
    if isinstance(data, dict):
        if isinstance(data.get("errorCode"), str) or isinstance(data.get("errorSummary"), str):
            code = data.get("errorCode") if isinstance(data.get("errorCode"), str) else None
            summary = data.get("errorSummary") if isinstance(data.get("errorSummary"), str) else None
            error_id = data.get("errorId") if isinstance(data.get("errorId"), str) else None
            causes = _causes(data.get("errorCauses"))
        elif isinstance(data.get("error"), str):
            oauth_error = code = data["error"]
            desc = data.get("error_description")
            summary = desc if isinstance(desc, str) else None
        elif isinstance(data.get("message"), str):
            summary = data["message"]
    if code is None:
        scheme, params = parse_www_authenticate(_header(headers, "WWW-Authenticate"))
        if params.get("error"):
            oauth_error = code = params["error"]
            summary = params.get("error_description")
            if params.get("scope") and code == "insufficient_scope":
                summary = f"{summary or 'insufficient scope'} (required scope: {params['scope']})"
    cls = _class_for(status, code)
    if oauth_error in ("insufficient_scope",):
        cls = OktaPermissionDenied
    elif oauth_error in _AUTH_OAUTH_ERRORS and status < 500 and status != 429:
        cls = OktaAuthenticationError
    where = f"{method} {_path_only(url)}" if method and url else (_path_only(url) or "")
    text = f"Okta {status}"
    if code:
        text += f" {code}"
    if summary:
        text += f": {summary}"
    elif data is None and body:
        text += ": response body is not JSON"
    if causes:
        text += " (" + "; ".join(causes) + ")"
    if where:
        text += f" [{where}]"
    if request_id:
        text += f" request-id={request_id}"
    if hint:
        text += f" — {hint}"
    kw: dict[str, Any] = dict(status=status, error_code=code, error_summary=summary, error_causes=causes,
                              request_id=request_id, error_id=error_id, method=method, url=_path_only(url))
    if cls is OktaRateLimited:
        limit = _header(headers, "X-Rate-Limit-Limit")
        remaining = _header(headers, "X-Rate-Limit-Remaining")
        concurrency = (limit or "").split(",")[0].strip() == "0" and (remaining or "").split(",")[0].strip() == "0"
        if concurrency:
            text += " (concurrency limit: too many requests in flight)"
        err: OktaError = OktaRateLimited(text, concurrency=concurrency, **kw)
    else:
        err = cls(text, **kw)
    if cls is OktaConflict and code in RETRY_LATER_CODES:
        err.retryable = True
    return err
