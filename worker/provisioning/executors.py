"""Grant and revoke, one function pair per entitlement type (baton-okta §3, with its gaps closed).

Every executor reads the current state in Okta before it mutates, so running it again (a retry,
a redelivered message after a killed worker) changes nothing and says "already granted" or
"already revoked". Differences from baton-okta: standard roles can be granted to groups, a user's
role revoke only removes a *direct* assignment (never a group's), group membership reports
already-granted/revoked, and E0000046 becomes a clear message.
"""

from __future__ import annotations

from typing import Any

from worker.connector.mapping import principal_from_member
from worker.model import parse_entitlement_id, parse_principal
from worker.okta.errors import OktaConflict, OktaPermissionDenied
from worker.provisioning.context import (
    PERM_APPS,
    PERM_GROUPS,
    PERM_ROLES,
    Change,
    ExecContext,
    Outcome,
    call,
    list_all,
)
from worker.provisioning.errors import NotFound, ProvisionError


def _added(ent_id: str, ptype: str, pid: str, **annotations: Any) -> Change:
    return Change("grant+", {"entitlement": ent_id, "principal_type": ptype, "principal_id": pid,
                             "annotations": annotations})


def _removed(ent_id: str, ptype: str, pid: str) -> Change:
    return Change("grant-", {"entitlement": ent_id, "principal_type": ptype, "principal_id": pid})


def _already(verb: str, ent_id: str, principal: str, note: str = "") -> Outcome:
    return Outcome(f"already {verb}: {principal} on {ent_id}{note}", {"already": True})


# --- group membership (users) -------------------------------------------------------------------

def _group(ctx: ExecContext, gid: str) -> dict[str, Any]:
    return call(ctx, "GET", f"/api/v1/groups/{gid}", PERM_GROUPS, what=f"group {gid}")


def _user(ctx: ExecContext, uid: str) -> dict[str, Any]:
    return call(ctx, "GET", f"/api/v1/users/{uid}", PERM_GROUPS, what=f"user {uid}")


def _is_member(ctx: ExecContext, gid: str, uid: str) -> bool:
    _user(ctx, uid)  # a clear not-found for the user before listing its groups
    return any(g.get("id") == gid for g in list_all(ctx, f"/api/v1/users/{uid}/groups", PERM_GROUPS,
                                                      what=f"user {uid}", params={"limit": 200}))


def _check_group_editable(group: dict[str, Any], gid: str) -> None:
    gtype = group.get("type")
    if gtype in ("APP_GROUP", "BUILT_IN"):
        raise ProvisionError(
            f"group {gid} is a {gtype} group: Okta does not allow changing its membership "
            f"({'managed by the app that pushes it' if gtype == 'APP_GROUP' else 'a system group'})")


def group_member(ctx: ExecContext, grant: bool, gid: str, uid: str, ent_id: str) -> Outcome:
    group = _group(ctx, gid)
    member = _is_member(ctx, gid, uid)
    principal = f"user:{uid}"
    if grant and member:
        return _already("granted", ent_id, principal)
    if not grant and not member:
        return _already("revoked", ent_id, principal)
    _check_group_editable(group, gid)
    call(ctx, "PUT" if grant else "DELETE", f"/api/v1/groups/{gid}/users/{uid}", PERM_GROUPS,
         what=f"group {gid} or user {uid}")
    change = _added(ent_id, "user", uid) if grant else _removed(ent_id, "user", uid)
    return Outcome(f"{'granted' if grant else 'revoked'}: {principal} on {ent_id}", changes=[change])


# --- app access (users and groups) --------------------------------------------------------------

