"""The org: objects, indexes, and every change the API can make, with Okta's errors.

One Org lives in the server process; handlers run on one event loop, so no locking is needed."""

from __future__ import annotations

import random
import string

from oktasim import errors
from oktasim.errors import OktaError
from oktasim.model import (
    IAM_ROLES,
    ROLE_TYPE_BY_ID,
    STANDARD_ROLES,
    ApiToken,
    App,
    AppGroup,
    AppUser,
    Binding,
    BindingMember,
    CustomRole,
    Group,
    ResourceSet,
    RoleAssignment,
    User,
    now_iso,
)
from oktasim.orderedset import OrderedIds

_B62 = string.digits + string.ascii_letters


class IdMaker:
    """Okta-like 20-character ids (`00u…`, `00g…`, `0oa…`), deterministic under the seed."""

    def __init__(self, seed: int):
        self._rng = random.Random(f"ids:{seed}")
        self._seen: set[str] = set()

    def new(self, prefix: str) -> str:
        while True:
            n = self._rng.getrandbits(84)
            chars = []
            for _ in range(14):
                n, r = divmod(n, 62)
                chars.append(_B62[r])
            i = (prefix + "".join(chars) + "5d7")[:20]
            if i not in self._seen:
                self._seen.add(i)
                return i


def _obj(body: dict, key: str) -> dict:
    """An optional JSON object field: absent or null -> {}, anything but an object -> E0000001."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.invalid(f"Api validation failed: {key}", [f"{key}: must be a JSON object"])
    return value


class Org:
    def __init__(self, seed: int = 0, name: str = "oktasim"):
        self.ids = IdMaker(seed)
        self.id = self.ids.new("00o")
        self.name = name
        self.created = "2020-01-01T00:00:00.000Z"
        self.user_type_id = self.ids.new("oty")
        self.schema_id = self.ids.new("osc")
        self.users: dict[str, User] = {}
        self.user_order = OrderedIds()
        self.logins: dict[str, str] = {}          # lower(login) -> user id
        self.groups: dict[str, Group] = {}
        self.group_order = OrderedIds()
        self.everyone_id = ""
        self.apps: dict[str, App] = {}
        self.app_order = OrderedIds()
        self.roles: dict[tuple[str, str], dict[str, RoleAssignment]] = {}  # (ptype, pid) -> type -> ra
        self.role_groups: set[str] = set()        # groups holding any role (standard or bound)
        self.admins = OrderedIds()                # users with a direct role (for iam/assignees/users)
        self.custom_roles: dict[str, CustomRole] = {}
        self.custom_role_order = OrderedIds()
        self.resource_sets: dict[str, ResourceSet] = {}
        self.resource_set_order = OrderedIds()
        self.api_tokens: dict[str, ApiToken] = {}
        self.api_token_order = OrderedIds()

    # ---------------------------------------------------------------- lookups
    def user(self, id_or_login: str) -> User:
        u = self.users.get(id_or_login)
        if u is None:
            uid = self.logins.get(id_or_login.lower())
            if uid is not None:
                u = self.users[uid]
        if u is None:
            raise errors.not_found_typed(id_or_login, "User")
        return u

    def group(self, gid: str) -> Group:
        g = self.groups.get(gid)
        if g is None:
            raise errors.not_found_typed(gid, "UserGroup")
        return g

    def app(self, aid: str) -> App:
        a = self.apps.get(aid)
        if a is None:
            raise errors.not_found_typed(aid, "AppInstance")
        return a

    def custom_role(self, id_or_label: str) -> CustomRole:
        return _by_id_or_label(self.custom_roles, id_or_label, "CustomRole")

    def resource_set(self, id_or_label: str) -> ResourceSet:
        return _by_id_or_label(self.resource_sets, id_or_label, "IAMPolicy")

    def api_token(self, tid: str) -> ApiToken:
        t = self.api_tokens.get(tid)
        if t is None:
            raise errors.not_found_typed(tid, "Token")
        return t

    def group_members(self, g: Group) -> OrderedIds:
        return self.user_order if g.members is None else g.members

    def is_member(self, g: Group, uid: str) -> bool:
        return uid in self.users if g.members is None else uid in g.members

    def user_groups(self, uid: str) -> list[Group]:
        return [g for g in self.groups.values() if self.is_member(g, uid)]

    # ---------------------------------------------------------------- building
    def add_user(self, u: User) -> None:
        self.users[u.id] = u
        self.user_order.add(u.id)
        self.logins[u.profile["login"].lower()] = u.id
        everyone = self.groups.get(self.everyone_id)
        if everyone is not None:
            for aid in everyone.apps:
                self._grant_via(self.apps[aid], u.id)

    def add_group(self, g: Group) -> None:
        self.groups[g.id] = g
        self.group_order.add(g.id)
        if g.type == "BUILT_IN":
            self.everyone_id = g.id

    def api_tokens_add(self, t: ApiToken) -> None:
        self.api_tokens[t.id] = t
        self.api_token_order.add(t.id)

    def add_app(self, a: App) -> None:
        self.apps[a.id] = a
        self.app_order.add(a.id)

    # ---------------------------------------------------------------- apps
    def _grant_via(self, a: App, uid: str) -> None:
        n = a.via.get(uid, 0)
        a.via[uid] = n + 1
        if n == 0 and uid not in a.direct:
            a.users.add(uid)

    def _revoke_via(self, a: App, uid: str) -> None:
        n = a.via.get(uid, 0)
        if n <= 1:
            a.via.pop(uid, None)
            if uid not in a.direct:
                a.users.remove(uid)
        else:
            a.via[uid] = n - 1

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
        creds = _obj(body, "credentials")
        profile = _obj(body, "profile")
        name = creds.get("userName") or u.profile["login"]
        if not isinstance(name, str):
            raise errors.invalid("Api validation failed: credentials.userName")
        prev = a.direct.get(u.id)
        a.direct[u.id] = AppUser(name, prev.created if prev else now_iso(), profile)
        a.users.add(u.id)
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

    def assign_app_group(self, aid: str, gid: str, body: dict) -> AppGroup:
        a = self.app(aid)
        g = self.group(gid)
        priority = body.get("priority")
        if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool) or priority < 0):
            raise errors.invalid("Api validation failed: priority")
        profile = _obj(body, "profile")
        existing = a.group_assign.get(g.id)
        if existing is not None:
            if priority is not None:
                existing.priority = priority
            existing.profile = profile or existing.profile
            existing.last_updated = now_iso()
            return existing
        if priority is None:
            priority = max((x.priority for x in a.group_assign.values()), default=-1) + 1
        ag = AppGroup(priority, now_iso(), profile)
        a.group_assign[g.id] = ag
        a.groups.add(g.id)
        g.apps.add(a.id)
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
        for uid in list(self.group_members(g)):
            self._revoke_via(a, uid)

    # ---------------------------------------------------------------- groups
    def create_group(self, body: dict) -> Group:
        profile = body.get("profile")
        if not isinstance(profile, dict):
            raise errors.invalid("Api validation failed: profile",
                                 ["profile: The field cannot be left blank"])
        name = profile.get("name")
        if not isinstance(name, str) or not name.strip():
            raise errors.invalid("Api validation failed: name", ["name: The field cannot be left blank"])
        self._check_group_name(name, None)
        g = Group(self.ids.new("00g"), "OKTA_GROUP", now_iso(),
                  {"name": name, "description": profile.get("description"),
                   **{k: v for k, v in profile.items() if k not in ("name", "description")}},
                  members=OrderedIds())
        self.add_group(g)
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
        profile = body.get("profile")
        if not isinstance(profile, dict):
            raise errors.invalid("Api validation failed: profile",
                                 ["profile: The field cannot be left blank"])
        name = profile.get("name")
        if not isinstance(name, str) or not name.strip():
            raise errors.invalid("Api validation failed: name", ["name: The field cannot be left blank"])
        self._check_group_name(name, g.id)
        g.profile = {"name": name, "description": profile.get("description"),
                     **{k: v for k, v in profile.items() if k not in ("name", "description")}}
        g.touch()
        return g

    def delete_group(self, gid: str) -> None:
        g = self.group(gid)
        if g.type == "BUILT_IN":
            raise errors.forbidden()
        for aid in list(g.apps):
            self.unassign_app_group(aid, g.id)
        for ra in list(self.roles.get(("group", g.id), {}).values()):
            self.unassign_role("group", g.id, ra.id)
        for rs in self.resource_sets.values():
            for b in rs.bindings.values():
                for m in list(b.members.values()):
                    if m.principal_type == "group" and m.principal_id == g.id:
                        self._remove_binding_member(rs, b, m.id)
        self.role_groups.discard(g.id)
        del self.groups[g.id]
        self.group_order.remove(g.id)

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
            for aid in g.apps:
                self._grant_via(self.apps[aid], u.id)

    def remove_member(self, gid: str, uid: str) -> None:
        g, u = self._membership_check(gid, uid)
        if g.members.remove(u.id):
            g.last_membership_updated = now_iso()
            g.cache = None
            for aid in g.apps:
                self._revoke_via(self.apps[aid], u.id)

    # ---------------------------------------------------------------- roles
    def _refresh_admin(self, uid: str) -> None:
        has = bool(self.roles.get(("user", uid))) or any(
            m.principal_type == "user" and m.principal_id == uid
            for rs in self.resource_sets.values() for b in rs.bindings.values()
            for m in b.members.values())
        if has:
            self.admins.add(uid)
        else:
            self.admins.remove(uid)

    def _refresh_role_group(self, gid: str) -> None:
        has = bool(self.roles.get(("group", gid))) or any(
            m.principal_type == "group" and m.principal_id == gid
            for rs in self.resource_sets.values() for b in rs.bindings.values()
            for m in b.members.values())
        if has:
            self.role_groups.add(gid)
        else:
            self.role_groups.discard(gid)

    def assign_role(self, ptype: str, pid: str, body: dict) -> RoleAssignment | BindingMember:
        """POST /users/{id}/roles or /groups/{id}/roles: a standard role, or a custom role through
        a resource set (`{"type":"CUSTOM","role":…,"resource-set":…}`)."""
        if ptype == "user":
            pid = self.user(pid).id
        else:
            g = self.group(pid)
            if g.type == "BUILT_IN":
                raise OktaError(400, "E0000211", "Cannot assign an admin role to a built-in group.")
        rtype = body.get("type")
        if not isinstance(rtype, str) or not rtype:
            raise errors.invalid("Api validation failed: type", ["type: The field cannot be left blank"])
        if rtype == "CUSTOM" or rtype in IAM_ROLES:
            if rtype in IAM_ROLES and not body.get("role"):
                role = next((r for r in self.custom_roles.values() if r.iam_type == rtype), None)
                if role is None:
                    raise errors.invalid("Api validation failed: type")
                rs = self._iam_resource_set(role)
            else:
                role = self.custom_role(str(body.get("role") or ""))
                rs = self.resource_set(str(body.get("resource-set") or ""))
            b = rs.bindings.get(role.id)
            if b is not None and any(m.principal_type == ptype and m.principal_id == pid
                                     for m in b.members.values()):
                raise _duplicate_role()
            return self.add_binding_member(rs, role, ptype, pid)
        if rtype not in STANDARD_ROLES:
            raise errors.invalid("Api validation failed: type",
                                 [f"type: '{rtype}' is not a valid role type"])
        mine = self.roles.setdefault((ptype, pid), {})
        if rtype in mine:
            raise _duplicate_role()
        ra = RoleAssignment(rtype, ptype, pid, now_iso())
        mine[rtype] = ra
        if ptype == "user":
            self.admins.add(pid)
        else:
            self.role_groups.add(pid)
        return ra

    def _iam_resource_set(self, role: CustomRole) -> ResourceSet:
        """The resource set an IAM-based role (e.g. Workflows) is bound through when assigned with
        the plain `{"type": "WORKFLOWS_ADMIN"}` payload."""
        label = f"{role.iam_type}_IAM_POLICY"
        for rs in self.resource_sets.values():
            if rs.label == label:
                return rs
        rs = ResourceSet(self.ids.new("iam"), label, f"Resource set of the {role.label} role", now_iso())
        self.resource_sets[rs.id] = rs
        self.resource_set_order.add(rs.id)
        return rs

    def unassign_role(self, ptype: str, pid: str, assignment_id: str) -> None:
        if ptype == "user":
            pid = self.user(pid).id
        else:
            self.group(pid)
        rtype = ROLE_TYPE_BY_ID.get(assignment_id)
        mine = self.roles.get((ptype, pid), {})
        if rtype is not None and rtype in mine:
            del mine[rtype]
            if not mine:
                self.roles.pop((ptype, pid), None)
        else:
            for rs in self.resource_sets.values():
                for b in rs.bindings.values():
                    m = b.members.get(assignment_id)
                    if m is not None and m.principal_type == ptype and m.principal_id == pid:
                        self._remove_binding_member(rs, b, m.id)
                        return
            raise errors.not_found_typed(assignment_id, "RoleAssignment")
        if ptype == "user":
            self._refresh_admin(pid)
        else:
            self._refresh_role_group(pid)

    def add_binding_member(self, rs: ResourceSet, role: CustomRole, ptype: str, pid: str) -> BindingMember:
        b = rs.bindings.get(role.id)
        if b is None:
            b = Binding(role.id, now_iso())
            rs.bindings[role.id] = b
            rs.binding_ids.add(role.id)
        for m in b.members.values():
            if m.principal_type == ptype and m.principal_id == pid:
                return m
        m = BindingMember(self.ids.new("irb"), ptype, pid, now_iso())
        b.members[m.id] = m
        b.member_ids.add(m.id)
        if ptype == "user":
            self.admins.add(pid)
        else:
            self.role_groups.add(pid)
        return m

    def _remove_binding_member(self, rs: ResourceSet, b: Binding, mid: str) -> None:
        m = b.members.pop(mid)
        b.member_ids.remove(mid)
        if m.principal_type == "user":
            self._refresh_admin(m.principal_id)
        else:
            self._refresh_role_group(m.principal_id)

    def remove_binding_member(self, rs_id: str, role_id: str, mid: str) -> None:
        rs = self.resource_set(rs_id)
        role = self.custom_role(role_id)
        b = rs.bindings.get(role.id)
        if b is None:
            raise errors.not_found_typed(role_id, "ResourceSetBinding")
        if mid not in b.members:
            raise errors.not_found_typed(mid, "ResourceSetBindingMember")
        self._remove_binding_member(rs, b, mid)

    def delete_binding(self, rs_id: str, role_id: str) -> None:
        rs = self.resource_set(rs_id)
        role = self.custom_role(role_id)
        b = rs.bindings.get(role.id)
        if b is None:
            raise errors.not_found_typed(role_id, "ResourceSetBinding")
        for mid in list(b.members):
            self._remove_binding_member(rs, b, mid)
        del rs.bindings[role.id]
        rs.binding_ids.remove(role.id)

    def user_role_entries(self, uid: str) -> list[tuple[str, object, str]]:
        """(assignmentType, assignment, assignee principal type) for every role a user holds:
        direct, then through the groups they belong to (Okta lists both)."""
        out: list[tuple[str, object, str]] = []
        for ra in self.roles.get(("user", uid), {}).values():
            out.append(("USER", ra, "user"))
        bound = [(rs, b, m) for rs in self.resource_sets.values() for b in rs.bindings.values()
                 for m in b.members.values()]
        for rs, b, m in bound:
            if m.principal_type == "user" and m.principal_id == uid:
                out.append(("USER", (rs, b, m), "user"))
        for gid in self.role_groups:
            g = self.groups.get(gid)
            if g is None or not self.is_member(g, uid):
                continue
            for ra in self.roles.get(("group", gid), {}).values():
                out.append(("GROUP", ra, "group"))
            for rs, b, m in bound:
                if m.principal_type == "group" and m.principal_id == gid:
                    out.append(("GROUP", (rs, b, m), "group"))
        return out

    def group_role_entries(self, gid: str) -> list[tuple[str, object, str]]:
        out: list[tuple[str, object, str]] = [("GROUP", ra, "group")
                                              for ra in self.roles.get(("group", gid), {}).values()]
        for rs in self.resource_sets.values():
            for b in rs.bindings.values():
                for m in b.members.values():
                    if m.principal_type == "group" and m.principal_id == gid:
                        out.append(("GROUP", (rs, b, m), "group"))
        return out

    # ---------------------------------------------------------------- users
    def create_user(self, body: dict, activate: bool) -> User:
        profile = body.get("profile")
        if not isinstance(profile, dict):
            raise errors.invalid("Api validation failed: profile",
                                 ["profile: The field cannot be left blank"])
        causes = [f"{f}: The field cannot be left blank" for f in ("firstName", "lastName", "email", "login")
                  if not isinstance(profile.get(f), str) or not profile.get(f).strip()]
        if causes:
            raise errors.invalid("Api validation failed: " + causes[0].split(":")[0], causes)
        login = profile["login"]
        if login.lower() in self.logins:
            raise errors.invalid("Api validation failed: login", [
                "login: An object with this field already exists in the current organization"])
        if "@" not in profile["email"]:
            raise errors.invalid("Api validation failed: email", ["email: Does not match required pattern"])
        creds = _obj(body, "credentials")
        has_password = bool((creds.get("password") or {}).get("value")) if isinstance(
            creds.get("password"), dict) else False
        group_ids = body.get("groupIds")
        group_ids = [] if group_ids is None else group_ids
        if not isinstance(group_ids, list):
            raise errors.invalid("Api validation failed: groupIds")
        groups = [self.group(str(gid)) for gid in group_ids]
        now = now_iso()
        if activate:
            status = "ACTIVE" if has_password else "PROVISIONED"
        else:
            status = "STAGED"
        full = {"firstName": profile["firstName"], "lastName": profile["lastName"],
                "mobilePhone": profile.get("mobilePhone"), "secondEmail": profile.get("secondEmail"),
                "login": login, "email": profile["email"]}
        full.update({k: v for k, v in profile.items() if k not in full})
        u = User(self.ids.new("00u"), status, now, now if activate else None,
                 now if activate else None, None, now, now if has_password else None, full, has_password)
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
        causes = [f"{f}: The field cannot be left blank" for f in ("firstName", "lastName", "email", "login")
                  if not isinstance(new.get(f), str) or not new.get(f).strip()]
        if causes:
            raise errors.invalid("Api validation failed: " + causes[0].split(":")[0], causes)
        old_login = u.profile["login"].lower()
        if new["login"].lower() != old_login and new["login"].lower() in self.logins:
            raise errors.invalid("Api validation failed: login", [
                "login: An object with this field already exists in the current organization"])
        for k in ("mobilePhone", "secondEmail"):
            new.setdefault(k, None)
        del self.logins[old_login]
        self.logins[new["login"].lower()] = u.id
        u.profile = new
        u.touch()
        return u

    def lifecycle(self, uid: str, op: str) -> dict:
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
            new = "ACTIVE" if u.has_password else "PROVISIONED"
            u.activated = now_iso()
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
        u.status = new
        u.status_changed = now_iso()
        u.touch()
        return result

    def delete_user(self, uid: str) -> None:
        """Okta deletes only DEPROVISIONED users; a first DELETE on any other user deactivates it."""
        u = self.user(uid)
        if u.status != "DEPROVISIONED":
            self.lifecycle(u.id, "deactivate")
            return
        for g in self.groups.values():
            if g.members is not None and u.id in g.members:
                g.members.remove(u.id)
                g.last_membership_updated = now_iso()
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
            del self.api_tokens[t.id]
            self.api_token_order.remove(t.id)
        self.logins.pop(u.profile["login"].lower(), None)
        del self.users[u.id]
        self.user_order.remove(u.id)


def _duplicate_role() -> OktaError:
    return OktaError(409, "E0000090", "The role specified is already assigned to the user.")


def _by_id_or_label(objects: dict, id_or_label: str, okta_type: str):
    """Okta's IAM endpoints take a custom role or resource set by id or by label."""
    found = objects.get(id_or_label)
    if found is not None:
        return found
    for obj in objects.values():
        if obj.label == id_or_label:
            return obj
    raise errors.not_found_typed(id_or_label, okta_type)
