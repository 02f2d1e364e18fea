"""Okta JSON objects -> Resource / Entitlement / Grant, one function per object kind.

Pure functions. Field choices follow baton-okta (reference/baton-okta.md §1, §2); the resource profile
carries what baton puts in traits (status, emails, login, employee ids, ...), documented in
docs/connector.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from worker.model import Entitlement, Resource

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
# IAM-based standard roles: Okta returns them through the custom-role endpoint and in the custom-role shape.
IAM_BASED_ROLES = frozenset({"WORKFLOWS_ADMIN", "ACCESS_CERTIFICATIONS_ADMIN", "ACCESS_REQUESTS_ADMIN"})

_ENABLED = frozenset({"ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT"})
_DISABLED = frozenset({"STAGED", "SUSPENDED", "DEPROVISIONED"})
_EMPLOYEE_ID_KEYS = frozenset({
    "employeenumber", "employeeid", "employeeidnumber", "employee_number", "employee_id", "employee_idnumber",
})
_NO_NHI_MODES = frozenset({"BOOKMARK", "BROWSER_PLUGIN", "AUTO_LOGIN", "BASIC_AUTH", "SECURE_PASSWORD_STORE"})
_GROUP_SOURCE = {"BUILT_IN": "built_in", "APP_GROUP": "app_imported", "OKTA_GROUP": "native"}


class BadObject(ValueError):
    """An Okta object without the fields every object of its kind has (e.g. no id)."""


def object_id(obj: Any, kind: str) -> str:
    if not isinstance(obj, Mapping):
        raise BadObject(f"{kind}: expected a JSON object, got {type(obj).__name__}")
    value = obj.get("id")
    if not isinstance(value, str) or not value or ":" in value or any(c.isspace() for c in value):
        raise BadObject(f"{kind}: missing or invalid id {value!r}")
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def user_status(okta_status: Any) -> str:
    if okta_status in _ENABLED:
        return "enabled"
    if okta_status in _DISABLED:
        return "disabled"
    return "unspecified"


def user_display_name(profile: Mapping[str, Any]) -> str:
    name = profile.get("displayName")
    if isinstance(name, str) and name:
        return name
    first = profile.get("firstName") or "unknown"
    last = profile.get("lastName") or "unknown"
    return f"{first} {last}"


def user_resource(user: Mapping[str, Any]) -> Resource:
    uid = object_id(user, "user")
    profile = user.get("profile") if isinstance(user.get("profile"), Mapping) else {}
    emails = []
    if _str(profile.get("email")):
        emails.append({"address": profile["email"], "primary": True})
    if _str(profile.get("secondEmail")):
        emails.append({"address": profile["secondEmail"], "primary": False})
    login = _str(profile.get("login"))
    aliases = [login.split("@")[0]] if login and login.count("@") == 1 else []
    employee_ids = [str(v) for k, v in profile.items()
                    if k.lower() in _EMPLOYEE_ID_KEYS and v not in (None, "")]
    data = {
        "status": user_status(user.get("status")),
        "okta_status": user.get("status"),
        "login": login,
        "login_aliases": aliases,
        "emails": emails,
        "employee_ids": employee_ids,
        "last_login": user.get("lastLogin"),
        "created": user.get("created"),
        "okta_profile": dict(profile),
    }
    return Resource("user", uid, user_display_name(profile), data)


def group_resource(group: Mapping[str, Any]) -> Resource:
    gid = object_id(group, "group")
    profile = group.get("profile") if isinstance(group.get("profile"), Mapping) else {}
    gtype = group.get("type")
    data: dict[str, Any] = {
        "name": profile.get("name"),
        "description": profile.get("description"),
        "type": gtype,
        "group_source_type": _GROUP_SOURCE.get(gtype, ""),
        "immutable": gtype == "BUILT_IN",
    }
    stats = group_stats(group)
    if "usersCount" in stats:
        data["users_count"] = stats["usersCount"]
    if "appsCount" in stats:
        data["apps_count"] = stats["appsCount"]
    return Resource("group", gid, _str(profile.get("name")) or gid, data)


def group_stats(group: Mapping[str, Any]) -> dict[str, Any]:
    embedded = group.get("_embedded")
    stats = embedded.get("stats") if isinstance(embedded, Mapping) else None
    return dict(stats) if isinstance(stats, Mapping) else {}


def group_entitlement(res: Resource) -> Entitlement:
    return Entitlement("group", res.id, "member", f"{res.display_name} Group Member")


def app_resource(app: Mapping[str, Any]) -> Resource:
    aid = object_id(app, "app")
    mode = app.get("signOnMode") or ""
    data: dict[str, Any] = {
        "label": app.get("label"),
        "name": app.get("name"),
        "status": app.get("status"),
        "signOnMode": app.get("signOnMode"),
    }
    if mode not in _NO_NHI_MODES:
        data["non_human_identity"] = f"okta.app.{mode.lower()}" if mode else "okta.app"
    return Resource("app", aid, _str(app.get("label")) or aid, data)


def app_entitlement(res: Resource) -> Entitlement:
    return Entitlement("app", res.id, "access", f"{res.display_name} App Access")


def role_resource(role_type: str, label: str | None = None) -> Resource:
    label = label or STANDARD_ROLES.get(role_type) or role_type
    return Resource("role", role_type, label, {"id": "", "label": label, "type": role_type})


def role_entitlement(res: Resource) -> Entitlement:
    return Entitlement(res.type, res.id, "assigned", f"{res.display_name} Role Member")


def custom_role_resource(role: Mapping[str, Any]) -> Resource:
    rid = object_id(role, "custom role")
    label = _str(role.get("label")) or rid
    data = {"id": rid, "label": label, "type": role.get("type"), "description": role.get("description")}
    return Resource("custom-role", rid, label, data)


def resource_set_resource(rs: Mapping[str, Any]) -> Resource:
    rsid = object_id(rs, "resource set")
    label = _str(rs.get("label")) or rsid
    return Resource("resource-set", rsid, label, {"id": rsid, "label": label, "description": rs.get("description")})


def resource_set_entitlement(res: Resource) -> Entitlement:
    return Entitlement("resource-set", res.id, "bindings", f"{res.display_name} Resource Set Binding")


def binding_resource(rsid: str, role_id: str, rs_label: str, rs_description: str | None) -> Resource:
    bid = f"{rsid}:{role_id}"
    data = {"id": bid, "label": rs_label, "description": rs_description, "resource_set": rsid, "role": role_id}
    return Resource("resourceset-binding", bid, rs_label, data, parent=f"resource-set:{rsid}")


def binding_entitlement(res: Resource) -> Entitlement:
    return Entitlement("resourceset-binding", res.id, "member", f"{res.display_name} Resource Set Binding Member")


# Fields of an API token that are metadata; anything else Okta might add is not copied, so a value
# can never slip into the store.
def api_token_resource(token: Mapping[str, Any]) -> Resource:
    tid = object_id(token, "api token")
    user_id = _str(token.get("userId"))
    data = {
        "name": token.get("name"),
        "user_id": user_id,
        "client_name": token.get("clientName"),
        "created": token.get("created"),
        "expires_at": token.get("expiresAt"),
        "last_updated": token.get("lastUpdated"),
        "token_window": token.get("tokenWindow"),
    }
    return Resource("api-token", tid, _str(token.get("name")) or tid, data,
                    parent=f"user:{user_id}" if user_id else None)


_PRINCIPAL_HREF = re.compile(r"/api/v1/(users|groups)/([A-Za-z0-9_-]+)/?$")


def principal_from_member(member: Mapping[str, Any]) -> tuple[str, str] | None:
    """A resource-set binding member -> ("user"|"group", id), from the member's links.

    Okta names the member by the URL of the user or group (`_links.self.href`, in some answers
    `_links.member.href` or `href`). Unlike baton-okta, a member that names neither gives None (the caller
    warns) instead of reusing the previous member's principal."""
    links = member.get("_links") if isinstance(member, Mapping) else None
    hrefs: list[Any] = []
    if isinstance(links, Mapping):
        for key in ("self", "member", "user", "group"):
            link = links.get(key)
            if isinstance(link, Mapping):
                hrefs.append(link.get("href"))
    if isinstance(member, Mapping):
        hrefs.append(member.get("href"))
    for href in hrefs:
        if isinstance(href, str):
            m = _PRINCIPAL_HREF.search(href.split("?")[0])
            if m:
                return ("user" if m.group(1) == "users" else "group"), m.group(2)
    return None
