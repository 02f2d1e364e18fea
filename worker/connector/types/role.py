"""Standard admin roles: the static list of roles, the role assignments of users, groups and OAuth
service apps (which also name custom roles), the role resource and its `assigned` entitlement, role
grant/revoke and the admin-roles probes (baton-okta role.go; reference/baton-okta.md §1.4, §2, §3).

A service app's roles (okta-api.md §2.2, §5.8: `/oauth2/v1/clients/{clientId}/roles`,
`assignmentType: CLIENT`) are grants whose principal is the app (`app:<id>`): non-human admins.
No list names the apps holding roles, so the OIDC apps are listed (filter `name eq "oidc_client"`)
and each service app's roles are read."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.pages import BadObject, PageResult, StreamSpec, body_next, each, object_id, q, records
from worker.connector.probes import Capability, capability
from worker.connector.types import custom_role, user
from worker.connector.types.base import ChangeSources, Dirty, ResourceType, Stream, event_targets
from worker.model import (
    Entitlement,
    Grant,
    GrantAdded,
    GrantRemoved,
    InvalidId,
    Resource,
    container_key,
    parse_entitlement_id,
    parse_grant_id,
    resource_key,
)
from worker.okta.errors import OktaConflict
from worker.provisioning.context import PERM_APPS, PERM_ROLES, ExecContext, Outcome, already, call
from worker.provisioning.errors import ProvisionError

NAME = "role"
ROLE_ASSIGNEES = "role-assignees"  # stream kinds
USER_ROLES = "user-roles"
GROUP_ROLES = "group-roles"
ROLE_TARGETS = "role-targets"
SERVICE_APPS = "service-apps"
CLIENT_ROLES = "client-roles"
TARGETS_LIMIT = 200  # …/targets/*: Okta's maximum page size (okta-api.md §3.2)
ASSIGNEES_LIMIT = 1000  # /iam/assignees/users: no documented max; baton-okta uses 1000
# Custom OIDC apps are all named oidc_client (OIN catalog service integrations are not listed).
OIDC_APPS_FILTER = 'name eq "oidc_client"'
SERVICE_APPS_URL = "/api/v1/apps?limit=200&filter=" + q(OIDC_APPS_FILTER)
# Principal type -> the list of its own role assignments and the assignmentType Okta gives them.
ROLE_LISTS = {"user": USER_ROLES, "group": GROUP_ROLES, "app": CLIENT_ROLES}
DIRECT = {"user": "USER", "group": "GROUP", "app": "CLIENT"}

# The standard admin roles baton-okta lists (resource id = Okta role type).
STANDARD_ROLES: dict[str, str] = {
    "API_ACCESS_MANAGEMENT_ADMIN": "API Access Management Administrator",
    "MOBILE_ADMIN": "Mobile Administrator",
    "ORG_ADMIN": "Organizational Administrator",
    "READ_ONLY_ADMIN": "Read-Only Administrator",
    "REPORT_ADMIN": "Report Administrator",
    "SUPER_ADMIN": "Super Administrator",
    "USER_ADMIN": "Group Administrator",
    "HELP_DESK_ADMIN": "Help Desk Administrator",
    "APP_ADMIN": "Application Administrator",
    "GROUP_MEMBERSHIP_ADMIN": "Group Membership Administrator",
}
# IAM-based standard roles. Okta assigns them by type like the others (`{"type": "WORKFLOWS_ADMIN"}`)
# and lists an assignment with that `type`, though in the custom-role shape whose `role` and
# `resource-set` are not ids of a custom role and resource set the sync lists (okta-api.md §5.7):
# so they are keyed on `type`, as standard roles. (baton-okta shows them as custom roles, §8.4,
# where they could be neither granted nor revoked.)
IAM_BASED_ROLES: dict[str, str] = {
    "WORKFLOWS_ADMIN": "Workflows Administrator",
    "ACCESS_CERTIFICATIONS_ADMIN": "Access Certifications Administrator",
    "ACCESS_REQUESTS_ADMIN": "Access Requests Administrator",
}
ROLE_LABELS = {**STANDARD_ROLES, **IAM_BASED_ROLES}   # the role resources every sync shows
# Roles Okta scopes (okta-api.md §5.7): to groups, or to catalog apps and app instances. A scoped role's
# grant carries its targets in the annotation `targets`; without it the role is org-wide.
GROUP_TARGET_ROLES = frozenset({"USER_ADMIN", "HELP_DESK_ADMIN", "GROUP_MEMBERSHIP_ADMIN"})
APP_TARGET_ROLES = frozenset({"APP_ADMIN"})
TARGET_KINDS = ("groups", "apps", "app_instances")   # the keys of `targets`

def _after_removed(annotations: Mapping[str, Any], removed: str) -> dict[str, Any] | None:
    """Write-through rule: a deleted group leaves the targets of every role scoped to it; an
    assignment that loses its last target goes (oktasim does so; Okta does not document it, and a
    role left org-wide would give the admin more than before)."""
    rtype, rid = removed.split(":", 1)
    targets = annotations.get("targets")
    if rtype != "group" or not isinstance(targets, Mapping) or rid not in (targets.get("groups") or []):
        return dict(annotations)
    left = {kind: [t for t in ids if t != rid] for kind, ids in targets.items()}
    left = {kind: ids for kind, ids in left.items() if ids}
    return {**annotations, "targets": left} if left else None


# Okta's errors for "this role is already assigned".
ALREADY_ASSIGNED = ("E0000090", "E0000263")
_PERM_READ = "okta.roles.read (an admin role with 'View roles, resources, and admin assignments')"
_PERM_SERVICE_APPS = "okta.apps.read (an admin role that can view apps), to find the OAuth service apps"


def assigned(role_type: str, display_name: str = "") -> Entitlement:
    """`role:<TYPE>:assigned`"""
    return Entitlement(NAME, role_type, "assigned", display_name)


def roles_path(ptype: str, pid: str) -> str:
    """The role assignments of a user, a group, or a service app (`pid`: its client id)."""
    if ptype == "app":
        return f"/oauth2/v1/clients/{pid}/roles"
    return f"/api/v1/{'users' if ptype == 'user' else 'groups'}/{pid}/roles"


def is_service_app(app: Any) -> bool:
    """An OAuth client using client credentials: the only apps Okta gives admin roles."""
    settings = app.get("settings") if isinstance(app, Mapping) else None
    client = settings.get("oauthClient") if isinstance(settings, Mapping) else None
    return (app.get("signOnMode") == "OPENID_CONNECT" and isinstance(client, Mapping)
            and client.get("application_type") == "service")


def client_id(app: Mapping[str, Any]) -> str:
    """An OIDC app's client id: the app id unless one was set at creation."""
    creds = app.get("credentials")
    client = creds.get("oauthClient") if isinstance(creds, Mapping) else None
    cid = client.get("client_id") if isinstance(client, Mapping) else None
    return cid if isinstance(cid, str) and cid else object_id(app, "app")


