"""Okta's JSON shapes (okta-api.md §5, checked against okta-recordings/).

Links are rendered against `base` (the URL the simulator listens on). Collection forms are cached
as bytes on the objects; the server swaps the base when a client addressed another host name."""

from __future__ import annotations

import orjson

from oktasim.model import (
    IAM_ROLES,
    STANDARD_ROLES,
    ApiToken,
    App,
    AppGroup,
    Binding,
    BindingMember,
    CustomRole,
    Group,
    ResourceSet,
    RoleAssignment,
    User,
)
from oktasim.org import Org

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

# user status -> lifecycle links a single user carries (collection items carry only self)
_LIFECYCLE = {
    "STAGED": ("activate",),
    "PROVISIONED": ("activate", "reactivate", "deactivate"),
    "ACTIVE": ("suspend", "deactivate", "resetPassword", "expirePassword", "resetFactors"),
    "SUSPENDED": ("unsuspend", "deactivate"),
    "DEPROVISIONED": ("activate",),
    "LOCKED_OUT": ("unlock", "deactivate", "resetPassword", "expirePassword"),
    "PASSWORD_EXPIRED": ("suspend", "deactivate", "resetPassword", "expirePassword"),
    "RECOVERY": ("suspend", "deactivate", "resetPassword", "expirePassword"),
}
_LIFECYCLE_PATH = {"resetPassword": "reset_password", "expirePassword": "expire_password",
                   "resetFactors": "reset_factors"}
_CREDENTIAL_LINKS = {"resetPassword", "expirePassword", "changePassword", "changeRecoveryQuestion",
                     "forgotPassword"}


def user_dict(org: Org, u: User, base: str, *, full: bool, credentials: bool = True,
              credential_links: bool = True) -> dict:
    d = {
        "id": u.id, "status": u.status, "created": u.created, "activated": u.activated,
        "statusChanged": u.status_changed, "lastLogin": u.last_login, "lastUpdated": u.last_updated,
        "passwordChanged": u.password_changed, "type": {"id": org.user_type_id}, "profile": u.profile,
    }
    if credentials:
        creds: dict = {}
        if u.has_password:
            creds["password"] = {}
            if u.id[-4] in "ABCDEFGHIJKL":   # about a fifth of users set a recovery question
                creds["recovery_question"] = {"question": "What is the food you least liked as a child?"}
        creds["emails"] = [{"value": u.profile.get("email"), "status": "VERIFIED", "type": "PRIMARY"}]
        creds["provider"] = {"type": "OKTA", "name": "OKTA"}
        d["credentials"] = creds
    href = f"{base}/api/v1/users/{u.id}"
    if not full:
        d["_links"] = {"self": {"href": href}}
        return d
    links: dict = {"schema": {"href": f"{base}/api/v1/meta/schemas/user/{org.schema_id}"}}
    for name in _LIFECYCLE.get(u.status, ()):
        if name in _CREDENTIAL_LINKS and not credential_links:
            continue
        links[name] = {"href": f"{href}/lifecycle/{_LIFECYCLE_PATH.get(name, name)}", "method": "POST"}
    if u.status == "ACTIVE" and u.has_password and credential_links:
        links["changePassword"] = {"href": f"{href}/credentials/change_password", "method": "POST"}
        links["changeRecoveryQuestion"] = {"href": f"{href}/credentials/change_recovery_question",
                                           "method": "POST"}
    links["self"] = {"href": href}
    links["type"] = {"href": f"{base}/api/v1/meta/types/user/{org.user_type_id}"}
    d["_links"] = links
    return d


def user_list_bytes(org: Org, u: User, base: str, credentials: bool) -> bytes:
    if credentials:
        if u.cache is None:
            u.cache = orjson.dumps(user_dict(org, u, base, full=False))
        return u.cache
    if u.cache_nc is None:
        u.cache_nc = orjson.dumps(user_dict(org, u, base, full=False, credentials=False))
    return u.cache_nc


def group_dict(org: Org, g: Group, base: str, stats: bool = False) -> dict:
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


def group_bytes(org: Org, g: Group, base: str) -> bytes:
    if g.cache is None:
        g.cache = orjson.dumps(group_dict(org, g, base))
    return g.cache


_SAML = {"SAML_2_0", "SAML_1_1", "WS_FEDERATION"}


def app_dict(org: Org, a: App, base: str) -> dict:
    href = f"{base}/api/v1/apps/{a.id}"
    creds: dict = {"userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"}}
    if a.sign_on_mode in _SAML or a.sign_on_mode == "OPENID_CONNECT":
        creds["signing"] = {"kid": f"sim-{a.id[-8:]}"}
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
        "settings": {"app": {}, "notifications": {"vpn": {"network": {"connection": "DISABLED"},
                                                          "message": None, "helpUrl": None}},
                     "manualProvisioning": False, "implicitAssignment": False},
        "_links": links,
    }


def app_bytes(org: Org, a: App, base: str) -> bytes:
    if a.cache is None:
        a.cache = orjson.dumps(app_dict(org, a, base))
    return a.cache


def app_user_dict(org: Org, a: App, uid: str, base: str) -> dict:
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


def _assignee(ptype: str, pid: str, base: str) -> str:
    return f"{base}/api/v1/{'users' if ptype == 'user' else 'groups'}/{pid}"


