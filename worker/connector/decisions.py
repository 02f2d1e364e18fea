"""What a failed page means for the run, as the connector decides it and the engine acts on it.

`handle_error` returns Skip (the list is skipped with a warning, the run goes on), Retry (try the
page again after a while; `counted` retries use up the page's attempts, rate-limit pacing does
not) or Fail (retrying cannot help: fail the run now). The engine needs no Okta error classes
for this decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.connector.options import SyncOptions
from worker.connector.pages import StreamSpec
from worker.connector.types import STREAMS
from worker.okta.errors import (
    OktaAuthenticationError,
    OktaError,
    OktaNotFound,
    OktaPermissionDenied,
    OktaRateLimited,
    RateLimitWait,
)


@dataclass(frozen=True)
class Skip:
    warning: str


@dataclass(frozen=True)
class Retry:
    reason: str
    after: float | None = None  # seconds; None: the engine's backoff decides
    counted: bool = True  # False: pacing (the limiter said wait), not a failure


@dataclass(frozen=True)
class Fail:
    reason: str


Decision = Skip | Retry | Fail


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def handle_error(spec: StreamSpec, error: BaseException, options: SyncOptions) -> Decision:
    """- the limiter says wait: Retry after its time, not counted (counted when it is the client
      backing off a transient Okta failure, so a dead org ends the run);
    - 403 (E0000006, or an OAuth token without the scope): Skip with a warning naming the
      permission. The text does not name the object, so N groups denied the same way make one
      distinct warning;
    - 404 on a child list: its parent was deleted while the sync ran; Skip (on a row read alone,
      `Stream.absent_is_empty`: no such row, Skip without a warning);
    - 401 (credentials refused even after a fresh token): Fail;
    - anything else (5xx, a 404 on a top-level list, a malformed page): Retry, counted."""
    if isinstance(error, RateLimitWait):
        cause = error.__cause__
        if isinstance(cause, OktaError) and not isinstance(cause, OktaRateLimited):
            return Retry(describe(cause), error.seconds)
        return Retry(error.reason, error.seconds, counted=False)
    stream = STREAMS.get(spec.kind)
    what, permission = (stream.what, stream.permission) if stream else (spec.kind, "unknown permission")
    if isinstance(error, OktaPermissionDenied):
        code = error.error_code or "403"
        summary = error.error_summary or ""
        return Skip(f"skipped {what}: the credentials may not read them (Okta {code}{': ' + summary if summary else ''}); "
                    f"needs {permission}")
    if isinstance(error, OktaNotFound) and stream is not None and stream.absent_is_empty:
        return Skip("")  # no such row: the stream ends empty
    if isinstance(error, OktaNotFound) and spec.parent:
        return Skip(f"skipped {what} of {spec.parent}: it was deleted during the sync (404)")
    if isinstance(error, OktaAuthenticationError):
        return Fail(describe(error))
    return Retry(describe(error))
