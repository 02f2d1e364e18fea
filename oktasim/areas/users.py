"""Users: the User object, the org's users and logins, create/update/lifecycle/delete with Okta's
rules and errors, the user JSON shapes, `search`/`filter` on /api/v1/users, and the routes."""

from __future__ import annotations

import orjson

from oktasim import errors
from oktasim.areas.logs import user_target
from oktasim.errors import OktaError
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
from oktasim.scopes import USERS_MANAGE, USERS_READ
from oktasim.timestamps import now_iso

USER_STATUSES = ("ACTIVE", "STAGED", "PROVISIONED", "SUSPENDED", "DEPROVISIONED", "LOCKED_OUT",
                 "PASSWORD_EXPIRED", "RECOVERY")


class User:
    __slots__ = ("id", "status", "created", "activated", "status_changed", "last_login",
                 "last_updated", "password_changed", "profile", "has_password", "provider", "emails_sent",
                 "cache", "cache_nc")

    def __init__(self, id: str, status: str, created: str, activated: str | None,
                 status_changed: str | None, last_login: str | None, last_updated: str,
                 password_changed: str | None, profile: dict, has_password: bool = True):
        self.id = id
        self.status = status
        self.created = created
        self.activated = activated
        self.status_changed = status_changed
        self.last_login = last_login
        self.last_updated = last_updated
        self.password_changed = password_changed
        self.profile = profile
        self.has_password = has_password
        self.provider = "OKTA"                # credentials.provider.type: OKTA or FEDERATION
        self.emails_sent: list[str] = []      # e-mails Okta sent the user ("activation"), for tests
        self.cache: bytes | None = None      # list form, with credentials
        self.cache_nc: bytes | None = None   # list form, okta-response=omitCredentials

    def touch(self) -> None:
        self.last_updated = now_iso()
        self.cache = self.cache_nc = None


# lifecycle operation -> (System Log event type, displayMessage)
LIFECYCLE_EVENTS = {
    "activate": ("user.lifecycle.activate", "Activate Okta user"),
    "reactivate": ("user.lifecycle.reactivate", "Reactivate Okta user"),
    "deactivate": ("user.lifecycle.deactivate", "Deactivate Okta user"),
    "suspend": ("user.lifecycle.suspend", "Suspend Okta user"),
    "unsuspend": ("user.lifecycle.unsuspend", "Unsuspend Okta user"),
    "unlock": ("user.account.unlock", "Unlock user account"),
}


def _required_profile_causes(profile: dict) -> list[str]:
    return [f"{f}: The field cannot be left blank" for f in ("firstName", "lastName", "email", "login")
            if not isinstance(profile.get(f), str) or not profile.get(f).strip()]


# Okta's default password policy (okta-api.md): 8+ characters, a lowercase and an uppercase letter,
# a digit, and no part of the login.
_PASSWORD_RULES = ("Password requirements were not met. Password requirements: at least 8 characters, "
                   "a lowercase letter, an uppercase letter, a number, no parts of your username.")


def _password(creds: dict, profile: dict) -> str | None:
    """The password value the body sets, checked against the policy; None when it sets none."""
    pw = creds.get("password")
    if not isinstance(pw, dict) or pw.get("value") in (None, ""):
        return None
    value = pw["value"]
    login_part = str(profile.get("login", "")).split("@")[0].lower()
    if not (isinstance(value, str) and len(value) >= 8 and any(c.islower() for c in value)
            and any(c.isupper() for c in value) and any(c.isdigit() for c in value)
            and not (len(login_part) >= 3 and login_part in value.lower())):
        raise errors.invalid("Api validation failed: password", [f"password: {_PASSWORD_RULES}"])
    return value


def _federated(creds: dict, provider: bool) -> bool:
    """provider=true with credentials.provider.type FEDERATION: the user signs in elsewhere."""
    p = creds.get("provider")
    kind = p.get("type") if isinstance(p, dict) else None
    if kind is not None and kind not in ("OKTA", "FEDERATION", "ACTIVE_DIRECTORY", "LDAP", "SOCIAL", "IMPORT"):
        raise errors.invalid("Api validation failed: provider", [f"provider: '{kind}' is not a valid type"])
    return provider and kind == "FEDERATION"


def _login_taken() -> OktaError:
    return errors.invalid("Api validation failed: login", [
        "login: An object with this field already exists in the current organization"])


