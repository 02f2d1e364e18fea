"""Custom roles: the custom roles list, the custom-role resource and its `assigned` entitlement
(baton-okta custom_role.go; reference/baton-okta.md §1.5). Who holds one is read from the role
assignments (role.py); it is granted and revoked as a resource-set binding member
(resource_set.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.pages import PageResult, StreamSpec, body_next, each, object_id, records, text
from worker.connector.types.base import PAST, ChangeSources, ResourceType, Stream
from worker.model import Entitlement, Grant, Resource, container_key, resource_key

NAME = "custom-role"
CUSTOM_ROLES = "custom-roles"  # stream kind


def key(role_id: str) -> str:
    return resource_key(NAME, role_id)


def assigned(role_id: str, display_name: str = "") -> Entitlement:
    """`custom-role:<id>:assigned`"""
    return Entitlement(NAME, role_id, "assigned", display_name)


def resource(role: Mapping[str, Any]) -> Resource:
    rid = object_id(role, "custom role")
    label = text(role.get("label")) or rid
    data = {"id": rid, "label": label, "type": role.get("type"), "description": role.get("description")}
    return Resource(NAME, rid, label, data)


def entitlement(res: Resource) -> Entitlement:
    return assigned(res.id, f"{res.display_name} Role Member")


def _initial_streams(options: SyncOptions) -> list[StreamSpec]:
    return [StreamSpec(CUSTOM_ROLES, "/api/v1/iam/roles")] if options.sync_custom_roles else []


def _custom_roles(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult(next_url=body_next(body))

    def one(role: Any) -> None:
        res = resource(role)
        out.resources.append(res)
        out.entitlements.append(entitlement(res))
    each(out, "custom roles", records(body, "roles"), one)
    return out


def _not_provisionable(kind: str, ent: Entitlement) -> str:
    return (f"entitlement {ent.id!r}: custom roles are {PAST[kind]} through a resource-set binding "
            f"member: use 'resourceset-binding:<resourceSetId>:{ent.resource_id}:member'")



def _whole_lists(options: SyncOptions, since: str, also: tuple[str, ...]) -> list[StreamSpec]:
    return _initial_streams(options)  # one small list: re-listed whole every incremental run


def _assignments(grant: Grant) -> str:
    from worker.connector.types.role import assignments_container  # role imports this module
    return assignments_container(grant)  # Okta lists custom role assignments among a principal's roles


TYPE = ResourceType(
    NAME,
    streams=(Stream(CUSTOM_ROLES, "custom roles", "okta.roles.read (an admin role that can view roles)",
                    _custom_roles),),
    initial_streams=_initial_streams,
    not_provisionable=_not_provisionable,
    changes=ChangeSources(lists=_whole_lists),
    container_of=lambda item: _assignments(item) if isinstance(item, Grant) else container_key(CUSTOM_ROLES, None),
)