def app_user(ctx: ExecContext, grant: bool, aid: str, uid: str, ent_id: str) -> Outcome:
    principal = f"user:{uid}"
    current = call(ctx, "GET", f"/api/v1/apps/{aid}/users/{uid}", PERM_APPS, absent_ok=True,
                   parents=("AppInstance", "User"))
    if grant:
        if current is not None:
            scope = current.get("scope")
            return _already("granted", ent_id, principal, " (through a group)" if scope == "GROUP" else "")
        user = _user(ctx, uid)
        profile = user.get("profile") or {}
        username = profile.get("email") or profile.get("login")
        if not username:
            raise ProvisionError(f"user {uid} has neither an email nor a login to use as the app username")
        body = {"id": uid, "scope": "USER", "credentials": {"userName": username}}
        try:
            call(ctx, "POST", f"/api/v1/apps/{aid}/users", PERM_APPS, json=body, what=f"app {aid}")
        except OktaConflict as exc:
            if exc.error_code == "E0000062":  # assigned meanwhile
                return _already("granted", ent_id, principal)
            raise
        return Outcome(f"granted: {principal} on {ent_id} (userName {username})",
                       {"userName": username}, [_added(ent_id, "user", uid, scope="USER", status="ACTIVE")])
    if current is None:
        return _already("revoked", ent_id, principal)
    if current.get("scope") == "GROUP":
        raise ProvisionError(_through_group(uid, aid))
    try:
        call(ctx, "DELETE", f"/api/v1/apps/{aid}/users/{uid}", PERM_APPS, raw_403=("E0000046",))
    except OktaPermissionDenied:
        raise ProvisionError(_through_group(uid, aid)) from None
    return Outcome(f"revoked: {principal} on {ent_id}", changes=[_removed(ent_id, "user", uid)])


def _through_group(uid: str, aid: str) -> str:
    return (f"cannot revoke app {aid} from user {uid}: the user's access holds through a group "
            f"assigned to the app (Okta E0000046); revoke the group's app access or remove the user "
            f"from that group instead")


def app_group(ctx: ExecContext, grant: bool, aid: str, gid: str, ent_id: str) -> Outcome:
    principal = f"group:{gid}"
    current = call(ctx, "GET", f"/api/v1/apps/{aid}/groups/{gid}", PERM_APPS, absent_ok=True,
                   parents=("AppInstance", "UserGroup"))
    if grant:
        if current is not None:
            return _already("granted", ent_id, principal)
        call(ctx, "PUT", f"/api/v1/apps/{aid}/groups/{gid}", PERM_APPS, json={}, parents=("AppInstance", "UserGroup"),
             what=f"app {aid} or group {gid}")
        return Outcome(f"granted: {principal} on {ent_id}", changes=[_added(ent_id, "group", gid)])
    if current is None:
        return _already("revoked", ent_id, principal)
    call(ctx, "DELETE", f"/api/v1/apps/{aid}/groups/{gid}", PERM_APPS, absent_ok=True)
    return Outcome(f"revoked: {principal} on {ent_id}", changes=[_removed(ent_id, "group", gid)])


# --- standard roles (users and groups) ----------------------------------------------------------

def role(ctx: ExecContext, grant: bool, role_type: str, ptype: str, pid: str, ent_id: str) -> Outcome:
    base = f"/api/v1/{'users' if ptype == 'user' else 'groups'}/{pid}/roles"
    principal = f"{ptype}:{pid}"
    assignments = call(ctx, "GET", base, PERM_ROLES, what=f"{ptype} {pid}") or []
    direct = "USER" if ptype == "user" else "GROUP"
    mine = [a for a in assignments if a.get("type") == role_type and a.get("status", "ACTIVE") != "INACTIVE"
            and a.get("assignmentType", direct) == direct]
    if grant:
        if mine:
            return _already("granted", ent_id, principal)
        try:
            made = call(ctx, "POST", base, PERM_ROLES, json={"type": role_type}, what=f"{ptype} {pid}")
        except OktaConflict as exc:
            if exc.error_code in ("E0000090", "E0000263"):
                return _already("granted", ent_id, principal)
            raise
        aid = (made or {}).get("id")
        return Outcome(f"granted: {principal} on {ent_id}", {"assignment_id": aid},
                       [_added(ent_id, ptype, pid, **({"id": aid} if aid else {}))])
    if not mine:
        via_group = ptype == "user" and any(a.get("type") == role_type for a in assignments)
        return _already("revoked", ent_id, principal, " (the user still holds it through a group)"
                        if via_group else "")
    for a in mine:
        call(ctx, "DELETE", f"{base}/{a['id']}", PERM_ROLES, absent_ok=True)
    return Outcome(f"revoked: {principal} on {ent_id}", changes=[_removed(ent_id, ptype, pid)])


# --- custom roles: resource-set binding members (users and groups) ------------------------------

def _member_href(ctx: ExecContext, ptype: str, pid: str) -> str:
    return f"{ctx.base_url.rstrip('/')}/api/v1/{'users' if ptype == 'user' else 'groups'}/{pid}"


