"""Admin roles: standard roles assigned to users, groups and OAuth service apps (clients), custom
roles (with the IAM-based standard roles Okta lists among them), resource sets and their bindings;
the org's role state and every change with Okta's errors, the JSON shapes, and the routes
(/users/{id}/roles, /groups/{id}/roles, /oauth2/v1/clients/{clientId}/roles, /iam/*)."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson

from oktasim import errors
from oktasim.areas.groups import group_bytes
from oktasim.areas.logs import client_target, group_target, target, user_target
from oktasim.errors import OktaError
from oktasim.orderedset import OrderedIds
from oktasim.routing import (
    NO_CONTENT,
    Request,
    Response,
    iam_list,
    iam_object,
    json_list,
    json_response,
    page,
    route,
)
from oktasim.scopes import ROLES_MANAGE, ROLES_READ
from oktasim.timestamps import now_iso

# Standard admin roles and the labels Okta returns (okta-api.md §5.7; recordings for USER/APP_ADMIN).
STANDARD_ROLES: dict[str, str] = {
    "SUPER_ADMIN": "Super Administrator",
    "ORG_ADMIN": "Organizational Administrator",
    "APP_ADMIN": "Application Administrator",
    "USER_ADMIN": "User Administrator",
    "HELP_DESK_ADMIN": "Help Desk Administrator",
    "READ_ONLY_ADMIN": "Read Only Administrator",
    "MOBILE_ADMIN": "Mobile Administrator",
    "API_ACCESS_MANAGEMENT_ADMIN": "API Access Management Administrator",
    "REPORT_ADMIN": "Report Administrator",
    "GROUP_MEMBERSHIP_ADMIN": "Group Membership Administrator",
}

# IAM-based standard roles: /api/v1/iam/roles lists them with the custom roles (baton-okta.md §8.4),
# but they are assigned like standard roles, `{"type": "WORKFLOWS_ADMIN"}`, and a role list answers
# them in the custom-role shape with their own `type`, the type as `role` and a built-in resource
# set such as ACCESS_CERTIFICATIONS_IAM_POLICY (okta-api.md §5.7, §6).
IAM_ROLES: dict[str, str] = {
    "WORKFLOWS_ADMIN": "Workflows Administrator",
    "ACCESS_CERTIFICATIONS_ADMIN": "Access Certifications Administrator",
    "ACCESS_REQUESTS_ADMIN": "Access Requests Administrator",
}
ROLE_LABELS = {**STANDARD_ROLES, **IAM_ROLES}   # every role assignable by type


def iam_resource_set(role_type: str) -> str:
    """The built-in resource set an IAM-based role is answered with (WORKFLOWS_ADMIN -> WORKFLOWS_IAM_POLICY)."""
    return role_type.removesuffix("_ADMIN") + "_IAM_POLICY"


# Roles Okta scopes to targets (okta-api.md §5.7): groups, or catalog apps and app instances. Without
# targets a role is org-wide.
GROUP_TARGET_ROLES = frozenset({"USER_ADMIN", "HELP_DESK_ADMIN", "GROUP_MEMBERSHIP_ADMIN"})
APP_TARGET_ROLES = frozenset({"APP_ADMIN"})


def role_assignment_id(role_type: str) -> str:
    """Okta's ids for standard role assignments: the unpadded Base32 of the type
    (KVJUKUS7IFCE2SKO = USER_ADMIN in the recordings)."""
    return base64.b32encode(role_type.encode()).decode().rstrip("=")


ROLE_TYPE_BY_ID = {role_assignment_id(t): t for t in ROLE_LABELS}


class RoleAssignment:
    """A standard role (the IAM-based ones too) assigned to a user, a group or a client (service app)."""
    __slots__ = ("id", "type", "principal_type", "principal_id", "created", "last_updated", "status",
                 "group_targets", "app_targets", "instance_targets")

    def __init__(self, type: str, principal_type: str, principal_id: str, created: str):
        self.id = role_assignment_id(type)
        self.type = type
        self.principal_type = principal_type  # "user" | "group" | "client"
        self.principal_id = principal_id
        self.created = created
        self.last_updated = created
        self.status = "ACTIVE"
        self.group_targets = OrderedIds()      # group ids
        self.app_targets = OrderedIds()        # catalog app names (every instance of the app)
        self.instance_targets = OrderedIds()   # app instance ids

    def target_count(self) -> int:
        return len(self.group_targets) + len(self.app_targets) + len(self.instance_targets)


class CustomRole:
    __slots__ = ("id", "label", "description", "created", "last_updated", "iam_type", "permissions")

    def __init__(self, id: str, label: str, description: str, created: str,
                 iam_type: str | None = None, permissions: list[str] | None = None):
        self.id = id
        self.label = label
        self.description = description
        self.created = created
        self.last_updated = created
        self.iam_type = iam_type      # WORKFLOWS_ADMIN etc. for IAM-based standard roles
        self.permissions = permissions or []


class BindingMember:
    __slots__ = ("id", "principal_type", "principal_id", "created")

    def __init__(self, id: str, principal_type: str, principal_id: str, created: str):
        self.id = id
        self.principal_type = principal_type
        self.principal_id = principal_id
        self.created = created


class Binding:
    __slots__ = ("role_id", "members", "member_ids", "created")

    def __init__(self, role_id: str, created: str):
        self.role_id = role_id
        self.members: dict[str, BindingMember] = {}
        self.member_ids = OrderedIds()
        self.created = created


class ResourceSet:
    __slots__ = ("id", "label", "description", "created", "last_updated", "bindings", "binding_ids")

    def __init__(self, id: str, label: str, description: str, created: str):
        self.id = id
        self.label = label
        self.description = description
        self.created = created
        self.last_updated = created
        self.bindings: dict[str, Binding] = {}
        self.binding_ids = OrderedIds()


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


RoleEntry = tuple[str, Any, str]   # (assignmentType, RoleAssignment or (rs, binding, member), principal type)
# assignmentType of a principal's own roles (a user's list also holds GROUP ones, from its groups).
ASSIGNMENT_TYPES = {"user": "USER", "group": "GROUP", "client": "CLIENT"}


class RoleState:
    """Roles, custom roles and resource sets of the org (a mixin of Org)."""

    def _init_roles(self) -> None:
        self.roles: dict[tuple[str, str], dict[str, RoleAssignment]] = {}  # (ptype, pid) -> type -> ra
        self.role_groups: set[str] = set()        # groups holding any role (standard or bound)
        self.admins = OrderedIds()                # users with a direct role (for iam/assignees/users)
        self.custom_roles: dict[str, CustomRole] = {}
        self.custom_role_order = OrderedIds()
        self.resource_sets: dict[str, ResourceSet] = {}
        self.resource_set_order = OrderedIds()

    def custom_role(self, id_or_label: str) -> CustomRole:
        return _by_id_or_label(self.custom_roles, id_or_label, "CustomRole")

    def resource_set(self, id_or_label: str) -> ResourceSet:
        return _by_id_or_label(self.resource_sets, id_or_label, "IAMPolicy")

    def add_custom_role(self, cr: CustomRole) -> None:
        self.custom_roles[cr.id] = cr
        self.custom_role_order.add(cr.id)

    def add_resource_set(self, rs: ResourceSet) -> None:
        self.resource_sets[rs.id] = rs
        self.resource_set_order.add(rs.id)

    def _holds_binding(self, ptype: str, pid: str) -> bool:
        return any(m.principal_type == ptype and m.principal_id == pid
                   for rs in self.resource_sets.values() for b in rs.bindings.values()
                   for m in b.members.values())

    def _refresh_admin(self, uid: str) -> None:
        if self.roles.get(("user", uid)) or self._holds_binding("user", uid):
            self.admins.add(uid)
        else:
            self.admins.remove(uid)

    def _refresh_role_group(self, gid: str) -> None:
        if self.roles.get(("group", gid)) or self._holds_binding("group", gid):
            self.role_groups.add(gid)
        else:
            self.role_groups.discard(gid)

    def _refresh_principal(self, ptype: str, pid: str) -> None:
        """Keep the admin users and role groups indexes (clients have none: no assignees list)."""
        if ptype == "user":
            self._refresh_admin(pid)
        elif ptype == "group":
            self._refresh_role_group(pid)

    def role_principal(self, ptype: str, pid: str) -> str:
        """The id of an existing user, group or service-app client, or Okta's 404/400 for it."""
        if ptype == "user":
            return self.user(pid).id
        if ptype == "group":
            return self.group(pid).id
        return self.service_client(pid).id

    def assign_role(self, ptype: str, pid: str, body: dict) -> RoleAssignment | BindingMember:
        """POST /users/{id}/roles, /groups/{id}/roles or /oauth2/v1/clients/{id}/roles: a standard
        role, or a custom role through a resource set (`{"type":"CUSTOM","role":…,"resource-set":…}`)."""
        pid = self.role_principal(ptype, pid)
        if ptype == "group" and self.groups[pid].type == "BUILT_IN":
            raise OktaError(400, "E0000211", "Cannot assign an admin role to a built-in group.")
        rtype = body.get("type")
        if not isinstance(rtype, str) or not rtype:
            raise errors.invalid("Api validation failed: type", ["type: The field cannot be left blank"])
        if rtype == "CUSTOM":
            role = self.custom_role(str(body.get("role") or ""))
            rs = self.resource_set(str(body.get("resource-set") or ""))
            b = rs.bindings.get(role.id)
            if b is not None and any(m.principal_type == ptype and m.principal_id == pid
                                     for m in b.members.values()):
                raise _duplicate_role()
            return self.add_binding_member(rs, role, ptype, pid)
        if rtype not in ROLE_LABELS:
            raise errors.invalid("Api validation failed: type",
                                 [f"type: '{rtype}' is not a valid role type"])
        mine = self.roles.setdefault((ptype, pid), {})
        if rtype in mine:
            raise _duplicate_role()
        ra = RoleAssignment(rtype, ptype, pid, now_iso())
        mine[rtype] = ra
        self._refresh_principal(ptype, pid)
        self._log_privileges(ptype, pid)
        return ra

    def drop_group_target(self, gid: str) -> None:
        """A deleted group leaves every role's targets. An assignment that loses its last target is
        removed rather than left org-wide (no admin gains scope from a deletion; what Okta does here
        is not documented)."""
        for (ptype, pid), mine in list(self.roles.items()):
            for ra in list(mine.values()):
                if not ra.group_targets.remove(gid):
                    continue
                if ra.target_count():
                    ra.last_updated = now_iso()
                    self._log_privileges(ptype, pid)  # as for a target removed through the API
                else:
                    self.unassign_role(ptype, pid, ra.id)

    def unassign_role(self, ptype: str, pid: str, assignment_id: str) -> None:
        pid = self.role_principal(ptype, pid)
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
        self._refresh_principal(ptype, pid)
        self._log_privileges(ptype, pid, had_some=True)

    # ---------------------------------------------------------------- targets of standard roles

    def role_assignment(self, ptype: str, pid: str, assignment_id: str) -> RoleAssignment:
        pid = self.role_principal(ptype, pid)
        ra = self.roles.get((ptype, pid), {}).get(ROLE_TYPE_BY_ID.get(assignment_id, ""))
        if ra is None:
            raise errors.not_found_typed(assignment_id, "RoleAssignment")
        return ra

    def _targets_of(self, ra: RoleAssignment, kind: str) -> None:
        allowed = GROUP_TARGET_ROLES if kind == "groups" else APP_TARGET_ROLES
        if ra.type not in allowed:
            raise OktaError(400, "E0000091", "The provided role type was not the same as required role type.")

    def add_role_target(self, ra: RoleAssignment, kind: str, key: str, app_id: str | None = None) -> None:
        """PUT …/targets/groups/{groupId} or …/targets/catalog/apps/{appName}[/{appId}] (204, idempotent)."""
        self._targets_of(ra, kind)
        if kind == "groups":
            added = ra.group_targets.add(self.group(key).id)
        elif app_id is None:
            if not any(a.name == key for a in self.apps.values()):
                raise errors.not_found_typed(key, "CatalogApp")
            added = ra.app_targets.add(key)
        else:
            app = self.app(app_id)
            if app.name != key:
                raise errors.not_found_typed(app_id, "AppInstance")
            added = ra.instance_targets.add(app.id)
        if added:
            ra.last_updated = now_iso()
            self._log_privileges(ra.principal_type, ra.principal_id)

    def remove_role_target(self, ra: RoleAssignment, kind: str, key: str, app_id: str | None = None) -> None:
        """DELETE of one target; the last one cannot go (the role would silently become org-wide)."""
        self._targets_of(ra, kind)
        ids = ra.group_targets if kind == "groups" else ra.app_targets if app_id is None else ra.instance_targets
        target_id = app_id or key
        if target_id not in ids:
            raise errors.not_found_typed(target_id, "UserGroup" if kind == "groups" else "AppInstance")
        if ra.target_count() == 1:
            raise errors.invalid("Api validation failed: target",
                                 ["target: The last target of a role assignment cannot be removed"])
        ids.remove(target_id)
        ra.last_updated = now_iso()
        self._log_privileges(ra.principal_type, ra.principal_id)

    def add_binding_member(self, rs: ResourceSet, role: CustomRole, ptype: str, pid: str) -> BindingMember:
        b = rs.bindings.get(role.id)
        if b is None:
            b = Binding(role.id, now_iso())
            rs.bindings[role.id] = b
            rs.binding_ids.add(role.id)
            self.emit("iam.resourceset.bindings.add", "Add a binding to a resource set",
                      [_resource_set_target(rs), _role_target(role)])
        for m in b.members.values():
            if m.principal_type == ptype and m.principal_id == pid:
                return m
        m = BindingMember(self.ids.new("irb"), ptype, pid, now_iso())
        b.members[m.id] = m
        b.member_ids.add(m.id)
        self._refresh_principal(ptype, pid)
        self._log_privileges(ptype, pid)
        return m

    def _remove_binding_member(self, rs: ResourceSet, b: Binding, mid: str) -> None:
        m = b.members.pop(mid)
        b.member_ids.remove(mid)
        self._refresh_principal(m.principal_type, m.principal_id)
        self._log_privileges(m.principal_type, m.principal_id, had_some=True)

    def binding_of(self, rs_id: str, role_id: str) -> tuple[ResourceSet, CustomRole, Binding]:
        rs = self.resource_set(rs_id)
        role = self.custom_role(role_id)
        b = rs.bindings.get(role.id)
        if b is None:
            raise errors.not_found_typed(role_id, "ResourceSetBinding")
        return rs, role, b

    def remove_binding_member(self, rs_id: str, role_id: str, mid: str) -> None:
        rs, _, b = self.binding_of(rs_id, role_id)
        if mid not in b.members:
            raise errors.not_found_typed(mid, "ResourceSetBindingMember")
        self._remove_binding_member(rs, b, mid)

    def delete_binding(self, rs_id: str, role_id: str) -> None:
        rs, role, b = self.binding_of(rs_id, role_id)
        for mid in list(b.members):
            self._remove_binding_member(rs, b, mid)
        del rs.bindings[role.id]
        rs.binding_ids.remove(role.id)
        self.emit("iam.resourceset.bindings.delete", "Delete a binding from a resource set",
                  [_resource_set_target(rs), _role_target(role)])

    # System Log semantics (okta-incremental.md §1.3): `…privilege.grant` means "admin privileges
    # changed" and carries every privilege the principal now holds (a user's group-derived ones too);
    # `…privilege.revoke` fires only when none is left. So removing one role of several is a grant.
    # A client's are `app.oauth2.client.privilege.grant|revoke` (Okta's event catalog, tags
    # oauth2-client; their debug data is not documented: the simulator writes them like the others).
    def privilege_labels(self, entries: list[RoleEntry]) -> list[str]:
        labels = []
        for _, held, _ in entries:
            label = (ROLE_LABELS[held.type] if isinstance(held, RoleAssignment)
                     else self.custom_roles[held[1].role_id].label)
            if label not in labels:
                labels.append(label)
        return labels

    def log_user_privileges(self, uid: str, had_some: bool = False) -> None:
        self._log_privileges("user", uid, had_some)

    def _log_privileges(self, ptype: str, pid: str, had_some: bool = False) -> None:
        if not self.log.recording:   # generating the org: no need to work out the labels
            return
        if ptype == "user":
            labels = self.privilege_labels(self.user_role_entries(pid))
            who, kind, noun = user_target(self.users[pid]), "user.account", "user"
        elif ptype == "group":
            labels = self.privilege_labels(self.group_role_entries(pid))
            who, kind, noun = group_target(self.groups[pid]), "group", "group"
        else:
            labels = self.privilege_labels(self.own_role_entries("client", pid))
            who, kind, noun = client_target(self.apps[pid]), "app.oauth2.client", "client"
        if labels:
            self.emit(f"{kind}.privilege.grant", f"Grant {noun} privilege", [who],
                      {"privilegeGranted": ", ".join(labels)})
        elif had_some:
            self.emit(f"{kind}.privilege.revoke", f"Revoke {noun} privilege", [who],
                      {"privilegeRevoked": "all"})

    def user_role_entries(self, uid: str) -> list[RoleEntry]:
        """Every role a user holds: direct, then through the groups they belong to (Okta lists both)."""
        out: list[RoleEntry] = []
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

    def group_role_entries(self, gid: str) -> list[RoleEntry]:
        return self.own_role_entries("group", gid)

    def own_role_entries(self, ptype: str, pid: str) -> list[RoleEntry]:
        """The roles assigned to a group or client itself: standard roles, then binding memberships."""
        at = ASSIGNMENT_TYPES[ptype]
        out: list[RoleEntry] = [(at, ra, ptype) for ra in self.roles.get((ptype, pid), {}).values()]
        for rs in self.resource_sets.values():
            for b in rs.bindings.values():
                for m in b.members.values():
                    if m.principal_type == ptype and m.principal_id == pid:
                        out.append((at, (rs, b, m), ptype))
        return out


