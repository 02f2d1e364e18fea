"""Okta's error responses: every error carries errorCode, errorSummary, errorLink, errorId and
errorCauses, as the recordings show."""

from __future__ import annotations

import secrets


class OktaError(Exception):
    empty_body = False  # True only for HeaderOnlyError (WWW-Authenticate, no JSON body)

    def __init__(self, status: int, code: str, summary: str, causes: list[str] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code} {summary}")
        self.status = status
        self.code = code
        self.summary = summary
        self.causes = causes or []
        self.headers = headers or {}

    def body(self) -> dict:
        return {
            "errorCode": self.code,
            "errorSummary": self.summary,
            "errorLink": self.code,
            "errorId": "oae" + secrets.token_urlsafe(16)[:22],
            "errorCauses": [{"errorSummary": c} for c in self.causes],
        }


def not_found(what: str = "") -> OktaError:
    return OktaError(404, "E0000007", f"Not found: Resource not found: {what} (Resource)" if what
                     else "Not found: Resource not found")


def invalid(summary: str = "Api validation failed", causes: list[str] | None = None) -> OktaError:
    return OktaError(400, "E0000001", summary, causes)


def malformed_body() -> OktaError:
    return OktaError(400, "E0000003", "The request body was not well-formed.")


def forbidden() -> OktaError:
    return OktaError(403, "E0000006", "You do not have permission to perform the requested action")


def unauthorized() -> OktaError:
    return OktaError(401, "E0000011", "Invalid token provided")


def rate_limited() -> OktaError:
    return OktaError(429, "E0000047", "API call exceeded rate limit due to too many requests.")


class HeaderOnlyError(OktaError):
    """An OAuth/DPoP failure on /api/v1/*: Okta answers with an EMPTY body and only a
    `WWW-Authenticate` header (insufficient_scope 403, invalid_dpop_proof 400). The server must
    check `empty_body` and send no JSON for these."""

    empty_body = True

    def __init__(self, status: int, www_authenticate: str):
        super().__init__(status, "", "", headers={"WWW-Authenticate": www_authenticate})

    def body(self) -> dict:
        return {}


# ---- added for the simulator's API (H1): Okta's other management errors (okta-api.md §7)

def not_found_typed(what: str, kind: str) -> OktaError:
    """404 E0000007 naming the id and Okta's resource type, e.g. `(User)`, `(UserGroup)`."""
    return OktaError(404, "E0000007", f"Not found: Resource not found: {what} ({kind})")


def path_not_found() -> OktaError:
    return OktaError(404, "E0000008", "The requested path was not found")


def method_not_allowed() -> OktaError:
    return OktaError(405, "E0000022", "The endpoint does not support the provided HTTP method")


def length_required() -> OktaError:
    return OktaError(411, "E0000003", "The request body was not well-formed.")


def bad_cursor() -> OktaError:
    return OktaError(400, "E0000029", "Invalid paging request.")


def bad_search() -> OktaError:
    return OktaError(400, "E0000031", "Invalid search criteria.")


def bad_filter() -> OktaError:
    return OktaError(400, "E0000094", "The provided filter is unsupported.")


def search_and_filter() -> OktaError:
    return OktaError(400, "E0000033", "Can't specify a search query and filter in the same request.")


def internal_error() -> OktaError:
    return OktaError(500, "E0000009", "Internal Server Error")


def service_unavailable() -> OktaError:
    return OktaError(503, "E0000010", "Service is in read only mode")


def optional_object(body: dict, key: str) -> dict:
    """An optional JSON object field of a request body: absent or null -> {}, anything but an object
    -> E0000001."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Api validation failed: {key}", [f"{key}: must be a JSON object"])
    return value