def standard_role_dict(ra: RoleAssignment, assignment_type: str, base: str) -> dict:
    return {
        "id": ra.id, "label": STANDARD_ROLES[ra.type], "type": ra.type, "status": ra.status,
        "created": ra.created, "lastUpdated": ra.last_updated, "assignmentType": assignment_type,
        "_links": {"assignee": {"href": _assignee(ra.principal_type, ra.principal_id, base)}},
    }


def custom_role_assignment_dict(org: Org, rs: ResourceSet, b: Binding, m: BindingMember,
                                assignment_type: str, base: str) -> dict:
    role = org.custom_roles[b.role_id]
    rs_href = f"{base}/api/v1/iam/resource-sets/{rs.id}"
    return {
        "id": m.id, "label": role.label, "type": role.iam_type or "CUSTOM", "status": "ACTIVE",
        "created": m.created, "lastUpdated": m.created, "assignmentType": assignment_type,
        "resource-set": rs.id, "role": role.id,
        "_links": {
            "assignee": {"href": _assignee(m.principal_type, m.principal_id, base)},
            "resource-set": {"href": rs_href},
            "role": {"href": f"{base}/api/v1/iam/roles/{role.id}"},
            "permissions": {"href": f"{base}/api/v1/iam/roles/{role.id}/permissions"},
            "member": {"href": f"{rs_href}/bindings/{role.id}/members/{m.id}"},
        },
    }


def role_entry_dict(org: Org, entry: tuple[str, object, str], base: str) -> dict:
    assignment_type, obj, _ = entry
    if isinstance(obj, RoleAssignment):
        return standard_role_dict(obj, assignment_type, base)
    rs, b, m = obj  # type: ignore[misc]
    return custom_role_assignment_dict(org, rs, b, m, assignment_type, base)


def custom_role_dict(cr: CustomRole, base: str, single: bool = False) -> dict:
    href = f"{base}/api/v1/iam/roles/{cr.id}"
    d = {"id": cr.id, "label": cr.label, "description": cr.description, "created": cr.created,
         "lastUpdated": cr.last_updated,
         "_links": {"permissions": {"href": f"{href}/permissions"}, "self": {"href": href}}}
    if single:
        d = {"id": cr.id, "label": cr.label, "isCloneable": cr.iam_type is None,
             **{k: v for k, v in d.items() if k not in ("id", "label")}}
    return d


def resource_set_dict(rs: ResourceSet, base: str) -> dict:
    href = f"{base}/api/v1/iam/resource-sets/{rs.id}"
    return {"id": rs.id, "label": rs.label, "description": rs.description, "created": rs.created,
            "lastUpdated": rs.last_updated,
            "_links": {"self": {"href": href}, "resources": {"href": f"{href}/resources"},
                       "bindings": {"href": f"{href}/bindings"}}}


def binding_dict(rs: ResourceSet, role_id: str, base: str) -> dict:
    href = f"{base}/api/v1/iam/resource-sets/{rs.id}/bindings/{role_id}"
    return {"id": role_id, "_links": {"self": {"href": href}, "members": {"href": f"{href}/members"}}}


def binding_member_dict(rs: ResourceSet, b: Binding, m: BindingMember, base: str) -> dict:
    href = f"{base}/api/v1/iam/resource-sets/{rs.id}/bindings/{b.role_id}/members/{m.id}"
    return {"id": m.id, "created": m.created, "lastUpdated": m.created,
            "_links": {"self": {"href": href}, "member": {"href": _assignee(m.principal_type,
                                                                             m.principal_id, base)}}}


def api_token_dict(t: ApiToken, base: str) -> dict:
    return {
        "id": t.id, "name": t.name, "userId": t.user_id, "clientName": "Okta API",
        "tokenWindow": t.token_window, "network": {"connection": "ANYWHERE"}, "expiresAt": t.expires_at,
        "created": t.created, "lastUpdated": t.last_updated,
        "_links": {"self": {"href": f"{base}/api/v1/api-tokens/{t.id}", "hints": {"allow": ["GET", "DELETE"]}},
                   "user": {"href": f"{base}/api/v1/users/{t.user_id}", "hints": {"allow": ["GET"]}}},
    }


def org_dict(org: Org, base: str) -> dict:
    return {
        "id": org.id, "companyName": "oktasim", "website": "https://example.com", "status": "ACTIVE",
        "subdomain": org.name, "address1": None, "address2": None, "city": None, "state": None,
        "phoneNumber": None, "postalCode": None, "country": None, "supportPhoneNumber": None,
        "endUserSupportHelpURL": None, "created": org.created, "lastUpdated": org.created,
        "expiresAt": None,
        "_links": {"preferences": {"href": f"{base}/api/v1/org/preferences"},
                   "uploadLogo": {"href": f"{base}/api/v1/org/logo", "hints": {"allow": ["POST"]}},
                   "oktaCommunication": {"href": f"{base}/api/v1/org/privacy/oktaCommunication"},
                   "logo": {"href": "https://ok12static.oktacdn.com/fs/bco/1/oktasim"}, "oktaSupport": {"href": f"{base}/api/v1/org/privacy/oktaSupport"},
                   "contacts": {"href": f"{base}/api/v1/org/contacts"}},
    }


def iam_type_label(t: str) -> str:
    return IAM_ROLES.get(t, t)
