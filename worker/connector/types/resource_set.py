"""Resource sets and their bindings: the resource-sets list, each set's bindings (one per bound
custom role) and each binding's members; the resource-set and resourceset-binding resources and
entitlements; binding-member grant/revoke, binding deletion; and the write-through rule that a
binding member also holds the bound custom role (baton-okta resource_sets.go,
resource_sets_bindings.go; reference/baton-okta.md §1.6, §1.7, §2, §3)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.pages import (
    BadObject,
    PageResult,
    StreamSpec,
    body_next,
    each,
    object_id,
    q,
    records,
    text,
)
from worker.connector.types import custom_role
from worker.connector.types.base import ChangeSources, Dirty, ResourceType, Stream
from worker.connector.types.role import ALREADY_ASSIGNED, roles_path, service_client_id
from worker.model import (
    Entitlement,
    Grant,
    GrantAdded,
    GrantRemoved,
    Resource,
    ResourceRemoved,
    container_key,
    parse_entitlement_id,
    resource_key,
)
from worker.okta.errors import OktaConflict
from worker.provisioning.context import PERM_ROLES, ExecContext, Outcome, already, call

NAME = "resource-set"
BINDING = "resourceset-binding"
RESOURCE_SETS = "resource-sets"  # stream kinds
BINDINGS = "resource-set-bindings"
BINDING_MEMBERS = "binding-members"
_PERM_READ = "okta.roles.read (an admin role that can view resource sets)"


# ------------------------------------------------------------------------------------ ids

def bindings(rsid: str, display_name: str = "") -> Entitlement:
    """`resource-set:<rs>:bindings`: granted to the custom roles bound to the set."""
    return Entitlement(NAME, rsid, "bindings", display_name)


def binding_id(rsid: str, role_id: str) -> str:
    """A binding's resource id: `<resourceSetId>:<roleId>`."""
    return f"{rsid}:{role_id}"


def split_binding_id(bid: str) -> tuple[str, str]:
    rsid, _, role_id = bid.partition(":")
    return rsid, role_id


def binding_member(rsid: str, role_id: str, display_name: str = "") -> Entitlement:
    """`resourceset-binding:<rs>:<role>:member`"""
    return Entitlement(BINDING, binding_id(rsid, role_id), "member", display_name)


# ------------------------------------------------------------------------------------ mapping

def resource(rs: Mapping[str, Any]) -> Resource:
    rsid = object_id(rs, "resource set")
    label = text(rs.get("label")) or rsid
    return Resource(NAME, rsid, label, {"id": rsid, "label": label, "description": rs.get("description")})


def entitlement(res: Resource) -> Entitlement:
    return bindings(res.id, f"{res.display_name} Resource Set Binding")


def binding_resource(rsid: str, role_id: str, rs_label: str, rs_description: str | None) -> Resource:
    bid = binding_id(rsid, role_id)
    data = {"id": bid, "label": rs_label, "description": rs_description, "resource_set": rsid, "role": role_id}
    return Resource(BINDING, bid, rs_label, data, parent=resource_key(NAME, rsid))


def binding_entitlement(res: Resource) -> Entitlement:
    return Entitlement(BINDING, res.id, "member", f"{res.display_name} Resource Set Binding Member")


_PRINCIPAL_HREF = re.compile(r"/(?:api/v1/(users|groups)|oauth2/v1/(clients))/([A-Za-z0-9_-]+)/?$")
_HREF_TYPES = {"users": "user", "groups": "group", "clients": "app"}


def principal_from_member(member: Mapping[str, Any]) -> tuple[str, str] | None:
    """A binding member -> ("user"|"group"|"app", id), from the member's links.

    Okta names the member by the URL of the user, group or OAuth client (`_links.self.href`, in some
    answers `_links.member.href` or `href`); a client is its service app (a client id set apart from
    the app id at creation would name no synced app: its grant is pruned). Unlike baton-okta, a member
    that names none gives None (the caller warns) instead of reusing the previous member's principal."""
    links = member.get("_links") if isinstance(member, Mapping) else None
    hrefs: list[Any] = []
    if isinstance(links, Mapping):
        for name in ("self", "member", "user", "group"):
            link = links.get(name)
            if isinstance(link, Mapping):
                hrefs.append(link.get("href"))
    if isinstance(member, Mapping):
        hrefs.append(member.get("href"))
    for href in hrefs:
        if isinstance(href, str):
            m = _PRINCIPAL_HREF.search(href.split("?")[0])
            if m:
                return _HREF_TYPES[m.group(1) or m.group(2)], m.group(3)
    return None


# ------------------------------------------------------------------------------------ streams

