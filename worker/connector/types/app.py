"""Apps: the apps list and each app's user and group assignments, the app resource and its
`access` entitlement, assignment grant/revoke and their probes (baton-okta app.go;
reference/baton-okta.md §1.3, §2, §3)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.pages import PageResult, StreamSpec, each, grants_page, object_id, q, records, text
from worker.connector.probes import PROBE_USER, Capability, capability, outcome
from worker.connector.types import group
from worker.connector.types.base import ChangeSources, Dirty, ResourceType, Stream, event_targets
from worker.model import (
    CountChanged,
    Entitlement,
    Grant,
    GrantAdded,
    GrantRemoved,
    GrantsAnnotated,
    Resource,
    container_key,
    parse_entitlement_id,
    resource_key,
    row_key,
    split_row_key,
)
from worker.okta.errors import OktaConflict, OktaNotFound, OktaPermissionDenied
from worker.provisioning.context import PERM_APPS, PERM_GROUPS, ExecContext, Outcome, already, call
from worker.provisioning.errors import ProvisionError

NAME = "app"
APPS = "apps"  # stream kinds
APP_USERS = "app-users"
APP_GROUPS = "app-groups"
APP_USER = "app-user"  # one user's row of an app's users, read alone (incremental runs)
APPS_LIMIT = 200  # /apps: max 200 (reference/okta-api.md §3.2)
APP_USERS_LIMIT = 500  # /apps/{id}/users: max 500
APP_GROUPS_LIMIT = 200  # /apps/{id}/groups: max 200

_NO_NHI_MODES = frozenset({"BOOKMARK", "BROWSER_PLUGIN", "AUTO_LOGIN", "BASIC_AUTH", "SECURE_PASSWORD_STORE"})
_PERM_READ = "okta.apps.read (an admin role that can view app assignments)"


def access(aid: str, display_name: str = "") -> Entitlement:
    """`app:<aid>:access`"""
    return Entitlement(NAME, aid, "access", display_name)


# ------------------------------------------------------------------------------------ mapping

def resource(app: Mapping[str, Any]) -> Resource:
    aid = object_id(app, "app")
    mode = text(app.get("signOnMode")) or ""
    data: dict[str, Any] = {
        "label": app.get("label"),
        "name": app.get("name"),
        "status": app.get("status"),
        "signOnMode": app.get("signOnMode"),
    }
    if mode not in _NO_NHI_MODES:
        data["non_human_identity"] = f"okta.app.{mode.lower()}" if mode else "okta.app"
    return Resource(NAME, aid, text(app.get("label")) or aid, data)


def entitlement(res: Resource) -> Entitlement:
    return access(res.id, f"{res.display_name} App Access")


# An app user's status follows the user's: Okta lists a suspended or deactivated user's
# assignments as INACTIVE (as oktasim answers; reference/okta-api.md §5 lists the AppUser statuses).
_INACTIVE_USER = frozenset({"SUSPENDED", "DEPROVISIONED"})


def app_user_status(user_status: Any) -> str:
    return "INACTIVE" if user_status in _INACTIVE_USER else "ACTIVE"


def user_status_changed(uid: str, user_status: Any) -> GrantsAnnotated:
    """Write-through of a user's lifecycle change: the status of every app user row of theirs."""
    return GrantsAnnotated(resource_key("user", uid), NAME, {"status": app_user_status(user_status)})


