"""Apps: the App object and its assignments (direct users with scope USER, groups whose members get
scope GROUP), the org's apps and every assignment change, the app JSON shapes, `filter` on
/api/v1/apps, and the routes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from oktasim import errors
from oktasim.areas.logs import app_target, app_user_target, group_target, user_target
from oktasim.areas.users import user_dict
from oktasim.errors import OktaError
from oktasim.orderedset import OrderedIds
from oktasim.query import EQUALS, Dialect, Holds
from oktasim.routing import (
    NO_CONTENT,
    Request,
    Response,
    compile_expression,
    json_list,
    json_response,
    page,
    route,
)
from oktasim.scopes import APPS_MANAGE, APPS_READ
from oktasim.timestamps import now_iso


class AppGroup:
    __slots__ = ("priority", "last_updated", "profile")

    def __init__(self, priority: int, last_updated: str, profile: dict | None = None):
        self.priority = priority
        self.last_updated = last_updated
        self.profile = profile or {}


class AppUser:
    """A direct (scope USER) assignment; group-granted access is counted in App.via."""
    __slots__ = ("user_name", "created", "profile")

    def __init__(self, user_name: str, created: str, profile: dict | None = None):
        self.user_name = user_name
        self.created = created
        self.profile = profile or {}


class App:
    __slots__ = ("id", "name", "label", "status", "sign_on_mode", "application_type", "created", "last_updated",
                 "users", "direct", "via", "groups", "group_assign", "cache")

    def __init__(self, id: str, name: str, label: str, status: str, sign_on_mode: str, created: str,
                 application_type: str | None = None):
        self.id = id
        self.name = name
        self.label = label
        self.status = status
        self.sign_on_mode = sign_on_mode
        # An OIDC app's settings.oauthClient.application_type ("web", "service", ...); None for the
        # other sign-on modes and the built-in apps.
        self.application_type = application_type
        self.created = created
        self.last_updated = created
        self.users = OrderedIds()                 # everyone with access (direct or via a group)
        self.direct: dict[str, AppUser] = {}
        self.via: dict[str, int] = {}             # user id -> number of assigned groups holding them
        self.groups = OrderedIds()
        self.group_assign: dict[str, AppGroup] = {}
        self.cache: bytes | None = None


class AppState:
    """The org's apps and their assignments (a mixin of Org)."""

    def _init_apps(self) -> None:
        self.apps: dict[str, App] = {}
        self.app_order = OrderedIds()

    def app(self, aid: str) -> App:
        a = self.apps.get(aid)
        if a is None:
            raise errors.not_found_typed(aid, "AppInstance")
        return a

    def add_app(self, a: App) -> None:
        self.apps[a.id] = a
        self.app_order.add(a.id)

    def service_client(self, client_id: str) -> App:
        """The OAuth service app whose client id is `client_id` (the app id: the simulator never sets
        its own client_id). Only service apps hold admin roles (okta-api.md §2.2)."""
        a = self.apps.get(client_id)
        if a is None or a.sign_on_mode != "OPENID_CONNECT" or a.application_type is None:
            raise errors.not_found_typed(client_id, "OAuth2Client")
        if a.application_type != "service":
            raise errors.invalid("Api validation failed: clientId",
                                 [f"clientId: Admin roles can only be assigned to service apps, not to a "
                                  f"{a.application_type} app"])
        return a

    # Group-granted access is counted per user: a user stays assigned (scope GROUP) while any
    # assigned group holds them, and a direct assignment outlives them all.
    def _grant_via(self, a: App, uid: str) -> None:
        n = a.via.get(uid, 0)
        a.via[uid] = n + 1
        if n == 0 and uid not in a.direct:
            a.users.add(uid)
            self._log_app_user(a, uid, "add")

    def _revoke_via(self, a: App, uid: str) -> None:
        n = a.via.get(uid, 0)
        if n <= 1:
            a.via.pop(uid, None)
            if uid not in a.direct:
                a.users.remove(uid)
                self._log_app_user(a, uid, "remove")
        else:
            a.via[uid] = n - 1

    def _log_app_user(self, a: App, uid: str, change: str) -> None:
        """application.user_membership.add|remove|update: a user gains, loses or changes access."""
        if not self.log.recording:   # generating the org: skip building targets for nothing
            return
        u = self.users[uid]
        message = {"add": "Add user to application membership", "remove": "Remove user's application membership",
                   "update": "Update user's application membership"}[change]
        self.emit(f"application.user_membership.{change}", message,
                  [app_user_target(a, u), app_target(a), user_target(u)])

    def _log_app_group(self, a: App, gid: str, change: str) -> None:
        message = {"add": "Assign application to group", "remove": "Remove application assignment from group",
                   "update": "Update application group assignment"}[change]
        self.emit(f"group.application_assignment.{change}", message, [app_target(a), group_target(self.groups[gid])])

    def set_app_status(self, aid: str, op: str) -> None:
        """POST /apps/{id}/lifecycle/activate|deactivate (a no-op when already there)."""
        a = self.app(aid)
        new = "ACTIVE" if op == "activate" else "INACTIVE"
        if a.status == new:
            return
        a.status = new
        a.last_updated = now_iso()
        a.cache = None
        self.emit(f"application.lifecycle.{op}", f"{op.capitalize()} application", [app_target(a)])

    def assign_app_user(self, aid: str, body: dict) -> str:
        a = self.app(aid)
        uid = body.get("id")
        if not isinstance(uid, str) or not uid:
            raise errors.invalid("Api validation failed: id", ["id: The field cannot be left blank"])
        scope = body.get("scope", "USER")
        if scope not in ("USER", None):
            raise errors.invalid("Api validation failed: scope",
                                 ["scope: Only USER scope can be assigned directly"])
        u = self.user(uid)
        if u.status == "DEPROVISIONED":
            raise OktaError(403, "E0000117", "Cannot assign apps or update app profiles for an inactive user.")
        creds = errors.optional_object(body, "credentials")
        profile = errors.optional_object(body, "profile")
        name = creds.get("userName") or u.profile["login"]
        if not isinstance(name, str):
            raise errors.invalid("Api validation failed: credentials.userName")
        prev = a.direct.get(u.id)
        a.direct[u.id] = AppUser(name, prev.created if prev else now_iso(), profile)
        self._log_app_user(a, u.id, "add" if a.users.add(u.id) else "update")
        return u.id

    def unassign_app_user(self, aid: str, uid: str) -> None:
        a = self.app(aid)
        u = self.user(uid)
        if u.id not in a.users:
            raise errors.not_found_typed(uid, "AppUser")
        if a.via.get(u.id):
            raise OktaError(403, "E0000046", "Deactivate application for user forbidden.", [
                "The application cannot be unassigned from the user while their group memberships "
                "grant them access"])
        a.direct.pop(u.id, None)
        a.users.remove(u.id)
        self._log_app_user(a, u.id, "remove")

    def assign_app_group(self, aid: str, gid: str, body: dict) -> AppGroup:
        a = self.app(aid)
        g = self.group(gid)
        priority = body.get("priority")
        if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool) or priority < 0):
            raise errors.invalid("Api validation failed: priority")
        profile = errors.optional_object(body, "profile")
        existing = a.group_assign.get(g.id)
        if existing is not None:
            if priority is not None:
                existing.priority = priority
            existing.profile = profile or existing.profile
            existing.last_updated = now_iso()
            self._log_app_group(a, g.id, "update")
            return existing
        if priority is None:
            priority = max((x.priority for x in a.group_assign.values()), default=-1) + 1
        ag = AppGroup(priority, now_iso(), profile)
        a.group_assign[g.id] = ag
        a.groups.add(g.id)
        g.apps.add(a.id)
        self._log_app_group(a, g.id, "add")
        for uid in self.group_members(g):
            self._grant_via(a, uid)
        return ag

    def unassign_app_group(self, aid: str, gid: str) -> None:
        a = self.app(aid)
        g = self.group(gid)
        if a.group_assign.pop(g.id, None) is None:
            raise errors.not_found_typed(gid, "ApplicationGroupAssignment")
        a.groups.remove(g.id)
        g.apps.remove(a.id)
        self._log_app_group(a, g.id, "remove")
        for uid in list(self.group_members(g)):
            self._revoke_via(a, uid)


