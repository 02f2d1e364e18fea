"""Groups: the Group object (OKTA_GROUP, APP_GROUP imported from an app, the BUILT_IN Everyone),
the org's groups and memberships, create/update/delete and membership changes with Okta's rules,
the group JSON shapes, `search`/`filter` on /api/v1/groups, and the routes (including a user's
groups, /api/v1/users/{id}/groups)."""

from __future__ import annotations

import orjson

from oktasim import errors
from oktasim.areas.apps import app_bytes, app_dict
from oktasim.areas.logs import group_target, user_target
from oktasim.areas.users import User, user_list_bytes
from oktasim.orderedset import OrderedIds
from oktasim.query import COMPARE, DATE_COMPARE, EQUALS, Dialect, profile_attr
from oktasim.routing import (
    NO_CONTENT,
    Request,
    Response,
    compile_expression,
    json_list,
    json_response,
    limit_arg,
    omit_credentials,
    page,
    route,
)
from oktasim.scopes import GROUPS_MANAGE, GROUPS_READ, USERS_READ
from oktasim.timestamps import now_iso


class Group:
    __slots__ = ("id", "type", "created", "last_updated", "last_membership_updated", "profile",
                 "source", "members", "apps", "cache")

    def __init__(self, id: str, type: str, created: str, profile: dict, source: str | None = None,
                 members: OrderedIds | None = None):
        self.id = id
        self.type = type            # OKTA_GROUP | APP_GROUP | BUILT_IN
        self.created = created
        self.last_updated = created
        self.last_membership_updated = created
        self.profile = profile
        self.source = source        # APP_GROUP: the app it was imported from
        self.members = members      # None for Everyone: its members are all users
        self.apps = OrderedIds()    # apps this group is assigned to
        self.cache: bytes | None = None

    def touch(self) -> None:
        self.last_updated = now_iso()
        self.cache = None


def _group_profile(body: dict) -> dict:
    """The profile of a create/replace body: `name` required, `description` defaulting to null."""
    profile = body.get("profile")
    if not isinstance(profile, dict):
        raise errors.invalid("Api validation failed: profile",
                             ["profile: The field cannot be left blank"])
    name = profile.get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid("Api validation failed: name", ["name: The field cannot be left blank"])
    return {"name": name, "description": profile.get("description"),
            **{k: v for k, v in profile.items() if k not in ("name", "description")}}


class GroupState:
    """The org's groups and memberships (a mixin of Org; membership changes reach app access,
    deleting a group its app and role assignments)."""

    def _init_groups(self) -> None:
        self.groups: dict[str, Group] = {}
        self.group_order = OrderedIds()
        self.everyone_id = ""

    def group(self, gid: str) -> Group:
        g = self.groups.get(gid)
        if g is None:
            raise errors.not_found_typed(gid, "UserGroup")
        return g

    def group_members(self, g: Group) -> OrderedIds:
        return self.user_order if g.members is None else g.members

    def is_member(self, g: Group, uid: str) -> bool:
        return uid in self.users if g.members is None else uid in g.members

    def user_groups(self, uid: str) -> list[Group]:
        return [g for g in self.groups.values() if self.is_member(g, uid)]

    def add_group(self, g: Group) -> None:
        self.groups[g.id] = g
        self.group_order.add(g.id)
        if g.type == "BUILT_IN":
            self.everyone_id = g.id

    def create_group(self, body: dict) -> Group:
        profile = _group_profile(body)
        self._check_group_name(profile["name"], None)
        g = Group(self.ids.new("00g"), "OKTA_GROUP", now_iso(), profile, members=OrderedIds())
        self.add_group(g)
        self.emit("group.lifecycle.create", "Create Okta group", [group_target(g)])
        return g

    def _check_group_name(self, name: str, own_id: str | None) -> None:
        low = name.lower()
        for g in self.groups.values():
            if g.type == "OKTA_GROUP" and g.id != own_id and g.profile.get("name", "").lower() == low:
                raise errors.invalid("Api validation failed: name", [
                    "name: An object with this field already exists in the current organization"])

    def update_group(self, gid: str, body: dict) -> Group:
        g = self.group(gid)
        if g.type != "OKTA_GROUP":
            raise errors.forbidden()
        profile = _group_profile(body)
        self._check_group_name(profile["name"], g.id)
        g.profile = profile
        g.touch()
        # Okta has no group.lifecycle.update: a rename or description change is a profile update
        self.emit("group.profile.update", "Update group profile", [group_target(g)])
        return g

    def delete_group(self, gid: str) -> None:
        g = self.group(gid)
        if g.type == "BUILT_IN":
            raise errors.forbidden()
        for aid in list(g.apps):
            self.unassign_app_group(aid, g.id)
        for ra in list(self.roles.get(("group", g.id), {}).values()):
            self.unassign_role("group", g.id, ra.id)
        self.drop_group_target(g.id)
        for rs in self.resource_sets.values():
            for b in rs.bindings.values():
                for m in list(b.members.values()):
                    if m.principal_type == "group" and m.principal_id == g.id:
                        self._remove_binding_member(rs, b, m.id)
        self.role_groups.discard(g.id)
        del self.groups[g.id]
        self.group_order.remove(g.id)
        self.emit("group.lifecycle.delete", "Delete Okta group", [group_target(g)])

    def _membership_check(self, gid: str, uid: str) -> tuple[Group, User]:
        g = self.group(gid)
        u = self.user(uid)
        if g.type != "OKTA_GROUP":
            raise errors.forbidden()
        return g, u

    def add_member(self, gid: str, uid: str) -> None:
        g, u = self._membership_check(gid, uid)
        if g.members.add(u.id):
            g.last_membership_updated = now_iso()
            g.cache = None
            self.emit("group.user_membership.add", "Add user to group membership", [user_target(u), group_target(g)])
            for aid in g.apps:
                self._grant_via(self.apps[aid], u.id)
            if g.id in self.role_groups:
                self.log_user_privileges(u.id)

    def remove_member(self, gid: str, uid: str) -> None:
        g, u = self._membership_check(gid, uid)
        if g.members.remove(u.id):
            g.last_membership_updated = now_iso()
            g.cache = None
            self.emit("group.user_membership.remove", "Remove user from group membership",
                      [user_target(u), group_target(g)])
            for aid in g.apps:
                self._revoke_via(self.apps[aid], u.id)
            if g.id in self.role_groups:
                self.log_user_privileges(u.id, had_some=True)