# ------------------------------------------------------------------------------------ mapping

def resource(role_type: str, label: str | None = None) -> Resource:
    label = label or ROLE_LABELS.get(role_type) or role_type
    return Resource(NAME, role_type, label, {"id": "", "label": label, "type": role_type})


def entitlement(res: Resource) -> Entitlement:
    return assigned(res.id, f"{res.display_name} Role Member")


def _static_resources(options: SyncOptions) -> PageResult:
    """The standard admin roles (the IAM-based ones too) and their entitlements (no API call lists them)."""
    out = PageResult()
    for role_type in ROLE_LABELS:
        res = resource(role_type)
        out.resources.append(res)
        out.entitlements.append(entitlement(res))
    return out


# ------------------------------------------------------------------------------------ streams

def targets_path(role_type: str) -> str | None:
    """The targets list of a role assignment (below its path), or None when Okta does not scope the role."""
    if role_type in GROUP_TARGET_ROLES:
        return "targets/groups"
    if role_type in APP_TARGET_ROLES:
        return "targets/catalog/apps"
    return None


def _targets_stream(role_type: str, ptype: str, pid: str, assignment_id: str, path_id: str) -> StreamSpec | None:
    path = targets_path(role_type)
    if path is None:
        return None
    url = f"{roles_path(ptype, q(path_id))}/{q(assignment_id)}/{path}?limit={TARGETS_LIMIT}"
    # Its parent is the role's grant: a principal may hold several scoped roles (one stream each).
    # Its rows belong to the principal's role list (re-listing that list replaces them).
    container = container_key(ROLE_LISTS[ptype], resource_key(ptype, pid))
    return StreamSpec(ROLE_TARGETS, url, Grant(assigned(role_type).id, ptype, pid).id,
                      meta=(("assignment", assignment_id), ("container", container)))