# ---------------------------------------------------------------- JSON shapes (okta-api.md §5)

_SAML = {"SAML_2_0", "SAML_1_1", "WS_FEDERATION"}


def app_dict(org, a: App, base: str) -> dict:
    href = f"{base}/api/v1/apps/{a.id}"
    creds: dict = {"userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"}}
    if a.sign_on_mode in _SAML or a.sign_on_mode == "OPENID_CONNECT":
        creds["signing"] = {"kid": f"sim-{a.id[-8:]}"}
    settings: dict = {"app": {}, "notifications": {"vpn": {"network": {"connection": "DISABLED"},
                                                           "message": None, "helpUrl": None}},
                      "manualProvisioning": False, "implicitAssignment": False}
    if a.application_type is not None:   # an OIDC client: its client id is the app id
        service = a.application_type == "service"
        creds["oauthClient"] = {"autoKeyRotation": True, "client_id": a.id,
                                "token_endpoint_auth_method": "private_key_jwt" if service else "client_secret_basic"}
        settings["oauthClient"] = {
            "application_type": a.application_type,
            "grant_types": ["client_credentials"] if service else ["authorization_code"],
            "response_types": ["token"] if service else ["code"],
            "redirect_uris": [] if service else [f"{base}/{a.name}/callback"],
            "consent_method": "REQUIRED", "issuer_mode": "DYNAMIC"}
    elif a.sign_on_mode in ("BROWSER_PLUGIN", "AUTO_LOGIN", "BASIC_AUTH", "SECURE_PASSWORD_STORE"):
        creds["scheme"] = "EDIT_USERNAME_AND_PASSWORD"
        creds["revealPassword"] = False
    links: dict = {
        "uploadLogo": {"href": f"{href}/logo", "hints": {"allow": ["POST"]}},
        "appLinks": [{"name": a.name, "href": f"{base}/home/{a.name}/{a.id}/1", "type": "text/html"}],
        "policies": {"href": f"{href}/policies", "hints": {"allow": ["PUT"]}},
        "groups": {"href": f"{href}/groups"},
        "logo": [{"name": "medium", "href": f"https://ok12static.oktacdn.com/assets/img/logos/{a.name}.png",
                  "type": "image/png"}],
        "accessPolicy": {"href": f"{base}/api/v1/policies/rst{a.id[3:]}"},
        "users": {"href": f"{href}/users"},
    }
    if a.status == "ACTIVE":
        links["deactivate"] = {"href": f"{href}/lifecycle/deactivate"}
    else:
        links["activate"] = {"href": f"{href}/lifecycle/activate"}
    if a.sign_on_mode in _SAML:
        links["metadata"] = {"href": f"{href}/sso/saml/metadata", "type": "application/xml"}
    return {
        "id": a.id, "orn": f"orn:okta:idp:{org.id}:apps:{a.name}:{a.id}", "name": a.name, "label": a.label,
        "status": a.status, "lastUpdated": a.last_updated, "created": a.created,
        "accessibility": {"selfService": False, "errorRedirectUrl": None, "loginRedirectUrl": None},
        "visibility": {"autoSubmitToolbar": False, "hide": {"iOS": False, "web": False},
                       "appLinks": {a.name: True}},
        "features": [], "signOnMode": a.sign_on_mode, "credentials": creds, "universalLogout": None,
        "settings": settings,
        "_links": links,
    }