# ---------------------------------------------------------------- JSON shapes (okta-api.md §5)

_GROUP_LOGO = [
    {"name": "medium", "href": "https://ok11static.oktacdn.com/assets/img/logos/groups/okta-medium.png",
     "type": "image/png"},
    {"name": "large", "href": "https://ok11static.oktacdn.com/assets/img/logos/groups/okta-large.png",
     "type": "image/png"},
]
_AD_LOGO = [
    {"name": "medium", "href": "https://ok11static.oktacdn.com/assets/img/logos/groups/ad-medium.png",
     "type": "image/png"},
    {"name": "large", "href": "https://ok11static.oktacdn.com/assets/img/logos/groups/ad-large.png",
     "type": "image/png"},
]


def group_dict(org, g: Group, base: str, stats: bool = False) -> dict:
    href = f"{base}/api/v1/groups/{g.id}"
    links: dict = {"logo": _AD_LOGO if g.type == "APP_GROUP" else _GROUP_LOGO}
    if g.type == "APP_GROUP" and g.source:
        links["source"] = {"href": f"{base}/api/v1/apps/{g.source}"}
    links["users"] = {"href": f"{href}/users"}
    links["apps"] = {"href": f"{href}/apps"}
    d = {
        "id": g.id, "created": g.created, "lastUpdated": g.last_updated,
        "lastMembershipUpdated": g.last_membership_updated,
        "objectClass": ["okta:windows_security_principal"] if g.type == "APP_GROUP" else ["okta:user_group"],
        "type": g.type, "profile": g.profile, "_links": links,
    }
    if stats:
        d["_embedded"] = {"stats": {
            "usersCount": len(org.group_members(g)), "appsCount": len(g.apps),
            "groupPushMappingsCount": 0, "hasAdminPrivilege": g.id in org.role_groups,
            "_links": {"self": {"href": f"{href}/stats"}},
        }}
    return d


def group_bytes(org, g: Group, base: str) -> bytes:
    if g.cache is None:
        g.cache = orjson.dumps(group_dict(org, g, base))
    return g.cache


# ---------------------------------------------------------------- search and filter (okta-api.md §3.4)

GROUP_FILTER = Dialect(
    getters={"id": lambda g: g.id, "type": lambda g: g.type, "lastUpdated": lambda g: g.last_updated,
             "lastMembershipUpdated": lambda g: g.last_membership_updated},
    ops={"id": EQUALS, "type": EQUALS, "lastUpdated": DATE_COMPARE, "lastMembershipUpdated": DATE_COMPARE},
)

GROUP_SEARCH = Dialect(
    getters={"id": lambda g: g.id, "type": lambda g: g.type, "created": lambda g: g.created,
             "lastUpdated": lambda g: g.last_updated,
             "lastMembershipUpdated": lambda g: g.last_membership_updated, "source.id": lambda g: g.source},
    ops={k: COMPARE | {"sw"} for k in ("id", "type", "created", "lastUpdated", "lastMembershipUpdated",
                                       "source.id")}
    | {"profile.name": COMPARE | {"sw", "co"}, "profile.description": COMPARE | {"sw", "co"}},
    prefix_getters={"profile.": profile_attr},
    prefix_ops=COMPARE | {"sw"},
)


# ---------------------------------------------------------------- handlers