class UserState:
    """The org's users (a mixin of Org; deleting a user reaches into groups, apps, roles, tokens)."""

    def _init_users(self) -> None:
        self.users: dict[str, User] = {}
        self.user_order = OrderedIds()
        self.logins: dict[str, str] = {}          # lower(login) -> user id

    def user(self, id_or_login: str) -> User:
        u = self.users.get(id_or_login)
        if u is None:
            uid = self.logins.get(id_or_login.lower())
            if uid is not None:
                u = self.users[uid]
        if u is None:
            raise errors.not_found_typed(id_or_login, "User")
        return u

    def add_user(self, u: User) -> None:
        self.users[u.id] = u
        self.user_order.add(u.id)
        self.logins[u.profile["login"].lower()] = u.id
        everyone = self.groups.get(self.everyone_id)
        if everyone is not None:
            for aid in everyone.apps:
                self._grant_via(self.apps[aid], u.id)

    def create_user(self, body: dict, activate: bool, provider: bool = False,
                    next_login: str | None = None) -> User:
        """POST /users: STAGED without activate; with it ACTIVE (a password, or a federated provider),
        PASSWORD_EXPIRED (nextLogin=changePassword) or PROVISIONED (no password: Okta e-mails the
        activation link)."""
        profile = body.get("profile")
        if not isinstance(profile, dict):
            raise errors.invalid("Api validation failed: profile",
                                 ["profile: The field cannot be left blank"])
        causes = _required_profile_causes(profile)
        if causes:
            raise errors.invalid("Api validation failed: " + causes[0].split(":")[0], causes)
        login = profile["login"]
        if login.lower() in self.logins:
            raise _login_taken()
        if "@" not in profile["email"]:
            raise errors.invalid("Api validation failed: email", ["email: Does not match required pattern"])
        creds = errors.optional_object(body, "credentials")
        password = _password(creds, profile)
        federated = _federated(creds, provider)
        if password is not None and federated:
            raise errors.invalid("Api validation failed: password",
                                 ["password: A password cannot be set for a user with an external provider"])
        if next_login is not None:
            if next_login != "changePassword":
                raise errors.invalid("Api validation failed: nextLogin",
                                     [f"nextLogin: '{next_login}' is not a valid value (changePassword)"])
            if not activate or password is None:
                raise errors.invalid("Api validation failed: nextLogin",
                                     ["nextLogin: changePassword needs activate=true and a password"])
        has_password = password is not None
        group_ids = body.get("groupIds")
        group_ids = [] if group_ids is None else group_ids
        if not isinstance(group_ids, list):
            raise errors.invalid("Api validation failed: groupIds")
        groups = [self.group(str(gid)) for gid in group_ids]
        now = now_iso()
        if not activate:
            status = "STAGED"
        elif next_login is not None:
            status = "PASSWORD_EXPIRED"
        else:
            status = "ACTIVE" if has_password or federated else "PROVISIONED"
        full = {"firstName": profile["firstName"], "lastName": profile["lastName"],
                "mobilePhone": profile.get("mobilePhone"), "secondEmail": profile.get("secondEmail"),
                "login": login, "email": profile["email"]}
        full.update({k: v for k, v in profile.items() if k not in full})
        u = User(self.ids.new("00u"), status, now, now if activate else None,
                 now if activate else None, None, now, now if has_password else None, full, has_password)
        if federated:
            u.provider = "FEDERATION"
        self.emit("user.lifecycle.create", "Create Okta user", [user_target(u)])
        if activate:
            self.emit("user.lifecycle.activate", "Activate Okta user", [user_target(u)])
            if status == "PROVISIONED":
                u.emails_sent.append("activation")
        if next_login is not None:
            self.emit("user.account.expire_password", "Expire password for Okta user", [user_target(u)])
        self.add_user(u)
        for g in groups:
            if g.type == "OKTA_GROUP":
                self.add_member(g.id, u.id)
        return u

    def update_user(self, uid: str, body: dict, replace: bool) -> User:
        """POST /users/{id} merges the given profile attributes; PUT replaces the profile."""
        u = self.user(uid)
        profile = body.get("profile")
        if not isinstance(profile, dict):
            raise errors.invalid("Api validation failed: profile", ["profile: The field cannot be left blank"])
        new = dict(profile) if replace else {**u.profile, **profile}
        causes = _required_profile_causes(new)
        if causes:
            raise errors.invalid("Api validation failed: " + causes[0].split(":")[0], causes)
        old_login = u.profile["login"].lower()
        if new["login"].lower() != old_login and new["login"].lower() in self.logins:
            raise _login_taken()
        for k in ("mobilePhone", "secondEmail"):
            new.setdefault(k, None)
        del self.logins[old_login]
        self.logins[new["login"].lower()] = u.id
        u.profile = new
        u.touch()
        self.emit("user.account.update_profile", "Update user profile for Okta", [user_target(u)])
        return u

    def lifecycle(self, uid: str, op: str, send_email: bool = True) -> dict:
        u = self.user(uid)
        s = u.status
        result: dict = {}
        if op == "suspend":
            if s != "ACTIVE":
                raise errors.invalid("Api validation failed: suspendUser",
                                     ["Cannot suspend a user that is not active"])
            new = "SUSPENDED"
        elif op == "unsuspend":
            if s != "SUSPENDED":
                raise errors.invalid("Api validation failed: unsuspendUser",
                                     ["Cannot unsuspend a user that is not suspended"])
            new = "ACTIVE"
        elif op == "activate":
            if s not in ("STAGED", "PROVISIONED", "DEPROVISIONED"):
                raise OktaError(403, "E0000016", "Activation failed because the user is already active")
            new = "ACTIVE" if u.has_password or u.provider == "FEDERATION" else "PROVISIONED"
            u.activated = now_iso()
            if send_email:
                u.emails_sent.append("activation")
            result = {"activationUrl": f"/welcome/{u.id}", "activationToken": u.id[-10:]}
        elif op == "reactivate":
            if s != "PROVISIONED":
                raise OktaError(403, "E0000038", "This operation is not allowed in the user's current status.")
            new = "PROVISIONED"
            result = {"activationUrl": f"/welcome/{u.id}", "activationToken": u.id[-10:]}
        elif op == "deactivate":
            if s == "DEPROVISIONED":
                raise errors.invalid("Api validation failed: deactivateUser",
                                     ["Cannot deactivate a user that is already deactivated"])
            new = "DEPROVISIONED"
        elif op == "unlock":
            if s != "LOCKED_OUT":
                raise OktaError(403, "E0000032", "Unlock is not allowed for this user.")
            new = "ACTIVE"
        else:
            raise errors.path_not_found()
        if new != s:
            u.status = new
            u.status_changed = now_iso()
        u.touch()
        self.emit(*LIFECYCLE_EVENTS[op], [user_target(u)])
        return result

    def delete_user(self, uid: str) -> None:
        """Okta deletes only DEPROVISIONED users; a first DELETE on any other user deactivates it."""
        u = self.user(uid)
        if u.status != "DEPROVISIONED":
            self.lifecycle(u.id, "deactivate")
            return
        self.emit("user.lifecycle.delete.initiated", "Delete Okta user initiated", [user_target(u)])
        for g in self.groups.values():
            if g.members is not None and u.id in g.members:
                g.members.remove(u.id)
                g.last_membership_updated = now_iso()
                g.cache = None
        for a in self.apps.values():
            if u.id in a.users:
                a.direct.pop(u.id, None)
                a.via.pop(u.id, None)
                a.users.remove(u.id)
        self.roles.pop(("user", u.id), None)
        for rs in self.resource_sets.values():
            for b in rs.bindings.values():
                for m in list(b.members.values()):
                    if m.principal_type == "user" and m.principal_id == u.id:
                        self._remove_binding_member(rs, b, m.id)
        self.admins.remove(u.id)
        for t in [t for t in self.api_tokens.values() if t.user_id == u.id]:
            self.revoke_api_token(t.id)
        self.logins.pop(u.profile["login"].lower(), None)
        del self.users[u.id]
        self.user_order.remove(u.id)
        self.emit("user.lifecycle.delete.completed", "Delete Okta user completed", [user_target(u)])