def app_bytes(org, a: App, base: str) -> bytes:
    if a.cache is None:
        a.cache = orjson.dumps(app_dict(org, a, base))
    return a.cache


def app_user_dict(org, a: App, uid: str, base: str) -> dict:
    u = org.users[uid]
    direct = a.direct.get(uid)
    links = {"app": {"href": f"{base}/api/v1/apps/{a.id}"}, "user": {"href": f"{base}/api/v1/users/{uid}"}}
    created = direct.created if direct else a.created
    if direct is None:   # scope GROUP: link the first assigned group that holds the user
        for gid in a.groups:
            g = org.groups.get(gid)
            if g is not None and org.is_member(g, uid):
                links["group"] = {"href": f"{base}/api/v1/groups/{gid}", "name": g.profile.get("name")}
                created = a.group_assign[gid].last_updated
                break
    status = "ACTIVE" if u.status not in ("DEPROVISIONED", "SUSPENDED") else "INACTIVE"
    return {
        "id": uid, "externalId": None, "created": created, "lastUpdated": created,
        "scope": "USER" if direct else "GROUP", "status": status, "statusChanged": created,
        "passwordChanged": None, "syncState": "DISABLED",
        "credentials": {"userName": direct.user_name if direct else u.profile.get("login")},
        "profile": direct.profile if direct else {}, "_links": links,
    }


