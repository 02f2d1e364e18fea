"""What an executor gets (ExecContext) and returns (Outcome), and the one helper that talks to Okta.

`call()` turns the Okta client's typed errors into provisioning outcomes: a 403 becomes
PermissionDenied naming the permission the operation needs, a 404 NotFound naming the object
(or None when the caller expects absence). Everything transient is left to runner.py to retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.connector.options import SyncOptions
from worker.model import Change, Grant
from worker.okta.errors import OktaNotFound, OktaPermissionDenied
from worker.provisioning.errors import NotFound, PermissionDenied, ProvisionError

# The permission each family of operation needs: the OAuth scope and the admin role.
PERM_GROUPS = "okta.groups.manage (scope) / Group Administrator or Super Administrator (role)"
PERM_APPS = "okta.apps.manage (scope) / Application Administrator or Super Administrator (role)"
PERM_ROLES = "okta.roles.manage (scope) / Super Administrator (role)"
PERM_USERS = "okta.users.manage (scope) / Group Administrator or Super Administrator (role)"


@dataclass
class Outcome:
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    # What changed in Okta, for the store to write through to the tenant's view at once.
    changes: list[Change] = field(default_factory=list)


def already(verb: str, grant: Grant, note: str = "") -> Outcome:
    """Nothing to do: the grant is already there ("granted") or gone ("revoked")."""
    return Outcome(f"already {verb}: {grant.principal} on {grant.entitlement_id}{note}", {"already": True})


class PartialFailure(ProvisionError):
    """Part of the request happened (e.g. the group exists) and part failed: both are recorded."""

    def __init__(self, message: str, outcome: Outcome):
        super().__init__(message)
        self.outcome = outcome


@dataclass
class ExecContext:
    okta: Any  # worker.okta.client.OktaClient (or anything with .request/.paginate)
    base_url: str  # https://<domain>, for resource-set member hrefs
    progress: dict[str, Any] = field(default_factory=dict)  # checkpoints of earlier attempts
    checkpoint: Callable[[dict[str, Any]], None] = lambda _p: None
    attempt: int = 1
    created_at: datetime | None = None
    # The tenant's sync options: a change is written through as the next sync would map it.
    options: SyncOptions = field(default_factory=SyncOptions)

    def save(self, **values: Any) -> None:
        """Record progress in the request row now, before the next Okta call (crash safety)."""
        self.progress.update(values)
        self.checkpoint(dict(self.progress))


def call(ctx: ExecContext, method: str, path: str, perm: str, *, what: str = "",
         json: Any = None, params: dict[str, Any] | None = None, absent_ok: bool = False,
         parents: tuple[str, ...] = (), raw_403: tuple[str, ...] = ()) -> Any:
    """Make one Okta call; return its JSON body (None for 204, or for 404 when absent_ok).

    `parents`: Okta resource types (`AppInstance`, `User`...) whose 404 means the request names
    an object that does not exist, not that the relation is absent: NotFound even if absent_ok.
    Saves a GET of the parent before every read-before-write."""
    try:
        resp = ctx.okta.request(method, path, params=params, json=json)
    except OktaNotFound as exc:
        summary = exc.error_summary or ""
        missing = next((t for t in parents if f"({t})" in summary), None)
        if missing:
            raise NotFound(f"{missing} {summary.rsplit(':', 1)[-1].split('(')[0].strip()} not found in Okta "
                           f"({exc.error_code})") from None
        if absent_ok:
            return None
        raise NotFound(f"{what or path} not found in Okta ({exc.error_code or exc.status})") from None
    except OktaPermissionDenied as exc:
        if exc.error_code in raw_403:
            raise
        raise PermissionDenied(
            f"permission denied for {method} {path}: the credentials need {perm}"
            f" (Okta: {exc.error_summary or exc.error_code or exc.status})") from None
    return resp.data


def list_all(ctx: ExecContext, path: str, perm: str, *, what: str = "",
             params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Every item of a paginated list (follows Okta's Link headers through the client)."""
    try:
        yield from ctx.okta.paginate(path, params=params)
    except OktaNotFound as exc:
        raise NotFound(f"{what or path} not found in Okta ({exc.error_code or exc.status})") from None
    except OktaPermissionDenied as exc:
        raise PermissionDenied(
            f"permission denied for GET {path}: the credentials need {perm}"
            f" (Okta: {exc.error_summary or exc.error_code or exc.status})") from None
