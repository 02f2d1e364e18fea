"""The connector's contract with the sync engine: streams of Okta pages -> rows.

A stream is one Okta list (all users, the members of one group, ...). The engine fetches a stream page by
page (following the `Link: rel="next"` header, or `PageResult.next_url` for the IAM endpoints that page in
the body), calls `handle_page` on each page's JSON body, writes the result, and opens the child streams it
names. `handle_page` and `handle_error` are pure: no I/O, same input -> same output, so a redelivered task
does nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from worker.connector import mapping as m
from worker.connector.options import SyncOptions
from worker.model import Entitlement, Grant, Resource

# Sent on user lists: Okta leaves out credential objects and links (smaller pages, server-side fast path).
OMIT_CREDENTIALS = (
    ("Content-Type",
     'application/json; okta-response="omitCredentials,omitCredentialsLinks,omitTransitioningToStatus"'),
)

# Page sizes at Okta's maxima (reference/okta-api.md §3.2), to minimise requests.
USERS_LIMIT = 200            # /users: max 200
GROUPS_LIMIT = 10000         # /groups: max 10000
GROUP_USERS_LIMIT = 1000     # /groups/{id}/users: default = max 1000
APPS_LIMIT = 200             # /apps: max 200
APP_USERS_LIMIT = 500        # /apps/{id}/users: max 500
APP_GROUPS_LIMIT = 200       # /apps/{id}/groups: max 200
ASSIGNEES_LIMIT = 1000       # /iam/assignees/users: no documented max; baton-okta uses 1000


@dataclass(frozen=True)
class StreamSpec:
    kind: str
    url: str  # path + query of the first page
    parent: str | None = None  # "<type>:<id>" of the object this list belongs to
    # Request headers the engine must send with every page of this stream.
    headers: tuple[tuple[str, str], ...] = ()
    # Facts about the parent that the pages need (e.g. a resource set's label for its bindings).
    meta: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "parent": self.parent,
                "headers": [list(h) for h in self.headers], "meta": [list(x) for x in self.meta]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamSpec:
        return cls(data["kind"], data["url"], data.get("parent"),
                   tuple((str(k), str(v)) for k, v in data.get("headers") or ()),
                   tuple((str(k), str(v)) for k, v in data.get("meta") or ()))

    @property
    def header_dict(self) -> dict[str, str]:
        return dict(self.headers)

    def meta_value(self, key: str, default: str = "") -> str:
        return dict(self.meta).get(key, default)

    @property
    def parent_id(self) -> str:
        return (self.parent or "").split(":", 1)[-1]


@dataclass
class PageResult:
    resources: list[Resource] = field(default_factory=list)
    entitlements: list[Entitlement] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    children: list[StreamSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Next page named in the body (`_links.next.href`) by the IAM endpoints; the engine follows it when
    # the response had no `Link: rel="next"` header.
    next_url: str | None = None

    def extend(self, other: PageResult) -> None:
        self.resources += other.resources
        self.entitlements += other.entitlements
        self.grants += other.grants
        self.children += other.children
        self.warnings += other.warnings


# Stream kinds.
USERS = "users"
GROUPS = "groups"
APPS = "apps"
GROUP_MEMBERS = "group-members"
GROUP_ROLES = "group-roles"
APP_USERS = "app-users"
APP_GROUPS = "app-groups"
ROLE_ASSIGNEES = "role-assignees"
USER_ROLES = "user-roles"
CUSTOM_ROLES = "custom-roles"
RESOURCE_SETS = "resource-sets"
BINDINGS = "resource-set-bindings"
BINDING_MEMBERS = "binding-members"
API_TOKENS = "api-tokens"

# What each kind reads, and the permission it needs (for warnings and `oktasync check`).
PHASES: dict[str, tuple[str, str]] = {
    USERS: ("users", "okta.users.read (an admin role that can view users)"),
    GROUPS: ("groups", "okta.groups.read (an admin role that can view groups)"),
    GROUP_MEMBERS: ("group members", "okta.groups.read (an admin role that can view group members)"),
    GROUP_ROLES: ("admin roles assigned to groups",
                  "okta.roles.read (an admin role with 'View roles, resources, and admin assignments')"),
    APPS: ("apps", "okta.apps.read (an admin role that can view apps)"),
    APP_USERS: ("app user assignments", "okta.apps.read (an admin role that can view app assignments)"),
    APP_GROUPS: ("app group assignments", "okta.apps.read (an admin role that can view app assignments)"),
    ROLE_ASSIGNEES: ("admin roles assigned to users",
                     "okta.roles.read (an admin role with 'View roles, resources, and admin assignments')"),
    USER_ROLES: ("admin roles assigned to users",
                 "okta.roles.read (an admin role with 'View roles, resources, and admin assignments')"),
    CUSTOM_ROLES: ("custom roles", "okta.roles.read (an admin role that can view roles)"),
    RESOURCE_SETS: ("resource sets", "okta.roles.read (an admin role that can view resource sets)"),
    BINDINGS: ("resource set bindings", "okta.roles.read (an admin role that can view resource sets)"),
    BINDING_MEMBERS: ("resource set binding members", "okta.roles.read (an admin role that can view resource sets)"),
    API_TOKENS: ("API tokens", "okta.apiTokens.read (a super admin, or an admin role that can view API tokens)"),
}


def _q(value: str) -> str:
    return quote(value, safe="")


def users_url() -> str:
    # search=status pr ("status present") is what includes DEPROVISIONED users.
    return f"/api/v1/users?search=status+pr&limit={USERS_LIMIT}"


def apps_url(options: SyncOptions) -> str:
    url = f"/api/v1/apps?limit={APPS_LIMIT}"
    if not options.sync_inactive_apps:
        url += "&filter=" + _q('status eq "ACTIVE"')
    return url


def initial_streams(options: SyncOptions) -> list[StreamSpec]:
    specs = [
        StreamSpec(USERS, users_url(), headers=OMIT_CREDENTIALS),
        StreamSpec(GROUPS, f"/api/v1/groups?expand=stats&limit={GROUPS_LIMIT}"),
        StreamSpec(APPS, apps_url(options)),
        StreamSpec(ROLE_ASSIGNEES, f"/api/v1/iam/assignees/users?limit={ASSIGNEES_LIMIT}"),
    ]
    if options.sync_custom_roles:
        specs.append(StreamSpec(CUSTOM_ROLES, "/api/v1/iam/roles"))
        specs.append(StreamSpec(RESOURCE_SETS, "/api/v1/iam/resource-sets"))
    if options.sync_secrets:
        specs.append(StreamSpec(API_TOKENS, "/api/v1/api-tokens"))
    return specs


def static_resources(options: SyncOptions) -> PageResult:
    """The standard admin roles and their entitlements (no API call lists them)."""
    out = PageResult()
    for role_type in m.STANDARD_ROLES:
        res = m.role_resource(role_type)
        out.resources.append(res)
        out.entitlements.append(m.role_entitlement(res))
    return out


# ---------------------------------------------------------------------------------------------- pages

def _items(body: Any, *keys: str) -> list[Any]:
    """The list in a page body: a bare array, or under one of `keys` for the IAM endpoints."""
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for key in keys:
            value = body.get(key)
            if isinstance(value, list):
                return value
        if not keys or not any(k in body for k in keys):
            raise m.BadObject(f"page body has none of {', '.join(keys) or 'a list'}: keys {sorted(body)[:8]}")
        return []
    raise m.BadObject(f"page body must be a JSON array or object, not {type(body).__name__}")


def _body_next(body: Any) -> str | None:
    if isinstance(body, Mapping):
        links = body.get("_links")
        nxt = links.get("next") if isinstance(links, Mapping) else None
        href = nxt.get("href") if isinstance(nxt, Mapping) else None
        if isinstance(href, str) and href:
            return href
    return None


def _each(out: PageResult, what: str, items: list[Any], fn: Callable[[Any], None]) -> None:
    """Map every item; one malformed object becomes a warning instead of failing the whole page."""
    for item in items:
        try:
            fn(item)
        except m.BadObject as exc:
            out.warnings.append(f"{what}: skipped a malformed object ({exc})")


def _users(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    items = _items(body)
    # Only the first page can tell: a later page may be empty when the user count is a multiple of
    # the page size. The engine should pass the spec with url = the page's URL (a cursor has after=).
    if not items and "after=" not in spec.url:
        # An org always has at least one user (its admin). An OAuth service app without an admin role
        # gets 200 and an empty list instead of 403 (baton-okta reports that as a successful sync).
        out.warnings.append(
            "Okta returned no users: the org always has at least its admin, so these credentials probably "
            "lack an admin role that can view users (e.g. an OAuth service app without an admin role); "
            "users and their grants are missing from this run")

    def one(user: Any) -> None:
        res = m.user_resource(user)
        if options.user_allowed(user.get("profile")):
            out.resources.append(res)
    _each(out, "users", items, one)
    return out


def _groups(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()

    def one(group: Any) -> None:
        res = m.group_resource(group)
        if options.skip_app_groups and res.profile.get("type") == "APP_GROUP":
            return
        out.resources.append(res)
        out.entitlements.append(m.group_entitlement(res))
        stats = m.group_stats(group)
        gid = _q(res.id)
        if stats.get("usersCount") != 0:  # missing count -> fetch; 0 -> nothing to fetch
            out.children.append(StreamSpec(
                GROUP_MEMBERS, f"/api/v1/groups/{gid}/users?limit={GROUP_USERS_LIMIT}", res.key,
                headers=OMIT_CREDENTIALS))
        # expand=stats says whether the group holds an admin role ("hasAdminPrivlege", sic); only those
        # groups' role lists are fetched (all of them when Okta does not say).
        if stats.get("hasAdminPrivlege", stats.get("hasAdminPrivilege")) is not False:
            out.children.append(StreamSpec(GROUP_ROLES, f"/api/v1/groups/{gid}/roles", res.key))
    _each(out, "groups", _items(body), one)
    return out


def _apps(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()

    def one(app: Any) -> None:
        res = m.app_resource(app)
        # The list is filtered server-side; this also holds if a page carries an inactive app anyway.
        if not options.sync_inactive_apps and app.get("status") != "ACTIVE":
            return
        out.resources.append(res)
        out.entitlements.append(m.app_entitlement(res))
        aid = _q(res.id)
        out.children.append(StreamSpec(APP_USERS, f"/api/v1/apps/{aid}/users?limit={APP_USERS_LIMIT}", res.key))
        out.children.append(StreamSpec(APP_GROUPS, f"/api/v1/apps/{aid}/groups?limit={APP_GROUPS_LIMIT}", res.key))
    _each(out, "apps", _items(body), one)
    return out


def _group_members(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    ent = f"group:{spec.parent_id}:member"

    def one(user: Any) -> None:
        uid = m.object_id(user, "group member")
        # Members come as full user objects, so the e-mail filter costs nothing here.
        if options.user_allowed(user.get("profile")):
            out.grants.append(Grant(ent, "user", uid))
    _each(out, "group members", _items(body), one)
    return out


def _app_users(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    # The app-user profile is the app's, not the Okta profile, so the e-mail filter is not applied here;
    # the store drops grants whose user is not a resource of the run.
    out = PageResult()
    ent = f"app:{spec.parent_id}:access"

    def one(app_user: Any) -> None:
        uid = m.object_id(app_user, "app user")
        ann: dict[str, Any] = {"scope": app_user.get("scope") or "USER"}
        if app_user.get("status"):
            ann["status"] = app_user["status"]
        out.grants.append(Grant(ent, "user", uid, annotations=ann))
    _each(out, "app users", _items(body), one)
    return out


def _app_groups(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    ent = f"app:{spec.parent_id}:access"

    def one(assignment: Any) -> None:
        gid = m.object_id(assignment, "app group")
        ann = {"priority": assignment["priority"]} if "priority" in assignment else {}
        out.grants.append(Grant(ent, "group", gid, annotations=ann))
    _each(out, "app groups", _items(body), one)
    return out


def _role_grants(out: PageResult, assignments: list[Any], principal_type: str, principal_id: str,
                 assignment_type: str, options: SyncOptions) -> None:
    """Role assignments of one user or group -> grants on role / custom-role entitlements."""

    def one(a: Any) -> None:
        if not isinstance(a, Mapping):
            raise m.BadObject(f"role assignment: expected an object, got {type(a).__name__}")
        if a.get("status") == "INACTIVE":
            return
        # A user's list also holds roles inherited from groups (assignmentType GROUP): those are the
        # group's grants, expanded by the store, not the user's own.
        if (a.get("assignmentType") or assignment_type) != assignment_type:
            return
        role_type = a.get("type")
        if not isinstance(role_type, str) or not role_type:
            raise m.BadObject(f"role assignment {a.get('id')!r} has no type")
        ann = {k: a[k] for k in ("id", "resource-set") if isinstance(a.get(k), str)}
        if role_type == "CUSTOM" or role_type in m.IAM_BASED_ROLES:
            if not options.sync_custom_roles:
                return
            role_id = a.get("role") if isinstance(a.get("role"), str) and a.get("role") else role_type
            out.grants.append(Grant(f"custom-role:{role_id}:assigned", principal_type, principal_id,
                                      annotations=ann))
            return
        if role_type not in m.STANDARD_ROLES:
            # A standard role type baton-okta's list lacks: create it rather than drop the grant.
            res = m.role_resource(role_type, a.get("label") if isinstance(a.get("label"), str) else None)
            out.resources.append(res)
            out.entitlements.append(m.role_entitlement(res))
        out.grants.append(Grant(f"role:{role_type}:assigned", principal_type, principal_id, annotations=ann))
    _each(out, f"roles of {principal_type} {principal_id}", assignments, one)


def _group_roles(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    _role_grants(out, _items(body), "group", spec.parent_id, "GROUP", options)
    return out


def _user_roles(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    _role_grants(out, _items(body), "user", spec.parent_id, "USER", options)
    return out


def _role_assignees(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    # One list of the users holding any admin role, then one role list per such user: a few hundred
    # requests at most, instead of baton-okta's pass over this list for every role.
    out = PageResult(next_url=_body_next(body))

    def one(entry: Any) -> None:
        uid = m.object_id(entry, "role assignee")
        out.children.append(StreamSpec(USER_ROLES, f"/api/v1/users/{_q(uid)}/roles", f"user:{uid}"))
    _each(out, "role assignees", _items(body, "value"), one)
    return out


def _custom_roles(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult(next_url=_body_next(body))

    def one(role: Any) -> None:
        res = m.custom_role_resource(role)
        out.resources.append(res)
        out.entitlements.append(m.role_entitlement(res))
    _each(out, "custom roles", _items(body, "roles"), one)
    return out


def _resource_sets(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult(next_url=_body_next(body))

    def one(rs: Any) -> None:
        res = m.resource_set_resource(rs)
        out.resources.append(res)
        out.entitlements.append(m.resource_set_entitlement(res))
        meta = (("label", res.display_name), ("description", rs.get("description") or ""))
        out.children.append(StreamSpec(BINDINGS, f"/api/v1/iam/resource-sets/{_q(res.id)}/bindings", res.key,
                                       meta=meta))
    _each(out, "resource sets", _items(body, "resource-sets", "resourceSets"), one)
    return out


def _bindings(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult(next_url=_body_next(body))
    rsid = spec.parent_id
    label = spec.meta_value("label", rsid)
    description = spec.meta_value("description") or None

    def one(role: Any) -> None:
        role_id = m.object_id(role, "resource set binding")
        res = m.binding_resource(rsid, role_id, label, description)
        out.resources.append(res)
        out.entitlements.append(m.binding_entitlement(res))
        out.grants.append(Grant(f"resource-set:{rsid}:bindings", "custom-role", role_id))
        out.children.append(StreamSpec(
            BINDING_MEMBERS, f"/api/v1/iam/resource-sets/{_q(rsid)}/bindings/{_q(role_id)}/members", res.key))
    _each(out, f"bindings of resource set {rsid}", _items(body, "roles"), one)
    return out


def _binding_members(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult(next_url=_body_next(body))
    ent = f"resourceset-binding:{spec.parent_id}:member"

    def one(member: Any) -> None:
        principal = m.principal_from_member(member)
        if principal is None:
            raise m.BadObject(f"binding member {member.get('id') if isinstance(member, Mapping) else member!r} "
                              "names neither a user nor a group")
        ann = {"member_id": member["id"]} if isinstance(member.get("id"), str) else {}
        out.grants.append(Grant(ent, principal[0], principal[1], annotations=ann))
    _each(out, f"members of binding {spec.parent_id}", _items(body, "members", "value"), one)
    return out


def _api_tokens(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    _each(out, "api tokens", _items(body), lambda t: out.resources.append(m.api_token_resource(t)))
    return out


HANDLERS: dict[str, Callable[[StreamSpec, Any, SyncOptions], PageResult]] = {
    USERS: _users, GROUPS: _groups, APPS: _apps, GROUP_MEMBERS: _group_members, GROUP_ROLES: _group_roles,
    APP_USERS: _app_users, APP_GROUPS: _app_groups, ROLE_ASSIGNEES: _role_assignees, USER_ROLES: _user_roles,
    CUSTOM_ROLES: _custom_roles, RESOURCE_SETS: _resource_sets, BINDINGS: _bindings,
    BINDING_MEMBERS: _binding_members, API_TOKENS: _api_tokens,
}


class UnknownStream(ValueError):
    """A StreamSpec whose kind this connector does not know."""


def handle_page(spec: StreamSpec, body: list | dict, options: SyncOptions) -> PageResult:
    """One page's JSON body -> rows and child streams. Pure.

    Pass the stream's spec; with `url` set to the URL of this page (dataclasses.replace) when it is not
    the first, so first-page-only checks (the empty user list) stay exact."""
    handler = HANDLERS.get(spec.kind)
    if handler is None:
        raise UnknownStream(f"unknown stream kind {spec.kind!r}; known: {', '.join(HANDLERS)}")
    return handler(spec, body, options)


def handle_error(spec: StreamSpec, error: Exception, options: SyncOptions) -> PageResult:
    """What a failed page means for the run: a warning and nothing else (skip), or re-raise.

    - 403 (E0000006, or an OAuth token without the scope): the phase is skipped with a warning naming
      the permission. The text does not name the object, so N groups denied the same way make one
      distinct warning.
    - 404 on a child list: its parent was deleted while the sync ran; skipped.
    - anything else (rate limits, 5xx, 401, a 404 on a top-level list) is re-raised for the engine.
    """
    from worker.okta.errors import OktaNotFound, OktaPermissionDenied

    what, permission = PHASES.get(spec.kind, (spec.kind, "unknown permission"))
    if isinstance(error, OktaPermissionDenied):
        code = getattr(error, "error_code", None) or "403"
        summary = getattr(error, "error_summary", None) or ""
        return PageResult(warnings=[
            f"skipped {what}: the credentials may not read them (Okta {code}{': ' + summary if summary else ''}); "
            f"needs {permission}"])
    if isinstance(error, OktaNotFound) and spec.parent:
        return PageResult(warnings=[f"skipped {what} of {spec.parent}: it was deleted during the sync (404)"])
    raise error