def app_group_dict(a: App, gid: str, ag: AppGroup, base: str) -> dict:
    return {
        "id": gid, "lastUpdated": ag.last_updated, "priority": ag.priority, "profile": ag.profile,
        "_links": {"app": {"href": f"{base}/api/v1/apps/{a.id}"},
                   "self": {"href": f"{base}/api/v1/apps/{a.id}/groups/{gid}"},
                   "group": {"href": f"{base}/api/v1/groups/{gid}"}},
    }


# ---------------------------------------------------------------- filter (okta-api.md §3.5)

APP_FILTER = Dialect(
    getters={"id": lambda a: a.id, "status": lambda a: a.status, "name": lambda a: a.name,
             "user.id": lambda a: Holds(a.users), "group.id": lambda a: Holds(a.groups)},
    ops={"id": EQUALS, "status": EQUALS, "name": EQUALS, "user.id": EQUALS, "group.id": EQUALS},
    allow_or=False,
)


# ---------------------------------------------------------------- handlers

_APP_EXPANDS = re.compile(r"^user/[^/]+$")


def list_apps(req: Request) -> Response:
    org = req.org
    flt, q, expand = req.arg("filter"), req.arg("q"), req.arg("expand")
    if expand and not (_APP_EXPANDS.match(expand) and flt and "user.id" in flt):
        raise errors.invalid("Api validation failed: RequestParams")
    preds: list[Callable[[Any], bool]] = []
    if flt:
        preds.append(compile_expression(flt, APP_FILTER, errors.bad_filter))
    if q:
        ql = q.lower()
        preds.append(lambda a: a.name.lower().startswith(ql) or a.label.lower().startswith(ql))
    keep = (lambda aid: all(p(org.apps[aid]) for p in preds)) if preds else None
    ids, limit, nxt = page(req, org.app_order, 20, 200, keep)
    return json_list(req, [app_bytes(org, org.apps[a], req.base) for a in ids], limit, nxt)


def get_app(req: Request, aid: str) -> Response:
    return json_response(app_dict(req.org, req.org.app(aid), req.base))


def app_users(req: Request, aid: str) -> Response:
    org = req.org
    a = org.app(aid)
    q = req.arg("q")
    keep = None
    if q:
        ql = q.lower()

        def keep(uid: str) -> bool:
            p = org.users[uid].profile
            d = a.direct.get(uid)
            names = [p.get("firstName"), p.get("lastName"), p.get("email"),
                     d.user_name if d else p.get("login")]
            return any(isinstance(n, str) and n.lower().startswith(ql) for n in names)
    expand = req.arg("expand")
    if expand not in (None, "", "user"):
        raise errors.invalid("Api validation failed: RequestParams", [f"expand: '{expand}' is not supported"])
    ids, limit, nxt = page(req, a.users, 50, 500, keep)
    expand_user = expand == "user"
    items = []
    for uid in ids:
        d = app_user_dict(org, a, uid, req.base)
        if expand_user:
            d["_embedded"] = {"user": user_dict(org, org.users[uid], req.base, full=False)}
        items.append(orjson.dumps(d))
    return json_list(req, items, limit, nxt)


