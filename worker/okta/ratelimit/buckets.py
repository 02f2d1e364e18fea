"""Which Okta rate-limit bucket a request is charged to.

Facts from okta-api.md §4.2-§4.4: Okta matches method + path, exact match first, then longest
prefix; only the matched bucket is charged. Bucket names follow Okta's dashboard ("*" marks a
longest-prefix bucket). Where the public table is vague (§4.4 "inferred") we merge rather than split:
two keys for one real bucket would each think they own the whole budget.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

CATCH_ALL = "/api/v1"  # "most other API actions" (iam/*, api-tokens, org, ...)

# Second segments under /groups that are sub-collections, not group ids (/api/v1/groups/rules).
_GROUP_COLLECTIONS = frozenset({"rules"})
# Top-level families with one bucket for every method and sub-path (§4.3).
_PREFIX_BUCKETS = {
    "logs": "/api/v1/logs",
    "events": "/api/v1/events",
    "certificateAuthorities": "/api/v1/certificateAuthorities",
    "devices": "/api/v1/devices",
}
_METHOD = re.compile(r"^[A-Za-z]+$")


def _segments(path: str) -> list[str]:
    if not isinstance(path, str) or not path:
        raise ValueError(f"request path must be a non-empty string, got {path!r}")
    if "://" in path:
        path = urlsplit(path).path
    path = path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        raise ValueError(f"request path must start with '/', got {path!r}")
    return [p for p in path.split("/") if p]


def okta_bucket(method: str, path: str) -> str:
    """Okta's bucket for `method path` (a path or a full URL; the query string is ignored)."""
    if not isinstance(method, str) or not _METHOD.match(method):
        raise ValueError(f"HTTP method must be a word like 'GET', got {method!r}")
    method = method.upper()
    parts = _segments(path)
    if parts[:2] == ["oauth2", "v1"] and len(parts) >= 3:
        if parts[2:] == ["token"]:
            return "/oauth2/v1/token"
        if parts[2] == "clients":
            return "/oauth2/v1/clients"
        return CATCH_ALL
    if parts[:2] != ["api", "v1"] or len(parts) < 3:
        return CATCH_ALL
    top, rest = parts[2], parts[3:]
    if top == "users":
        if not rest:
            return "/api/v1/users"                     # GET (list) / POST (create)
        if len(rest) == 1 and method == "GET":
            return "GET /api/v1/users/{idOrLogin}"     # exact: get one user
        return "/api/v1/users/{id}*"                   # update/delete, lifecycle, roles (§4.4)
    if top == "groups":
        if len(rest) == 1 and rest[0] not in _GROUP_COLLECTIONS:
            return "/api/v1/groups/{id}"               # exact: one group, any method
        return "/api/v1/groups*"                       # list/create, members, roles, apps
    if top == "apps":
        if len(rest) == 1:
            return "/api/v1/apps/{id}"                 # exact: one app, any method
        return "/api/v1/apps*"                         # list/create, app users and groups
    return _PREFIX_BUCKETS.get(top, CATCH_ALL)