def _initial_streams(options: SyncOptions) -> list[StreamSpec]:
    return [StreamSpec(RESOURCE_SETS, "/api/v1/iam/resource-sets")] if options.sync_custom_roles else []


def _resource_sets(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult(next_url=body_next(body))

    def one(rs: Any) -> None:
        res = resource(rs)
        out.resources.append(res)
        out.entitlements.append(entitlement(res))
        meta = (("label", res.display_name), ("description", rs.get("description") or ""))
        out.children.append(StreamSpec(BINDINGS, f"/api/v1/iam/resource-sets/{q(res.id)}/bindings", res.key,
                                       meta=meta))
    each(out, "resource sets", records(body, "resource-sets", "resourceSets"), one)
    return out


def _bindings(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult(next_url=body_next(body))
    rsid = spec.parent_id
    label = spec.meta_value("label", rsid)
    description = spec.meta_value("description") or None

    def one(role: Any) -> None:
        role_id = object_id(role, "resource set binding")
        res = binding_resource(rsid, role_id, label, description)
        out.resources.append(res)
        out.entitlements.append(binding_entitlement(res))
        out.grants.append(Grant(bindings(rsid).id, custom_role.NAME, role_id))
        out.children.append(StreamSpec(
            BINDING_MEMBERS, f"/api/v1/iam/resource-sets/{q(rsid)}/bindings/{q(role_id)}/members", res.key))
    each(out, f"bindings of resource set {rsid}", records(body, "roles"), one)
    return out


def _binding_members(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult(next_url=body_next(body))
    ent = Entitlement(BINDING, spec.parent_id, "member").id

    def one(member: Any) -> None:
        principal = principal_from_member(member)
        if principal is None:
            raise BadObject(f"binding member {member.get('id') if isinstance(member, Mapping) else member!r} "
                            "names no user, group or OAuth client")
        ann = {"member_id": member["id"]} if isinstance(member.get("id"), str) else {}
        out.grants.append(Grant(ent, principal[0], principal[1], annotations=ann))
    each(out, f"members of binding {spec.parent_id}", records(body, "members", "value"), one)
    return out


# ------------------------------------------------------------------------------------ grant / revoke

def _principal_path(ctx: ExecContext, ptype: str, okta_id: str) -> str:
    """The principal's URL path for a member href (`okta_id`: a service app's client id), failing
    clearly on an unknown user or group before Okta sees a dangling href."""
    if ptype == "app":   # its client id was read from the app, which exists
        return f"/oauth2/v1/clients/{okta_id}"
    path = f"/api/v1/{'users' if ptype == 'user' else 'groups'}/{okta_id}"
    call(ctx, "GET", path, PERM_ROLES, what=f"{ptype} {okta_id}")
    return path


def _members(ctx: ExecContext, rs: str, role_id: str) -> list[dict[str, Any]] | None:
    """The binding's members, or None when there is no binding of this role."""
    body = call(ctx, "GET", f"/api/v1/iam/resource-sets/{rs}/bindings/{role_id}/members", PERM_ROLES,
                absent_ok=True)
    if body is None:
        return None
    if isinstance(body, dict):
        return list(body.get("members") or body.get("value") or [])
    return list(body)


def _find_member(members: list[dict[str, Any]], ptype: str, pid: str) -> dict[str, Any] | None:
    return next((m for m in members if principal_from_member(m) == (ptype, pid)), None)


def _membership(grant: bool, ctx: ExecContext, ent: Entitlement, ptype: str, pid: str) -> Outcome:
    rs, role_id = split_binding_id(ent.resource_id)
    g = Grant(ent.id, ptype, pid)
    call(ctx, "GET", f"/api/v1/iam/resource-sets/{rs}", PERM_ROLES, what=f"resource set {rs}")
    okta_id = service_client_id(ctx, pid) if ptype == "app" else pid   # how Okta names the member
    members = _members(ctx, rs, role_id)
    found = _find_member(members or [], ptype, okta_id)
    if grant:
        if found:
            return already("granted", g)
        path = _principal_path(ctx, ptype, okta_id)
        if members is None:  # no binding of this role yet: a CUSTOM role assignment creates it
            try:
                made = call(ctx, "POST", roles_path(ptype, okta_id), PERM_ROLES,
                            json={"type": "CUSTOM", "role": role_id, "resource-set": rs}, what=f"custom role {role_id}")
            except OktaConflict as exc:
                if exc.error_code not in ALREADY_ASSIGNED:
                    raise
                return already("granted", g)
            member_id = (made or {}).get("id")   # the assignment's id is the binding member's
        else:
            href = ctx.base_url.rstrip("/") + path
            call(ctx, "PATCH", f"/api/v1/iam/resource-sets/{rs}/bindings/{role_id}/members", PERM_ROLES,
                 json={"additions": [href]}, what=f"binding {rs}/{role_id}")
            member_id = (_find_member(_members(ctx, rs, role_id) or [], ptype, okta_id) or {}).get("id")
        ann = {"member_id": member_id} if isinstance(member_id, str) else {}
        return Outcome(f"granted: {g.principal} on {ent.id}", changes=[GrantAdded(Grant(ent.id, ptype, pid, annotations=ann))])
    if not found:
        return already("revoked", g)
    call(ctx, "DELETE", f"/api/v1/iam/resource-sets/{rs}/bindings/{role_id}/members/{found['id']}",
         PERM_ROLES, absent_ok=True)
    return Outcome(f"revoked: {g.principal} on {ent.id}", changes=[GrantRemoved(g)])


def _delete_binding(ctx: ExecContext, ent: Entitlement, ptype: str, role_id: str) -> Outcome:
    """Revoke `resource-set:<rs>:bindings` from `custom-role:<role>`: delete the whole binding."""
    rs = ent.resource_id
    g = Grant(ent.id, ptype, role_id)
    if _members(ctx, rs, role_id) is None:
        return already("revoked", g)
    call(ctx, "DELETE", f"/api/v1/iam/resource-sets/{rs}/bindings/{role_id}", PERM_ROLES, absent_ok=True)
    changes = [GrantRemoved(g), ResourceRemoved(resource_key(BINDING, binding_id(rs, role_id)))]
    return Outcome(f"revoked: {g.principal} on {ent.id} (binding deleted)", changes=changes)


def _binding_not_grantable(kind: str, ent: Entitlement) -> str:
    return (f"entitlement {ent.id!r}: a binding is created by granting a member: "
            f"'resourceset-binding:{ent.resource_id}:<roleId>:member' to a user, group or service app")


# ------------------------------------------------------------------------------------ write-through

def _implied_grants(grant: Grant) -> list[Grant]:
    """A binding member also holds the bound custom role: Okta lists it among the principal's
    roles (the assignment's id is the member's), and the sync emits it when custom roles are synced
    (i.e. the role is a resource)."""
    rs, role_id = split_binding_id(parse_entitlement_id(grant.entitlement_id).resource_id)
    member_id = grant.annotations.get("member_id")
    ann = {"id": member_id, "resource-set": rs} if member_id else {}
    return [Grant(custom_role.assigned(role_id).id, grant.principal_type, grant.principal_id, annotations=ann)]



# ------------------------------------------------------------------------------------ changes

# A binding's members change with a user's, group's or client's privileges: those events re-list
# every resource set's bindings and their members (a few lists). So does an app's activation: a
# service app's membership is pruned while the app is not synced (inactive), and must come back.
# (A deactivation needs nothing: the app leaves the apps list, which removes every grant naming it.)
BINDING_EVENTS = ("iam.resourceset.bindings.add", "iam.resourceset.bindings.delete", "iam.resourceset.create",
                  "iam.resourceset.update", "iam.resourceset.delete", "user.account.privilege.grant",
                  "user.account.privilege.revoke", "group.privilege.grant", "group.privilege.revoke",
                  "app.oauth2.client.privilege.grant", "app.oauth2.client.privilege.revoke",
                  "application.lifecycle.activate")


def _resource_set_lists(options: SyncOptions, since: str, also: tuple[str, ...]) -> list[StreamSpec]:
    return _initial_streams(options)


def _resource_set_dirty(event: Any, options: SyncOptions) -> Dirty:
    return Dirty(open_children_of=(RESOURCE_SETS,))


TYPE = ResourceType(
    NAME,
    streams=(
        Stream(RESOURCE_SETS, "resource sets", _PERM_READ, _resource_sets),
        Stream(BINDINGS, "resource set bindings", _PERM_READ, _bindings),
    ),
    initial_streams=_initial_streams,
    revoke=_delete_binding,
    not_provisionable=_binding_not_grantable,
    changes=ChangeSources(lists=_resource_set_lists, event_types=BINDING_EVENTS, dirty=_resource_set_dirty),
    container_of=lambda item: (container_key(BINDINGS, parse_entitlement_id(item.entitlement_id).resource)
                               if isinstance(item, Grant) else container_key(RESOURCE_SETS, None)),
)

BINDING_TYPE = ResourceType(
    BINDING,
    streams=(Stream(BINDING_MEMBERS, "resource set binding members", _PERM_READ, _binding_members),),
    grant=functools.partial(_membership, True),
    revoke=functools.partial(_membership, False),
    implied_grants=_implied_grants,
    container_of=lambda item: container_key(BINDING_MEMBERS, parse_entitlement_id(item.entitlement_id).resource
                                            if isinstance(item, Grant) else item.key),
)