def list_groups(req: Request) -> Response:
    org = req.org
    search, flt, q = req.arg("search"), req.arg("filter"), req.arg("q")
    expand = req.arg("expand")
    if expand not in (None, "", "stats", "app", "stats,app", "app,stats"):
        raise errors.invalid("Api validation failed: RequestParams", [f"expand: '{expand}' is not supported"])
    stats = bool(expand) and "stats" in expand
    if search and flt:
        raise errors.search_and_filter()

    with_app = bool(expand) and "app" in expand.split(",")

    def chunk(gid: str) -> bytes:
        g = org.groups[gid]
        if stats or (with_app and g.source):
            d = group_dict(org, g, req.base, stats=stats)
            if with_app and g.source in org.apps:
                d.setdefault("_embedded", {})["app"] = app_dict(org, org.apps[g.source], req.base)
            return orjson.dumps(d)
        return group_bytes(org, g, req.base)

    if q is not None and not search and not flt:
        limit = limit_arg(req, 300, 10000)
        ql = q.lower()
        out = [gid for gid in org.group_order if org.groups[gid].profile.get("name", "").lower().startswith(ql)]
        return json_list(req, [chunk(g) for g in out[:limit]], limit, None, links=False)
    keep = None
    if search:
        pred = compile_expression(search, GROUP_SEARCH, errors.bad_search)
        keep = lambda gid: pred(org.groups[gid])  # noqa: E731
    elif flt:
        pred = compile_expression(flt, GROUP_FILTER, errors.bad_filter)
        keep = lambda gid: pred(org.groups[gid])  # noqa: E731
    ids, limit, nxt = page(req, org.group_order, 10000, 10000, keep)
    return json_list(req, [chunk(g) for g in ids], limit, nxt)


def get_group(req: Request, gid: str) -> Response:
    g = req.org.group(gid)
    stats = "stats" in (req.arg("expand") or "")
    return json_response(group_dict(req.org, g, req.base, stats=stats))


def create_group(req: Request) -> Response:
    g = req.org.create_group(req.json())
    return json_response(group_dict(req.org, g, req.base))


def update_group(req: Request, gid: str) -> Response:
    g = req.org.update_group(gid, req.json())
    return json_response(group_dict(req.org, g, req.base))


def delete_group(req: Request, gid: str) -> Response:
    req.org.delete_group(gid)
    return NO_CONTENT


def group_members(req: Request, gid: str) -> Response:
    org = req.org
    g = org.group(gid)
    creds, _ = omit_credentials(req)
    ids, limit, nxt = page(req, org.group_members(g), 1000, 10000)
    users = org.users
    return json_list(req, [user_list_bytes(org, users[i], req.base, creds) for i in ids], limit, nxt)


def add_member(req: Request, gid: str, uid: str) -> Response:
    req.org.add_member(gid, uid)
    return NO_CONTENT


def remove_member(req: Request, gid: str, uid: str) -> Response:
    req.org.remove_member(gid, uid)
    return NO_CONTENT


def group_apps(req: Request, gid: str) -> Response:
    org = req.org
    g = org.group(gid)
    ids, limit, nxt = page(req, g.apps, 20, 200)
    return json_list(req, [app_bytes(org, org.apps[a], req.base) for a in ids], limit, nxt)


def user_groups(req: Request, uid: str) -> Response:
    org = req.org
    u = org.user(uid)
    ids, limit, nxt = page(req, OrderedIds([g.id for g in org.user_groups(u.id)]), 200, 200)
    return json_list(req, [group_bytes(org, org.groups[g], req.base) for g in ids], limit, nxt)


ROUTES = [
    route("GET", "/api/v1/users/{uid}/groups", user_groups, USERS_READ),
    route("GET", "/api/v1/groups", list_groups, GROUPS_READ),
    route("POST", "/api/v1/groups", create_group, GROUPS_MANAGE, "group.create"),
    route("GET", "/api/v1/groups/{gid}", get_group, GROUPS_READ),
    route("PUT", "/api/v1/groups/{gid}", update_group, GROUPS_MANAGE, "group.update"),
    route("DELETE", "/api/v1/groups/{gid}", delete_group, GROUPS_MANAGE, "group.delete"),
    route("GET", "/api/v1/groups/{gid}/users", group_members, GROUPS_READ),
    route("PUT", "/api/v1/groups/{gid}/users/{uid}", add_member, GROUPS_MANAGE, "group.membership"),
    route("DELETE", "/api/v1/groups/{gid}/users/{uid}", remove_member, GROUPS_MANAGE, "group.membership"),
    route("GET", "/api/v1/groups/{gid}/apps", group_apps, GROUPS_READ),
]


def snapshot(org) -> list[dict]:
    """`groups` of /__sim/state."""
    return [{"id": g.id, "type": g.type, "profile": g.profile, "members": list(org.group_members(g))}
            for g in (org.groups[i] for i in org.group_order)]