# ---------------------------------------------------------------- JSON shapes (okta-api.md §5)

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


def user_dict(org, u: User, base: str, *, full: bool, credentials: bool = True,
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
        creds["provider"] = {"type": u.provider, "name": u.provider}
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


def user_list_bytes(org, u: User, base: str, credentials: bool) -> bytes:
    """The collection form, serialized once per user (and again only after a change)."""
    if credentials:
        if u.cache is None:
            u.cache = orjson.dumps(user_dict(org, u, base, full=False))
        return u.cache
    if u.cache_nc is None:
        u.cache_nc = orjson.dumps(user_dict(org, u, base, full=False, credentials=False))
    return u.cache_nc


# ---------------------------------------------------------------- search and filter (okta-api.md §3.3)

USER_SEARCH = Dialect(
    getters={"id": lambda u: u.id, "status": lambda u: u.status, "created": lambda u: u.created,
             "activated": lambda u: u.activated, "statusChanged": lambda u: u.status_changed,
             "lastUpdated": lambda u: u.last_updated, "lastLogin": lambda u: u.last_login,
             "passwordChanged": lambda u: u.password_changed, "type.id": lambda u: None},
    ops={k: COMPARE | {"sw"} for k in ("id", "status", "created", "activated", "statusChanged", "lastUpdated",
                                    "lastLogin", "passwordChanged", "type.id")}
    | {f"profile.{k}": COMPARE | {"sw", "co"} for k in ("firstName", "lastName", "email", "login")},
    prefix_getters={"profile.": profile_attr},
    prefix_ops=COMPARE | {"sw"},
)

USER_FILTER = Dialect(
    getters={"id": lambda u: u.id, "status": lambda u: u.status, "lastUpdated": lambda u: u.last_updated,
             "profile.login": lambda u: u.profile.get("login"), "profile.email": lambda u: u.profile.get("email"),
             "profile.firstName": lambda u: u.profile.get("firstName"),
             "profile.lastName": lambda u: u.profile.get("lastName")},
    ops={"id": EQUALS, "status": EQUALS, "lastUpdated": DATE_COMPARE, "profile.login": EQUALS, "profile.email": EQUALS,
         "profile.firstName": EQUALS, "profile.lastName": EQUALS},
)


# ---------------------------------------------------------------- handlers

def list_users(req: Request) -> Response:
    org = req.org
    search, flt, q = req.arg("search"), req.arg("filter"), req.arg("q")
    creds, _ = omit_credentials(req)
    if search and flt:
        raise errors.search_and_filter()
    if q is not None and not search and not flt:
        limit = limit_arg(req, 10, 200)
        ql = q.lower()
        out: list[bytes] = []
        for uid in org.user_order:
            u = org.users[uid]
            if u.status == "DEPROVISIONED":
                continue
            p = u.profile
            if any(isinstance(p.get(k), str) and p[k].lower().startswith(ql)
                   for k in ("firstName", "lastName", "email")):
                out.append(user_list_bytes(org, u, req.base, creds))
                if len(out) >= limit:
                    break
        return json_list(req, out, limit, None, links=False)
    if search:
        pred = compile_expression(search, USER_SEARCH, errors.bad_search)
        keep = lambda uid: pred(org.users[uid])  # noqa: E731
    elif flt:
        pred = compile_expression(flt, USER_FILTER, errors.bad_filter)
        keep = lambda uid: pred(org.users[uid])  # noqa: E731
    else:
        keep = lambda uid: org.users[uid].status != "DEPROVISIONED"  # noqa: E731
    ids, limit, nxt = page(req, org.user_order, 200, 200, keep)
    users = org.users
    return json_list(req, [user_list_bytes(org, users[i], req.base, creds) for i in ids], limit, nxt)


def get_user(req: Request, uid: str) -> Response:
    u = req.org.user(uid)
    creds, cred_links = omit_credentials(req)
    return json_response(user_dict(req.org, u, req.base, full=True, credentials=creds,
                                   credential_links=cred_links))


def create_user(req: Request) -> Response:
    body = req.json()
    u = req.org.create_user(body, req.flag("activate", True), req.flag("provider", False), req.arg("nextLogin"))
    return json_response(user_dict(req.org, u, req.base, full=True))


def update_user(req: Request, uid: str) -> Response:
    u = req.org.update_user(uid, req.json(), replace=req.method == "PUT")
    return json_response(user_dict(req.org, u, req.base, full=True))


def lifecycle(req: Request, uid: str, op: str) -> Response:
    send_email = req.flag("sendEmail", True)
    result = req.org.lifecycle(uid, op, send_email)
    if op in ("activate", "reactivate") and send_email:
        result = {}
    if result:
        result = {k: (req.base + v if k == "activationUrl" else v) for k, v in result.items()}
    return json_response(result, items=0)


def delete_user(req: Request, uid: str) -> Response:
    req.org.delete_user(uid)
    return NO_CONTENT


LIFECYCLE_OPS = frozenset({"activate", "deactivate", "suspend", "unsuspend", "unlock", "reactivate"})

ROUTES = [
    route("GET", "/api/v1/users", list_users, USERS_READ),
    route("POST", "/api/v1/users", create_user, USERS_MANAGE, "user.create"),
    route("GET", "/api/v1/users/{uid}", get_user, USERS_READ),
    route("POST", "/api/v1/users/{uid}", update_user, USERS_MANAGE, "user.lifecycle"),
    route("PUT", "/api/v1/users/{uid}", update_user, USERS_MANAGE, "user.lifecycle"),
    route("DELETE", "/api/v1/users/{uid}", delete_user, USERS_MANAGE, "user.delete"),
    route("POST", "/api/v1/users/{uid}/lifecycle/{op}", lifecycle, USERS_MANAGE, "user.lifecycle",
          choices={"op": LIFECYCLE_OPS}),
]


def snapshot(org) -> list[dict]:
    """`users` of /__sim/state."""
    return [{"id": u.id, "status": u.status, "profile": u.profile, "has_password": u.has_password,
             "provider": u.provider, "emails_sent": list(u.emails_sent)}
            for u in (org.users[i] for i in org.user_order)]