def assignments_container(grant: Grant) -> str:
    """The principal's role list, where Okta lists its standard and custom role assignments."""
    return container_key(ROLE_LISTS[grant.principal_type], grant.principal)


def group_roles_stream(gid: str) -> StreamSpec:
    return StreamSpec(GROUP_ROLES, roles_path("group", q(gid)), resource_key("group", gid))


def _initial_streams(options: SyncOptions) -> list[StreamSpec]:
    return [StreamSpec(ROLE_ASSIGNEES, f"/api/v1/iam/assignees/users?limit={ASSIGNEES_LIMIT}"),
            *_client_role_lists(options, "", ())]


def _role_grants(out: PageResult, assignments: list[Any], principal_type: str, principal_id: str,
                 options: SyncOptions, path_id: str | None = None) -> None:
    """Role assignments of one user, group or service app -> grants on role / custom-role
    entitlements. `path_id`: the id in the principal's roles URL (a client id) if not principal_id."""
    assignment_type = DIRECT[principal_type]

    def one(a: Any) -> None:
        if not isinstance(a, Mapping):
            raise BadObject(f"role assignment: expected an object, got {type(a).__name__}")
        if a.get("status") == "INACTIVE":
            return
        # A user's list also holds roles inherited from groups (assignmentType GROUP): those are the
        # group's grants, expanded by the store, not the user's own.
        if (a.get("assignmentType") or assignment_type) != assignment_type:
            return
        role_type = a.get("type")
        if not isinstance(role_type, str) or not role_type:
            raise BadObject(f"role assignment {a.get('id')!r} has no type")
        ann = {"id": a["id"]} if isinstance(a.get("id"), str) else {}
        if role_type == "CUSTOM":
            if not options.sync_custom_roles:
                return
            role_id = a.get("role")
            if not isinstance(role_id, str) or not role_id:
                raise BadObject(f"custom role assignment {a.get('id')!r} has no role")
            if isinstance(a.get("resource-set"), str):
                ann["resource-set"] = a["resource-set"]
            out.grants.append(Grant(custom_role.assigned(role_id).id, principal_type, principal_id,
                                    annotations=ann))
            return
        if role_type not in ROLE_LABELS:
            # A standard role type baton-okta's list lacks: create it rather than drop the grant.
            res = resource(role_type, a.get("label") if isinstance(a.get("label"), str) else None)
            out.resources.append(res)
            out.entitlements.append(entitlement(res))
        out.grants.append(Grant(assigned(role_type).id, principal_type, principal_id, annotations=ann))
        if "id" in ann:   # its targets, if Okta scopes the role: the targets stream adds them to the grant
            child = _targets_stream(role_type, principal_type, principal_id, ann["id"], path_id or principal_id)
            if child is not None:
                out.children.append(child)
    each(out, f"roles of {principal_type} {principal_id}", assignments, one)