def get_app_user(req: Request, aid: str, uid: str) -> Response:
    org = req.org
    a = org.app(aid)
    u = org.user(uid)
    if u.id not in a.users:
        raise errors.not_found_typed(uid, "AppUser")
    return json_response(app_user_dict(org, a, u.id, req.base))


def assign_app_user(req: Request, aid: str) -> Response:
    org = req.org
    uid = org.assign_app_user(aid, req.json())
    return json_response(app_user_dict(org, org.apps[aid], uid, req.base))


def unassign_app_user(req: Request, aid: str, uid: str) -> Response:
    req.org.unassign_app_user(aid, uid)
    return NO_CONTENT


def app_groups(req: Request, aid: str) -> Response:
    org = req.org
    a = org.app(aid)
    q = req.arg("q")
    keep = None
    if q:
        ql = q.lower()
        keep = lambda gid: org.groups[gid].profile.get("name", "").lower().startswith(ql)  # noqa: E731
    ids, limit, nxt = page(req, a.groups, 20, 200, keep)
    return json_list(req, [orjson.dumps(app_group_dict(a, g, a.group_assign[g], req.base)) for g in ids],
                     limit, nxt)


def get_app_group(req: Request, aid: str, gid: str) -> Response:
    a = req.org.app(aid)
    ag = a.group_assign.get(gid)
    if ag is None:
        raise errors.not_found_typed(gid, "ApplicationGroupAssignment")
    return json_response(app_group_dict(a, gid, ag, req.base))


def assign_app_group(req: Request, aid: str, gid: str) -> Response:
    org = req.org
    ag = org.assign_app_group(aid, gid, req.json())
    return json_response(app_group_dict(org.apps[aid], gid, ag, req.base))


def unassign_app_group(req: Request, aid: str, gid: str) -> Response:
    req.org.unassign_app_group(aid, gid)
    return NO_CONTENT


def app_lifecycle(req: Request, aid: str, op: str) -> Response:
    req.org.set_app_status(aid, op)
    return json_response({}, items=0)


ROUTES = [
    route("GET", "/api/v1/apps", list_apps, APPS_READ),
    route("GET", "/api/v1/apps/{aid}", get_app, APPS_READ),
    route("GET", "/api/v1/apps/{aid}/users", app_users, APPS_READ),
    route("POST", "/api/v1/apps/{aid}/users", assign_app_user, APPS_MANAGE, "app.assignment"),
    route("GET", "/api/v1/apps/{aid}/users/{uid}", get_app_user, APPS_READ),
    route("DELETE", "/api/v1/apps/{aid}/users/{uid}", unassign_app_user, APPS_MANAGE, "app.assignment"),
    route("GET", "/api/v1/apps/{aid}/groups", app_groups, APPS_READ),
    route("GET", "/api/v1/apps/{aid}/groups/{gid}", get_app_group, APPS_READ),
    route("PUT", "/api/v1/apps/{aid}/groups/{gid}", assign_app_group, APPS_MANAGE, "app.assignment"),
    route("DELETE", "/api/v1/apps/{aid}/groups/{gid}", unassign_app_group, APPS_MANAGE, "app.assignment"),
    route("POST", "/api/v1/apps/{aid}/lifecycle/{op}", app_lifecycle, APPS_MANAGE, "app.lifecycle",
          choices={"op": frozenset({"activate", "deactivate"})}),
]


def snapshot(org) -> list[dict]:
    """`apps` of /__sim/state."""
    return [{"id": a.id, "label": a.label, "status": a.status, "signOnMode": a.sign_on_mode,
             "application_type": a.application_type,
             "users": [{"id": uid, "scope": "USER" if uid in a.direct else "GROUP"} for uid in a.users],
             "groups": list(a.groups)} for a in (org.apps[i] for i in org.app_order)]