def _resource_set_target(rs: ResourceSet) -> dict:
    return target(rs.id, "ResourceSet", rs.label, rs.label)


def _role_target(role: CustomRole) -> dict:
    return target(role.id, "CustomRole", role.label, role.label)


# ---------------------------------------------------------------- JSON shapes (okta-api.md §5.7)

def _assignee(ptype: str, pid: str, base: str) -> str:
    if ptype == "client":
        return f"{base}/oauth2/v1/clients/{pid}"
    return f"{base}/api/v1/{'users' if ptype == 'user' else 'groups'}/{pid}"


def standard_role_dict(ra: RoleAssignment, assignment_type: str, base: str) -> dict:
    d = {
        "id": ra.id, "label": ROLE_LABELS[ra.type], "type": ra.type, "status": ra.status,
        "created": ra.created, "lastUpdated": ra.last_updated, "assignmentType": assignment_type,
        "_links": {"assignee": {"href": _assignee(ra.principal_type, ra.principal_id, base)}},
    }
    if ra.type in IAM_ROLES:   # the custom-role shape
        d["role"], d["resource-set"] = ra.type, iam_resource_set(ra.type)
    return d


def custom_role_assignment_dict(org, rs: ResourceSet, b: Binding, m: BindingMember,
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


def role_entry_dict(org, entry: RoleEntry, base: str) -> dict:
    assignment_type, obj, _ = entry
    if isinstance(obj, RoleAssignment):
        return standard_role_dict(obj, assignment_type, base)
    rs, b, m = obj
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


# ---------------------------------------------------------------- role assignments of users and groups

def _role_created(req: Request, obj: Any, assignment_type: str, status: int = 201) -> Response:
    """201 (a client's: 200, as Okta's spec says) with the new assignment: a standard role, or the
    binding member of a custom role."""
    org = req.org
    if isinstance(obj, RoleAssignment):
        return json_response(standard_role_dict(obj, assignment_type, req.base), status)
    for rs in org.resource_sets.values():
        for b in rs.bindings.values():
            if obj.id in b.members:
                return json_response(custom_role_assignment_dict(org, rs, b, obj, assignment_type, req.base), status)
    raise errors.internal_error()


def user_roles(req: Request, uid: str) -> Response:
    org = req.org
    u = org.user(uid)
    entries = org.user_role_entries(u.id)
    return json_response([role_entry_dict(org, e, req.base) for e in entries], items=len(entries))


def assign_user_role(req: Request, uid: str) -> Response:
    return _role_created(req, req.org.assign_role("user", uid, req.json()), "USER")


def unassign_user_role(req: Request, uid: str, rid: str) -> Response:
    req.org.unassign_role("user", uid, rid)
    return NO_CONTENT


def group_roles(req: Request, gid: str) -> Response:
    org = req.org
    g = org.group(gid)
    entries = org.group_role_entries(g.id)
    return json_response([role_entry_dict(org, e, req.base) for e in entries], items=len(entries))


def assign_group_role(req: Request, gid: str) -> Response:
    return _role_created(req, req.org.assign_role("group", gid, req.json()), "GROUP")


def unassign_group_role(req: Request, gid: str, rid: str) -> Response:
    req.org.unassign_role("group", gid, rid)
    return NO_CONTENT


# ---------------------------------------------------------------- role assignments of OAuth service apps

def client_roles(req: Request, cid: str) -> Response:
    """GET /oauth2/v1/clients/{clientId}/roles: one unpaged array, like a user's or group's list."""
    org = req.org
    entries = org.own_role_entries("client", org.service_client(cid).id)
    return json_response([role_entry_dict(org, e, req.base) for e in entries], items=len(entries))


def get_client_role(req: Request, cid: str, rid: str) -> Response:
    org = req.org
    for entry in org.own_role_entries("client", org.service_client(cid).id):
        d = role_entry_dict(org, entry, req.base)
        if d["id"] == rid:
            return json_response(d)
    raise errors.not_found_typed(rid, "RoleAssignment")


def assign_client_role(req: Request, cid: str) -> Response:
    return _role_created(req, req.org.assign_role("client", cid, req.json()), "CLIENT", 200)


def unassign_client_role(req: Request, cid: str, rid: str) -> Response:
    req.org.unassign_role("client", cid, rid)
    return NO_CONTENT


# ---------------------------------------------------------------- targets of standard role assignments

TARGETS_LIMIT = (20, 200)   # default and maximum page size (okta-api.md §3.2)


def _catalog_app_dict(org, name: str, instance_id: str | None, base: str) -> dict:
    """A target in GET …/targets/catalog/apps: the catalog app, with `id` when it is one instance."""
    label = next((a.label for a in org.apps.values() if a.name == name), name)
    d: dict = {"name": name, "displayName": label, "status": "ACTIVE",
               "_links": {"logo": [{"name": "medium", "type": "image/png",
                                    "href": f"https://ok12static.oktacdn.com/assets/img/logos/{name}.png"}]}}
    if instance_id is not None:
        d["id"] = instance_id
        d["_links"]["self"] = {"href": f"{base}/api/v1/apps/{instance_id}"}
    return d


def _group_targets(req: Request, ptype: str, pid: str, rid: str) -> Response:
    org = req.org
    ra = org.role_assignment(ptype, pid, rid)
    org._targets_of(ra, "groups")
    ids, limit, nxt = page(req, ra.group_targets, *TARGETS_LIMIT)
    return json_list(req, [group_bytes(org, org.groups[g], req.base) for g in ids], limit, nxt)


def _app_targets(req: Request, ptype: str, pid: str, rid: str) -> Response:
    org = req.org
    ra = org.role_assignment(ptype, pid, rid)
    org._targets_of(ra, "apps")
    # Apps first, then instances, in one cursor space ("app:<name>" / "instance:<id>").
    keys = OrderedIds([f"app:{n}" for n in ra.app_targets] + [f"instance:{i}" for i in ra.instance_targets])
    ids, limit, nxt = page(req, keys, *TARGETS_LIMIT)
    items = []
    for key in ids:
        kind, value = key.split(":", 1)
        if kind == "app":
            items.append(_catalog_app_dict(org, value, None, req.base))
        else:
            items.append(_catalog_app_dict(org, org.apps[value].name, value, req.base))
    return json_list(req, [orjson.dumps(i) for i in items], limit, nxt)


def _change_target(req: Request, ptype: str, pid: str, rid: str, add: bool, kind: str, key: str,
                   app_id: str | None = None) -> Response:
    org = req.org
    ra = org.role_assignment(ptype, pid, rid)
    (org.add_role_target if add else org.remove_role_target)(ra, kind, key, app_id)
    return NO_CONTENT


def _target_routes(ptype: str, principal_path: str, var: str) -> list:
    """GET/PUT/DELETE of group and catalog-app targets under /users/{uid}, /groups/{gid} or
    /oauth2/v1/clients/{cid}."""
    base = f"{principal_path}/roles/{{rid}}/targets"

    def groups(req, rid, **kw):
        return _group_targets(req, ptype, kw[var], rid)

    def apps(req, rid, **kw):
        return _app_targets(req, ptype, kw[var], rid)

    def group(add):
        return lambda req, rid, target, **kw: _change_target(req, ptype, kw[var], rid, add, "groups", target)

    def app(add):
        return lambda req, rid, name, **kw: _change_target(req, ptype, kw[var], rid, add, "apps", name)

    def instance(add):
        return lambda req, rid, name, aid, **kw: _change_target(req, ptype, kw[var], rid, add, "apps", name, aid)

    return [
        route("GET", f"{base}/groups", groups, ROLES_READ),
        route("PUT", f"{base}/groups/{{target}}", group(True), ROLES_MANAGE, "role.assignment"),
        route("DELETE", f"{base}/groups/{{target}}", group(False), ROLES_MANAGE, "role.assignment"),
        route("GET", f"{base}/catalog/apps", apps, ROLES_READ),
        route("PUT", f"{base}/catalog/apps/{{name}}", app(True), ROLES_MANAGE, "role.assignment"),
        route("DELETE", f"{base}/catalog/apps/{{name}}", app(False), ROLES_MANAGE, "role.assignment"),
        route("PUT", f"{base}/catalog/apps/{{name}}/{{aid}}", instance(True), ROLES_MANAGE, "role.assignment"),
        route("DELETE", f"{base}/catalog/apps/{{name}}/{{aid}}", instance(False), ROLES_MANAGE, "role.assignment"),
    ]


# ---------------------------------------------------------------- IAM: custom roles, resource sets, bindings

def assignees_users(req: Request) -> Response:
    org = req.org
    ids, limit, nxt = page(req, org.admins, 100, 100)
    items = [{"id": uid, "orn": f"orn:okta:directory:{org.id}:users:{uid}",
              "_links": {"self": {"href": f"{req.base}/api/v1/users/{uid}"},
                         "roles": {"href": f"{req.base}/api/v1/users/{uid}/roles"}}} for uid in ids]
    return iam_list(req, "value", items, limit, nxt)


def list_custom_roles(req: Request) -> Response:
    org = req.org
    ids, limit, nxt = page(req, org.custom_role_order, 100, 100)
    return iam_list(req, "roles", [custom_role_dict(org.custom_roles[i], req.base) for i in ids], limit, nxt)


def get_custom_role(req: Request, rid: str) -> Response:
    return iam_object(req, custom_role_dict(req.org.custom_role(rid), req.base, single=True))


def role_permissions(req: Request, rid: str) -> Response:
    cr = req.org.custom_role(rid)
    href = f"{req.base}/api/v1/iam/roles/{cr.id}/permissions"
    return json_response({"permissions": [
        {"label": p, "created": cr.created, "lastUpdated": cr.last_updated, "conditions": None,
         "_links": {"role": {"href": f"{req.base}/api/v1/iam/roles/{cr.id}"},
                    "self": {"href": f"{href}/{p}"}}} for p in cr.permissions]},
        items=len(cr.permissions))


def list_resource_sets(req: Request) -> Response:
    org = req.org
    ids, limit, nxt = page(req, org.resource_set_order, 100, 100)
    return iam_list(req, "resource-sets", [resource_set_dict(org.resource_sets[i], req.base) for i in ids],
                    limit, nxt)


def get_resource_set(req: Request, rsid: str) -> Response:
    return iam_object(req, resource_set_dict(req.org.resource_set(rsid), req.base))


def list_bindings(req: Request, rsid: str) -> Response:
    rs = req.org.resource_set(rsid)
    ids, limit, nxt = page(req, rs.binding_ids, 100, 100)
    return iam_list(req, "roles", [binding_dict(rs, r, req.base) for r in ids], limit, nxt,
                    {"resource-set": {"href": f"{req.base}/api/v1/iam/resource-sets/{rs.id}"}})


def get_binding(req: Request, rsid: str, role: str) -> Response:
    rs, cr, _ = req.org.binding_of(rsid, role)
    d = binding_dict(rs, cr.id, req.base)
    d["_links"]["resource-set"] = {"href": f"{req.base}/api/v1/iam/resource-sets/{rs.id}"}
    d["_links"]["role"] = {"href": f"{req.base}/api/v1/iam/roles/{cr.id}"}
    return iam_object(req, d)


def list_binding_members(req: Request, rsid: str, role: str) -> Response:
    rs, cr, b = req.org.binding_of(rsid, role)
    ids, limit, nxt = page(req, b.member_ids, 100, 100)
    href = f"{req.base}/api/v1/iam/resource-sets/{rs.id}/bindings/{cr.id}"
    return iam_list(req, "members", [binding_member_dict(rs, b, b.members[m], req.base) for m in ids],
                    limit, nxt, {"binding": {"href": href}})


def get_binding_member(req: Request, rsid: str, role: str, mid: str) -> Response:
    rs, _, b = req.org.binding_of(rsid, role)
    m = b.members.get(mid)
    if m is None:
        raise errors.not_found_typed(mid, "ResourceSetBindingMember")
    return iam_object(req, binding_member_dict(rs, b, m, req.base))


_MEMBER_HREF = re.compile(r"/(?:api/v1/(users|groups)|oauth2/v1/(clients))/([^/?#]+)/?$")
_MEMBER_TYPES = {"users": "user", "groups": "group", "clients": "client"}


def _member_targets(req: Request, hrefs: object, field: str) -> list[tuple[str, str]]:
    """User, group or client URLs of a bindings request -> (principal type, id); unknown ids are 404s."""
    if not isinstance(hrefs, list) or not hrefs:
        raise errors.invalid(f"Api validation failed: {field}", [f"{field}: The field cannot be left blank"])
    targets = []
    for href in hrefs:
        m = _MEMBER_HREF.search(href) if isinstance(href, str) else None
        if m is None:
            raise errors.invalid(f"Api validation failed: {field}",
                                 [f"{field}: '{href}' is not a user, group or client URL"])
        ptype = _MEMBER_TYPES[m.group(1) or m.group(2)]
        targets.append((ptype, req.org.role_principal(ptype, m.group(3))))
    return targets


def _binding_answer(req: Request, rs: ResourceSet, cr: CustomRole) -> Response:
    href = f"{req.base}/api/v1/iam/resource-sets/{rs.id}/bindings/{cr.id}"
    return json_response({"id": cr.id, "_links": {"self": {"href": href},
                                                   "bindings": {"href": href.rsplit("/", 1)[0]}}})


def add_binding_members(req: Request, rsid: str, role: str) -> Response:
    """PATCH …/bindings/{role}/members {"additions": [user, group or client URLs]}."""
    org = req.org
    rs, cr, _ = org.binding_of(rsid, role)
    for ptype, pid in _member_targets(req, req.json().get("additions"), "additions"):
        org.add_binding_member(rs, cr, ptype, pid)
    return _binding_answer(req, rs, cr)


def create_binding(req: Request, rsid: str) -> Response:
    """POST /iam/resource-sets/{id}/bindings {"role": id, "members": [user, group or client URLs]}."""
    org = req.org
    rs = org.resource_set(rsid)
    body = req.json()
    cr = org.custom_role(str(body.get("role") or ""))
    for ptype, pid in _member_targets(req, body.get("members"), "members"):
        org.add_binding_member(rs, cr, ptype, pid)
    return _binding_answer(req, rs, cr)


def delete_binding(req: Request, rsid: str, role: str) -> Response:
    req.org.delete_binding(rsid, role)
    return NO_CONTENT


def remove_binding_member(req: Request, rsid: str, role: str, mid: str) -> Response:
    req.org.remove_binding_member(rsid, role, mid)
    return NO_CONTENT


_RS = "/api/v1/iam/resource-sets/{rsid}"
_CLIENT = "/oauth2/v1/clients/{cid}/roles"
_MEMBERSHIP = "resourceset.membership"

ROUTES = [
    route("GET", "/api/v1/users/{uid}/roles", user_roles, ROLES_READ),
    route("POST", "/api/v1/users/{uid}/roles", assign_user_role, ROLES_MANAGE, "role.assignment"),
    route("DELETE", "/api/v1/users/{uid}/roles/{rid}", unassign_user_role, ROLES_MANAGE, "role.assignment"),
    route("GET", "/api/v1/groups/{gid}/roles", group_roles, ROLES_READ),
    route("POST", "/api/v1/groups/{gid}/roles", assign_group_role, ROLES_MANAGE, "role.assignment"),
    route("DELETE", "/api/v1/groups/{gid}/roles/{rid}", unassign_group_role, ROLES_MANAGE, "role.assignment"),
    *_target_routes("user", "/api/v1/users/{uid}", "uid"),
    *_target_routes("group", "/api/v1/groups/{gid}", "gid"),
    route("GET", _CLIENT, client_roles, ROLES_READ),
    route("POST", _CLIENT, assign_client_role, ROLES_MANAGE, "role.assignment"),
    route("GET", f"{_CLIENT}/{{rid}}", get_client_role, ROLES_READ),
    route("DELETE", f"{_CLIENT}/{{rid}}", unassign_client_role, ROLES_MANAGE, "role.assignment"),
    *_target_routes("client", "/oauth2/v1/clients/{cid}", "cid"),
    route("GET", "/api/v1/iam/assignees/users", assignees_users, ROLES_READ),
    route("GET", "/api/v1/iam/roles", list_custom_roles, ROLES_READ),
    route("GET", "/api/v1/iam/roles/{rid}", get_custom_role, ROLES_READ),
    route("GET", "/api/v1/iam/roles/{rid}/permissions", role_permissions, ROLES_READ),
    route("GET", "/api/v1/iam/resource-sets", list_resource_sets, ROLES_READ),
    route("GET", _RS, get_resource_set, ROLES_READ),
    route("GET", f"{_RS}/bindings", list_bindings, ROLES_READ),
    route("POST", f"{_RS}/bindings", create_binding, ROLES_MANAGE, _MEMBERSHIP),
    route("GET", f"{_RS}/bindings/{{role}}", get_binding, ROLES_READ),
    route("DELETE", f"{_RS}/bindings/{{role}}", delete_binding, ROLES_MANAGE, _MEMBERSHIP),
    route("GET", f"{_RS}/bindings/{{role}}/members", list_binding_members, ROLES_READ),
    route("PATCH", f"{_RS}/bindings/{{role}}/members", add_binding_members, ROLES_MANAGE, _MEMBERSHIP),
    route("GET", f"{_RS}/bindings/{{role}}/members/{{mid}}", get_binding_member, ROLES_READ),
    route("DELETE", f"{_RS}/bindings/{{role}}/members/{{mid}}", remove_binding_member, ROLES_MANAGE, _MEMBERSHIP),
]


def snapshot(org) -> dict:
    """`role_assignments`, `custom_roles` and `resource_sets` of /__sim/state. Every binding member
    is also a role assignment of type CUSTOM; the IAM-based roles are assigned by type, like the
    standard roles. A principal_type is "user", "group" or "client" (a service app, by client id)."""
    roles = [{"principal_type": ra.principal_type, "principal_id": ra.principal_id, "type": ra.type,
              "role": None, "resource_set": None, "status": ra.status,
              "targets": {"groups": list(ra.group_targets), "apps": list(ra.app_targets),
                          "app_instances": list(ra.instance_targets)}}
             for ras in org.roles.values() for ra in ras.values()]
    sets = []
    for rs in (org.resource_sets[i] for i in org.resource_set_order):
        bindings = []
        for rid in rs.binding_ids:
            b = rs.bindings[rid]
            members = [{"type": m.principal_type, "id": m.principal_id} for m in b.members.values()]
            bindings.append({"role": rid, "members": members})
            roles.extend({"principal_type": m.principal_type, "principal_id": m.principal_id,
                          "type": "CUSTOM", "role": rid, "resource_set": rs.id, "status": "ACTIVE"}
                         for m in b.members.values())
        sets.append({"id": rs.id, "label": rs.label, "bindings": bindings})
    return {
        "role_assignments": roles,
        "custom_roles": [{"id": c.id, "label": c.label, "type": c.iam_type or "CUSTOM"}
                         for c in (org.custom_roles[i] for i in org.custom_role_order)],
        "resource_sets": sets,
    }