def _group_roles(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    _role_grants(out, records(body), "group", spec.parent_id, options)
    return out


def _user_roles(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    _role_grants(out, records(body), "user", spec.parent_id, options)
    return out


def client_roles_stream(aid: str, cid: str) -> StreamSpec:
    """A service app's role list; its rows are the app's grants (`app:<aid>`), read by client id."""
    return StreamSpec(CLIENT_ROLES, roles_path("app", q(cid)), resource_key("app", aid),
                      meta=(("client", cid),) if cid != aid else ())


def _service_apps(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    """OIDC apps -> one role list per service app, whatever its status (the store prunes the grants
    of an app that is not a resource of the run, e.g. an inactive one when inactive apps are not synced)."""
    out = PageResult()

    def one(app: Any) -> None:
        aid = object_id(app, "app")
        if is_service_app(app):
            out.children.append(client_roles_stream(aid, client_id(app)))
    each(out, "OIDC apps", records(body), one)
    return out


def _client_roles(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    _role_grants(out, records(body), "app", spec.parent_id, options, spec.meta_value("client", spec.parent_id))
    return out


def _add_target(targets: dict[str, list[str]], role_type: str, item: Any) -> None:
    """One item of a targets list -> `targets` (a group, a whole catalog app, or one app instance)."""
    if role_type in GROUP_TARGET_ROLES:
        targets.setdefault("groups", []).append(object_id(item, "target group"))
    elif isinstance(item, Mapping) and isinstance(item.get("id"), str) and item["id"]:
        targets.setdefault("app_instances", []).append(item["id"])   # one instance of the app
    elif isinstance(item, Mapping) and isinstance(item.get("name"), str) and item["name"]:
        targets.setdefault("apps", []).append(item["name"])   # every instance of a catalog app
    else:
        raise BadObject("target app: expected an object with a name")


def check_targets(ent: Entitlement, targets: Any) -> dict[str, list[str]]:
    """The `targets` of a grant request, validated and canonical (sorted, no duplicates); ValueError
    naming the problem. Groups and app instances are raw Okta ids, apps catalog app names."""
    role_type = ent.resource_id
    if ent.resource_type != NAME or targets_path(role_type) is None:
        raise ValueError(f"'targets' apply only to roles Okta scopes ({', '.join(sorted(GROUP_TARGET_ROLES))}: "
                         f"groups; {', '.join(sorted(APP_TARGET_ROLES))}: apps, app_instances), not {ent.id!r}")
    if not isinstance(targets, Mapping) or not targets:
        raise ValueError("'targets' must be a non-empty object, e.g. {\"groups\": [\"00g1\"]}")
    allowed = ("groups",) if role_type in GROUP_TARGET_ROLES else ("apps", "app_instances")
    out: dict[str, list[str]] = {}
    for kind, values in targets.items():
        if kind not in allowed:
            raise ValueError(f"role {role_type} takes targets {', '.join(allowed)}, not {kind!r}")
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, str) and v and not any(c in v for c in ":/ ") for v in values)):
            raise ValueError(f"targets.{kind} must be a non-empty list of Okta ids or app names, got {values!r}")
        out[kind] = sorted(set(values))
    return out


def _role_targets(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    """The targets of one role assignment -> the role's grant again, with `targets` in its annotations
    (it replaces the grant the roles page wrote). None listed: the grant stays as it is (org-wide)."""
    out = PageResult()
    try:
        grant = parse_grant_id(spec.parent or "")
    except InvalidId as exc:   # not a stream this module opened
        raise BadObject(f"role targets: the stream's parent is not a role grant ({exc})") from None
    role_type, ptype, pid = parse_entitlement_id(grant.entitlement_id).resource_id, grant.principal_type, grant.principal_id
    aid = spec.meta_value("assignment")
    if "after=" in spec.url:   # a later page could only replace the first page's targets: say so
        out.warnings.append(f"role {role_type} of {ptype} {pid} has more than {TARGETS_LIMIT} targets; "
                            f"its grant lists the first {TARGETS_LIMIT}")
        return out
    targets: dict[str, list[str]] = {}
    each(out, f"targets of role {role_type} of {ptype} {pid}", records(body),
         lambda t: _add_target(targets, role_type, t))
    if targets:
        out.grants.append(Grant(grant.entitlement_id, ptype, pid, annotations={"id": aid, "targets": targets}))
    return out


def _role_assignees(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    # One list of the users holding any admin role, then one role list per such user: a few hundred
    # requests at most, instead of baton-okta's pass over this list for every role.
    out = PageResult(next_url=body_next(body))

    def one(entry: Any) -> None:
        uid = object_id(entry, "role assignee")
        out.children.append(StreamSpec(USER_ROLES, roles_path("user", q(uid)), user.key(uid)))
    each(out, "role assignees", records(body, "value"), one)
    return out


# ------------------------------------------------------------------------------------ grant / revoke

def _read_targets(ctx: ExecContext, path: str, role_type: str) -> dict[str, list[str]]:
    targets: dict[str, list[str]] = {}
    for item in call(ctx, "GET", path, PERM_ROLES, params={"limit": TARGETS_LIMIT}) or []:
        _add_target(targets, role_type, item)
    return targets


def _add_targets(ctx: ExecContext, path: str, role_type: str,
                 wanted: Mapping[str, list[str]]) -> tuple[dict[str, list[str]], bool]:
    """PUT the wanted targets the assignment lacks: (its targets afterwards, whether any was added)."""
    have = _read_targets(ctx, path, role_type)
    missing = {kind: [t for t in ids if t not in have.get(kind, [])] for kind, ids in wanted.items()}
    if not any(missing.values()):
        return have, False
    for gid in missing.get("groups", []):
        call(ctx, "PUT", f"{path}/{q(gid)}", PERM_ROLES, what=f"target group {gid}", parents=("UserGroup",))
    for name in missing.get("apps", []):
        call(ctx, "PUT", f"{path}/{q(name)}", PERM_ROLES, what=f"target app {name}")
    for aid in missing.get("app_instances", []):   # Okta's path names the instance's catalog app too
        app = call(ctx, "GET", f"/api/v1/apps/{q(aid)}", PERM_ROLES, what=f"app {aid}") or {}
        call(ctx, "PUT", f"{path}/{q(str(app.get('name')))}/{q(aid)}", PERM_ROLES, what=f"target app {aid}")
    return _read_targets(ctx, path, role_type), True


def service_client_id(ctx: ExecContext, aid: str) -> str:
    """The client id of service app `aid`, which roles are assigned through; a clear error for an
    app Okta gives no admin roles."""
    app = call(ctx, "GET", f"/api/v1/apps/{q(aid)}", PERM_APPS, what=f"app {aid}", parents=("AppInstance",)) or {}
    if not is_service_app(app):
        raise ProvisionError(f"app {aid} is not an OAuth service app (OPENID_CONNECT, application_type "
                             "'service'): Okta assigns admin roles only to users, groups and service apps")
    return client_id(app)


def _assign(grant: bool, ctx: ExecContext, ent: Entitlement, ptype: str, pid: str,
            targets: Mapping[str, list[str]] | None = None) -> Outcome:
    """Standard roles go to users, groups and service apps; a user's revoke removes only a *direct*
    assignment (never one held through a group). A grant with `targets` scopes the role to them
    (adding any the assignment lacks; an org-wide assignment becomes scoped)."""
    role_type = ent.resource_id
    base = roles_path(ptype, service_client_id(ctx, pid) if ptype == "app" else pid)
    g = Grant(ent.id, ptype, pid)
    assignments = call(ctx, "GET", base, PERM_ROLES, what=f"{ptype} {pid}") or []
    direct = DIRECT[ptype]
    mine = [a for a in assignments if a.get("type") == role_type and a.get("status", "ACTIVE") != "INACTIVE"
            and a.get("assignmentType", direct) == direct]
    if grant:
        if mine and not targets:
            return already("granted", g)
        made = None
        if not mine:
            try:
                made = call(ctx, "POST", base, PERM_ROLES, json={"type": role_type}, what=f"{ptype} {pid}")
            except OktaConflict as exc:
                if exc.error_code in ALREADY_ASSIGNED:
                    return already("granted", g)
                raise
        aid = (made or mine[0]).get("id")
        ann: dict[str, Any] = {"id": aid} if aid else {}
        if targets:
            ann["targets"], added_some = _add_targets(ctx, f"{base}/{q(aid)}/{targets_path(role_type)}",
                                                      role_type, targets)
            if mine and not added_some:
                return already("granted", g, " (with these targets)")
        result = {"assignment_id": aid, **({"targets": ann["targets"]} if targets else {})}
        return Outcome(f"granted: {g.principal} on {ent.id}", result, [GrantAdded(Grant(ent.id, ptype, pid, annotations=ann))])
    if not mine:
        via_group = ptype == "user" and any(a.get("type") == role_type for a in assignments)
        return already("revoked", g, " (the user still holds it through a group)" if via_group else "")
    for a in mine:
        call(ctx, "DELETE", f"{base}/{a['id']}", PERM_ROLES, absent_ok=True)
    return Outcome(f"revoked: {g.principal} on {ent.id}", changes=[GrantRemoved(g)])


def _probes(client: Any) -> dict[str, Capability]:
    name = "review service-app admin roles"
    found: list[Any] = []

    def read_service_apps() -> None:
        found.extend(a for a in client.get("/api/v1/apps", {"limit": 200, "filter": OIDC_APPS_FILTER}) or []
                     if is_service_app(a))
    how = f"GET /api/v1/apps?filter={OIDC_APPS_FILTER}, GET /oauth2/v1/clients/{{a service app}}/roles"
    service = capability(name, how, read_service_apps)
    if service.allowed and found:
        service = capability(name, how, lambda: client.get(roles_path("app", q(client_id(found[0])))))
    elif service.allowed:
        service = Capability(name, None, how, "could not tell: no OAuth service app in the org to read the roles of")
    return {
        "review admin roles": capability(
            "review admin roles", "GET /api/v1/iam/assignees/users",
            lambda: client.get("/api/v1/iam/assignees/users", {"limit": 1})),
        name: service,
    }



# ------------------------------------------------------------------------------------ changes

ROLE_EVENTS = ("user.account.privilege.grant", "user.account.privilege.revoke",
               "group.privilege.grant", "group.privilege.revoke")


def _client_role_lists(options: SyncOptions, since: str, also: tuple[str, ...]) -> list[StreamSpec]:
    # Whether Okta logs every change of a client's roles is not documented (the event catalog has
    # app.oauth2.client.privilege.grant|revoke; a 2025.05 release note says it is written when the
    # super admin role is granted to an API service integration, nothing about the other roles), so
    # the service apps' role lists are re-listed every run: one OIDC-apps page and one list per service
    # app. The OIDC-apps list is "partial" only so that the role lists it opens are listed too; it
    # writes no rows of its own.
    return [StreamSpec(SERVICE_APPS, SERVICE_APPS_URL)]


def _role_dirty(event: Any, options: SyncOptions) -> Dirty:
    # privilege.grant means "changed" (it lists all current roles): re-list the principal's roles.
    if str(event.get("eventType") or "").startswith("group."):
        return Dirty(streams=tuple(group_roles_stream(gid) for gid in event_targets(event, "UserGroup")))
    return Dirty(streams=tuple(StreamSpec(USER_ROLES, roles_path("user", q(uid)), user.key(uid))
                               for uid in event_targets(event, "User")))


TYPE = ResourceType(
    NAME,
    streams=(
        Stream(ROLE_ASSIGNEES, "admin roles assigned to users", _PERM_READ, _role_assignees),
        Stream(USER_ROLES, "admin roles assigned to users", _PERM_READ, _user_roles),
        Stream(GROUP_ROLES, "admin roles assigned to groups", _PERM_READ, _group_roles),
        Stream(ROLE_TARGETS, "targets of admin roles", _PERM_READ, _role_targets),
        Stream(SERVICE_APPS, "OAuth service apps (to read their admin roles)", _PERM_SERVICE_APPS, _service_apps),
        Stream(CLIENT_ROLES, "admin roles assigned to OAuth service apps", _PERM_READ, _client_roles),
    ),
    initial_streams=_initial_streams,
    static_resources=_static_resources,
    grant=functools.partial(_assign, True),
    revoke=functools.partial(_assign, False),
    probes=_probes,
    changes=ChangeSources(lists=_client_role_lists, partial=(SERVICE_APPS,), event_types=ROLE_EVENTS,
                          dirty=_role_dirty),
    container_of=lambda item: assignments_container(item) if isinstance(item, Grant) else "",
    after_removed=_after_removed,
)