def _binding_members(ctx: ExecContext, rs: str, role_id: str) -> list[dict[str, Any]] | None:
    body = call(ctx, "GET", f"/api/v1/iam/resource-sets/{rs}/bindings/{role_id}/members", PERM_ROLES,
                absent_ok=True)
    if body is None:
        return None
    if isinstance(body, dict):
        return list(body.get("members") or body.get("value") or [])
    return list(body)


def _find_member(members: list[dict[str, Any]], ptype: str, pid: str) -> dict[str, Any] | None:
    for m in members:
        if principal_from_member(m) == (ptype, pid):
            return m
    return None


def binding_member(ctx: ExecContext, grant: bool, rs: str, role_id: str, ptype: str, pid: str,
                   ent_id: str) -> Outcome:
    principal = f"{ptype}:{pid}"
    call(ctx, "GET", f"/api/v1/iam/resource-sets/{rs}", PERM_ROLES, what=f"resource set {rs}")
    members = _binding_members(ctx, rs, role_id)
    found = _find_member(members or [], ptype, pid)
    if grant:
        if found:
            return _already("granted", ent_id, principal)
        # Fail clearly on an unknown principal before Okta sees a dangling href.
        call(ctx, "GET", f"/api/v1/{'users' if ptype == 'user' else 'groups'}/{pid}", PERM_ROLES,
             what=f"{ptype} {pid}")
        href = _member_href(ctx, ptype, pid)
        if members is None:  # no binding of this role yet: a CUSTOM role assignment creates it
            try:
                call(ctx, "POST", f"/api/v1/{'users' if ptype == 'user' else 'groups'}/{pid}/roles", PERM_ROLES,
                     json={"type": "CUSTOM", "role": role_id, "resource-set": rs}, what=f"custom role {role_id}")
            except OktaConflict as exc:
                if exc.error_code not in ("E0000090", "E0000263"):
                    raise
                return _already("granted", ent_id, principal)
        else:
            call(ctx, "PATCH", f"/api/v1/iam/resource-sets/{rs}/bindings/{role_id}/members", PERM_ROLES,
                 json={"additions": [href]}, what=f"binding {rs}/{role_id}")
        return Outcome(f"granted: {principal} on {ent_id}", changes=[_added(ent_id, ptype, pid)])
    if not found:
        return _already("revoked", ent_id, principal)
    call(ctx, "DELETE", f"/api/v1/iam/resource-sets/{rs}/bindings/{role_id}/members/{found['id']}",
         PERM_ROLES, absent_ok=True)
    return Outcome(f"revoked: {principal} on {ent_id}", changes=[_removed(ent_id, ptype, pid)])


def binding(ctx: ExecContext, rs: str, role_id: str, ent_id: str) -> Outcome:
    """Revoke `resource-set:<rs>:bindings` from `custom-role:<role>`: delete the whole binding."""
    members = _binding_members(ctx, rs, role_id)
    if members is None:
        return _already("revoked", ent_id, f"custom-role:{role_id}")
    call(ctx, "DELETE", f"/api/v1/iam/resource-sets/{rs}/bindings/{role_id}", PERM_ROLES, absent_ok=True)
    changes = [_removed(ent_id, "custom-role", role_id)]
    changes.append(Change("resource-", {"resource": f"resourceset-binding:{rs}:{role_id}"}))
    return Outcome(f"revoked: custom-role:{role_id} on {ent_id} (binding deleted)", changes=changes)


# --- dispatch -----------------------------------------------------------------------------------

def run_grant(ctx: ExecContext, grant: bool, payload: dict[str, Any]) -> Outcome:
    """Grant (True) or revoke (False) the normalized {entitlement, principal} payload."""
    ent = parse_entitlement_id(payload["entitlement"])
    ptype, pid = parse_principal(payload["principal"])
    rtype, rid = ent.resource_type, ent.resource_id
    if rtype == "group":
        return group_member(ctx, grant, rid, pid, ent.id)
    if rtype == "app":
        if ptype == "user":
            return app_user(ctx, grant, rid, pid, ent.id)
        return app_group(ctx, grant, rid, pid, ent.id)
    if rtype == "role":
        return role(ctx, grant, rid, ptype, pid, ent.id)
    if rtype == "resourceset-binding":
        rs, role_id = rid.split(":")
        return binding_member(ctx, grant, rs, role_id, ptype, pid, ent.id)
    if rtype == "resource-set" and not grant:
        return binding(ctx, rid, pid, ent.id)
    raise NotFound(f"no executor for entitlement {ent.id!r}")  # intake refuses these first