def _listed_through_group(ent_id: str, user: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Okta lists a user assigned through a group as an app user of scope GROUP (a sync stores
    that row, not an expanded one)."""
    return {"scope": "GROUP", "status": app_user_status((user or {}).get("okta_status"))}


# ------------------------------------------------------------------------------------ streams

def apps_url(options: SyncOptions) -> str:
    url = f"/api/v1/apps?limit={APPS_LIMIT}"
    if not options.sync_inactive_apps:
        url += "&filter=" + q('status eq "ACTIVE"')
    return url


def _initial_streams(options: SyncOptions) -> list[StreamSpec]:
    return [StreamSpec(APPS, apps_url(options))]


def _apps(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()

    def one(app: Any) -> None:
        res = resource(app)
        # The list is filtered server-side; this also holds if a page carries an inactive app anyway.
        if not options.sync_inactive_apps and app.get("status") != "ACTIVE":
            return
        out.resources.append(res)
        out.entitlements.append(entitlement(res))
        aid = q(res.id)
        out.children.append(StreamSpec(APP_USERS, f"/api/v1/apps/{aid}/users?limit={APP_USERS_LIMIT}", res.key))
        out.children.append(StreamSpec(APP_GROUPS, f"/api/v1/apps/{aid}/groups?limit={APP_GROUPS_LIMIT}", res.key))
    each(out, "apps", records(body), one)
    return out


def _app_users(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    # The app-user profile is the app's, not the Okta profile, so the e-mail filter is not applied here;
    # the store drops grants whose user is not a resource of the run.
    ent = access(spec.parent_id).id

    def grant(app_user: Any) -> Grant:
        uid = object_id(app_user, "app user")
        ann: dict[str, Any] = {"scope": app_user.get("scope") or "USER"}
        if app_user.get("status"):
            ann["status"] = app_user["status"]
        return Grant(ent, "user", uid, annotations=ann)
    return grants_page(body, "app users", grant)


def _group_grant(ent: str, assignment: Any) -> Grant:
    gid = object_id(assignment, "app group")
    ann = {"priority": assignment["priority"]} if "priority" in assignment else {}
    return Grant(ent, "group", gid, annotations=ann)


def _app_user_row(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    # GET /apps/{id}/users/{uid}: the object the app's user list holds for that user, mapped alike.
    container, _principal = split_row_key(spec.parent or "")
    app = container.partition(":")[2]
    return _app_users(dataclasses.replace(spec, parent=app), [body] if isinstance(body, Mapping) else body, options)


def _app_groups(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    ent = access(spec.parent_id).id
    return grants_page(body, "app groups", lambda assignment: _group_grant(ent, assignment))


# ------------------------------------------------------------------------------------ grant / revoke

def _through_group(uid: str, aid: str) -> str:
    return (f"cannot revoke app {aid} from user {uid}: the user's access holds through a group "
            f"assigned to the app (Okta E0000046); revoke the group's app access or remove the user "
            f"from that group instead")


def _app_user(grant: bool, ctx: ExecContext, ent: Entitlement, uid: str) -> Outcome:
    aid = ent.resource_id
    g = Grant(ent.id, "user", uid)
    current = call(ctx, "GET", f"/api/v1/apps/{aid}/users/{uid}", PERM_APPS, absent_ok=True,
                   parents=("AppInstance", "User"))
    if grant:
        if current is not None:
            return already("granted", g, " (through a group)" if current.get("scope") == "GROUP" else "")
        user = call(ctx, "GET", f"/api/v1/users/{uid}", PERM_GROUPS, what=f"user {uid}")
        profile = user.get("profile") or {}
        username = profile.get("email") or profile.get("login")
        if not username:
            raise ProvisionError(f"user {uid} has neither an email nor a login to use as the app username")
        body = {"id": uid, "scope": "USER", "credentials": {"userName": username}}
        try:
            call(ctx, "POST", f"/api/v1/apps/{aid}/users", PERM_APPS, json=body, what=f"app {aid}")
        except OktaConflict as exc:
            if exc.error_code == "E0000062":  # assigned meanwhile
                return already("granted", g)
            raise
        added = Grant(ent.id, "user", uid, annotations={"scope": "USER", "status": "ACTIVE"})
        return Outcome(f"granted: {g.principal} on {ent.id} (userName {username})",
                       {"userName": username}, [GrantAdded(added)])
    if current is None:
        return already("revoked", g)
    if current.get("scope") == "GROUP":
        raise ProvisionError(_through_group(uid, aid))
    try:
        call(ctx, "DELETE", f"/api/v1/apps/{aid}/users/{uid}", PERM_APPS, raw_403=("E0000046",))
    except OktaPermissionDenied:
        raise ProvisionError(_through_group(uid, aid)) from None
    return Outcome(f"revoked: {g.principal} on {ent.id}", changes=[GrantRemoved(g)])


def _app_group(grant: bool, ctx: ExecContext, ent: Entitlement, gid: str) -> Outcome:
    aid = ent.resource_id
    g = Grant(ent.id, "group", gid)
    current = call(ctx, "GET", f"/api/v1/apps/{aid}/groups/{gid}", PERM_APPS, absent_ok=True,
                   parents=("AppInstance", "UserGroup"))
    if grant:
        if current is not None:
            return already("granted", g)
        assigned = call(ctx, "PUT", f"/api/v1/apps/{aid}/groups/{gid}", PERM_APPS, json={},
                        parents=("AppInstance", "UserGroup"), what=f"app {aid} or group {gid}")
        # The answer is the assignment a sync lists (with the priority Okta gave it).
        added = _group_grant(ent.id, assigned) if isinstance(assigned, Mapping) and assigned.get("id") else g
        return Outcome(f"granted: {g.principal} on {ent.id}",
                       changes=[GrantAdded(added), CountChanged(resource_key("group", gid), "apps_count", 1)])
    if current is None:
        return already("revoked", g)
    call(ctx, "DELETE", f"/api/v1/apps/{aid}/groups/{gid}", PERM_APPS, absent_ok=True)
    return Outcome(f"revoked: {g.principal} on {ent.id}",
                   changes=[GrantRemoved(g), CountChanged(resource_key("group", gid), "apps_count", -1)])


def _assign(grant: bool, ctx: ExecContext, ent: Entitlement, ptype: str, pid: str) -> Outcome:
    return (_app_user if ptype == "user" else _app_group)(grant, ctx, ent, pid)


# ------------------------------------------------------------------------------------ probes

def _probes(client: Any) -> dict[str, Capability]:
    out: dict[str, Capability] = {}
    apps: list = []

    def read_apps() -> None:
        apps.extend(client.get("/api/v1/apps", {"limit": 1}) or [])
        if apps:
            client.get(f"/api/v1/apps/{apps[0]['id']}/users", {"limit": 1})
    out["review app assignment"] = capability(
        "review app assignment", "GET /api/v1/apps, GET /api/v1/apps/{id}/users", read_apps)
    if apps:
        app_id = apps[0]["id"]
        ok, detail = outcome(
            lambda: client.request("DELETE", f"/api/v1/apps/{app_id}/users/{PROBE_USER}"), (OktaNotFound,))
        how = "DELETE /api/v1/apps/{an app}/users/{nonexistent user}"
    else:
        ok, detail = None, "could not tell: no app readable to probe with"
        how = "needs a readable app"
    out["provision app assignment"] = Capability("provision app assignment", ok, how, detail)
    return out



# ------------------------------------------------------------------------------------ changes

APP_EVENTS = ("application.user_membership.add", "application.user_membership.update",
              "application.user_membership.remove", "application.user_membership.revoke",
              "application.user_membership.deprovision", "application.user_membership.provision",
              "application.user_membership.restore",
              "group.application_assignment.add", "group.application_assignment.update",
              "group.application_assignment.remove",
              "application.lifecycle.create", "application.lifecycle.activate", "application.lifecycle.delete")


def _app_lists(options: SyncOptions, since: str, also: tuple[str, ...]) -> list[StreamSpec]:
    return _initial_streams(options)  # a few pages: re-listed whole every run


def _spec_for(kind: str, parent: str) -> StreamSpec | None:
    aid = parent.split(":", 1)[1] if parent.startswith(f"{NAME}:") else ""
    if kind == APP_USERS and aid:
        return StreamSpec(APP_USERS, f"/api/v1/apps/{q(aid)}/users?limit={APP_USERS_LIMIT}", parent)
    if kind == APP_GROUPS and aid:
        return StreamSpec(APP_GROUPS, f"/api/v1/apps/{q(aid)}/groups?limit={APP_GROUPS_LIMIT}", parent)
    return None


def _row_spec(kind: str, parent: str, principal: str) -> StreamSpec | None:
    aid = parent.split(":", 1)[1] if parent.startswith(f"{NAME}:") else ""
    ptype, _, uid = principal.partition(":")
    if kind != APP_USERS or not aid or ptype != "user" or not uid:
        return None
    container = container_key(APP_USERS, parent)
    # Its rows go in the app's user list's container, so a later re-list of that list replaces them.
    return StreamSpec(APP_USER, f"/api/v1/apps/{q(aid)}/users/{q(uid)}", row_key(container, principal),
                      meta=(("container", container),))


def _page_size(kind: str) -> int:
    return {APP_USERS: APP_USERS_LIMIT, APP_GROUPS: APP_GROUPS_LIMIT}.get(kind, 0)


def _container_of(item: Grant | Resource) -> str:
    if not isinstance(item, Grant):
        return container_key(APPS, None)
    app = resource_key(NAME, parse_entitlement_id(item.entitlement_id).resource_id)
    return container_key(APP_USERS if item.principal_type == "user" else APP_GROUPS, app)


def _app_dirty(event: Any, options: SyncOptions) -> Dirty:
    kind = str(event.get("eventType") or "")
    apps = event_targets(event, "AppInstance")
    if kind == "application.lifecycle.delete":
        return Dirty(deleted=tuple(resource_key(NAME, aid) for aid in apps))
    streams: list[StreamSpec] = []
    # A group's app count (expand=stats) changes with its assignments, not its timestamps.
    also = tuple(group.recount(gid) for gid in event_targets(event, "UserGroup")) if kind.startswith("group.") else ()
    for aid in apps:
        if not kind.startswith("group."):
            streams.append(_spec_for(APP_USERS, resource_key(NAME, aid)))  # type: ignore[arg-type]
        if not kind.startswith("application.user_membership."):
            streams.append(_spec_for(APP_GROUPS, resource_key(NAME, aid)))  # type: ignore[arg-type]
    return Dirty(streams=tuple(streams), also=also)


TYPE = ResourceType(
    NAME,
    streams=(
        Stream(APPS, "apps", "okta.apps.read (an admin role that can view apps)", _apps),
        Stream(APP_USERS, "app user assignments", _PERM_READ, _app_users),
        Stream(APP_GROUPS, "app group assignments", _PERM_READ, _app_groups),
        Stream(APP_USER, "an app user assignment", _PERM_READ, _app_user_row, absent_is_empty=True),
    ),
    initial_streams=_initial_streams,
    grant=functools.partial(_assign, True),
    revoke=functools.partial(_assign, False),
    probes=_probes,
    changes=ChangeSources(lists=_app_lists, event_types=APP_EVENTS, dirty=_app_dirty, spec_for=_spec_for,
                          row_spec=_row_spec, rows=(APP_USER,), page_size=_page_size),
    container_of=_container_of,
    listed_through_group=_listed_through_group,
)
