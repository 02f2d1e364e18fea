"""What a set of Okta credentials may do, probed without changing anything (`oktasync check`).

Reads are probed by reading one item. Writes are probed with requests that cannot change anything
because they name an object that does not exist (or carry a body Okta must refuse): Okta checks the
caller's permission first, so 403 (E0000006, or an OAuth insufficient_scope) means "not allowed",
while 404 / 400 means "allowed, and the object was not found / the body was refused".

Limits: a 404 only proves the permission where Okta authorises before it looks the object up, which
is how its admin-role checks work for role-wide permissions; a group admin scoped to some groups may
be told 404 for an id outside its scope. `create group` is probed with a profile without a name, which
Okta refuses with 400 E0000001. Nothing is ever created, changed or deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.okta.errors import (
    OktaAuthenticationError,
    OktaError,
    OktaInvalidRequest,
    OktaNotFound,
    OktaPermissionDenied,
)

# Ids in Okta's formats that no org holds (20 characters, prefixes 00u / 00g).
PROBE_USER = "00uoktasyncprobe0000"
PROBE_GROUP = "00goktasyncprobe0000"

CAPABILITIES = (
    "review group membership",
    "provision group membership",
    "review app assignment",
    "provision app assignment",
    "review admin roles",
    "create group",
    "modify group",
    "delete group",
    "sync secrets",
)


@dataclass
class Capability:
    name: str
    allowed: bool | None  # None: the probe could not tell
    how: str  # the request(s) used
    detail: str = ""


class CredentialsRejected(Exception):
    """The credentials do not work at all (401, token endpoint refusal): nothing can be probed."""

    def __init__(self, error: OktaError):
        super().__init__(str(error))
        self.error = error


class ProbeFailed(Exception):
    """The org could not be asked at all (unreachable, 5xx, rate limited after retries)."""

    def __init__(self, error: OktaError):
        super().__init__(str(error))
        self.error = error


def _outcome(call: Callable[[], Any], ok_errors: tuple[type[OktaError], ...] = ()) -> tuple[bool | None, str]:
    """Run one probe request: (allowed, detail)."""
    try:
        call()
        return True, "allowed"
    except OktaAuthenticationError as exc:
        raise CredentialsRejected(exc) from None
    except OktaPermissionDenied as exc:
        return False, f"denied: {exc.error_code or ''} {exc.error_summary or ''}".strip()
    except ok_errors as exc:
        return True, f"allowed (Okta answered {exc.status} {exc.error_code or ''} to the harmless probe)".strip()
    except OktaError as exc:
        return None, f"could not tell: {exc}"


def probe(client: Any) -> tuple[list[Capability], list[str]]:
    """Probe every capability of the product documentation's table: (capabilities, notes).

    Raises CredentialsRejected when the credentials do not work at all."""
    out: dict[str, Capability] = {}
    notes: list[str] = []

    # Credentials at all: the users list (an org always has a user). 401 -> CredentialsRejected.
    users_ok, users_detail = users_readable(client)
    if users_ok is not True:
        notes.append(f"users: {users_detail}")

    # Groups: one list read, then one member list of a real group.
    groups: list = []

    def read_groups() -> None:
        groups.extend(client.get("/api/v1/groups", {"limit": 20}) or [])
        if groups:
            client.get(f"/api/v1/groups/{groups[0]['id']}/users", {"limit": 1})
    ok, detail = _outcome(read_groups)
    out["review group membership"] = Capability(
        "review group membership", ok, "GET /api/v1/groups, GET /api/v1/groups/{id}/users", detail)

    okta_group = next((g["id"] for g in groups if g.get("type") == "OKTA_GROUP"), None)
    if okta_group:
        ok, detail = _outcome(
            lambda: client.request("PUT", f"/api/v1/groups/{okta_group}/users/{PROBE_USER}"), (OktaNotFound,))
        how = "PUT /api/v1/groups/{an Okta group}/users/{nonexistent user}"
    else:
        ok, detail = None, "could not tell: no OKTA_GROUP group readable to probe with"
        how = "needs a readable OKTA_GROUP group"
    out["provision group membership"] = Capability("provision group membership", ok, how, detail)

    apps: list = []

    def read_apps() -> None:
        apps.extend(client.get("/api/v1/apps", {"limit": 1}) or [])
        if apps:
            client.get(f"/api/v1/apps/{apps[0]['id']}/users", {"limit": 1})
    ok, detail = _outcome(read_apps)
    out["review app assignment"] = Capability(
        "review app assignment", ok, "GET /api/v1/apps, GET /api/v1/apps/{id}/users", detail)

    if apps:
        app_id = apps[0]["id"]
        ok, detail = _outcome(
            lambda: client.request("DELETE", f"/api/v1/apps/{app_id}/users/{PROBE_USER}"), (OktaNotFound,))
        how = "DELETE /api/v1/apps/{an app}/users/{nonexistent user}"
    else:
        ok, detail = None, "could not tell: no app readable to probe with"
        how = "needs a readable app"
    out["provision app assignment"] = Capability("provision app assignment", ok, how, detail)

    ok, detail = _outcome(lambda: client.get("/api/v1/iam/assignees/users", {"limit": 1}))
    out["review admin roles"] = Capability("review admin roles", ok, "GET /api/v1/iam/assignees/users", detail)

    ok, detail = _outcome(
        lambda: client.request("POST", "/api/v1/groups", json={"profile": {}}), (OktaInvalidRequest,))
    out["create group"] = Capability("create group", ok, "POST /api/v1/groups with a profile without a name", detail)

    ok, detail = _outcome(
        lambda: client.request("PUT", f"/api/v1/groups/{PROBE_GROUP}",
                               json={"profile": {"name": "oktasync capability probe"}}), (OktaNotFound,))
    out["modify group"] = Capability("modify group", ok, "PUT /api/v1/groups/{nonexistent group}", detail)

    ok, detail = _outcome(lambda: client.request("DELETE", f"/api/v1/groups/{PROBE_GROUP}"), (OktaNotFound,))
    out["delete group"] = Capability("delete group", ok, "DELETE /api/v1/groups/{nonexistent group}", detail)

    ok, detail = _outcome(lambda: client.get("/api/v1/api-tokens"))
    out["sync secrets"] = Capability("sync secrets", ok, "GET /api/v1/api-tokens", detail)

    return [out[name] for name in CAPABILITIES], notes


def users_readable(client: Any) -> tuple[bool | None, str]:
    """Whether the users list is readable and non-empty (an OAuth app without an admin role gets [])."""
    try:
        users = client.get("/api/v1/users", {"limit": 1})
    except OktaAuthenticationError as exc:
        raise CredentialsRejected(exc) from None
    except OktaPermissionDenied as exc:
        return False, f"denied: {exc.error_code or ''}".strip()
    except OktaError as exc:
        # Unreachable, 5xx, rate limited after retries: nothing else would answer either.
        raise ProbeFailed(exc) from None
    if not users:
        return False, ("Okta returned no users: the credentials probably lack an admin role "
                       "(an OAuth service app needs one besides its scopes)")
    return True, "allowed"
