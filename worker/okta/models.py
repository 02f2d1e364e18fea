"""Small typed views of Okta objects, tolerant of unknown and missing fields.

Okta adds properties without notice and omits nulls, so every parse function ignores extra fields
and defaults missing ones to None/empty. Only a required field of the wrong type (an `id` that is
not a non-empty string, a body that is not an object) raises ModelError, naming the model and field.
Each model keeps the original object in `raw`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "ModelError", "User", "Group", "App", "AppUser", "AppGroup", "RoleAssignment", "CustomRole",
    "ResourceSet", "Binding", "BindingMember", "ApiToken", "IamAssignee",
    "parse_user", "parse_group", "parse_app", "parse_app_user", "parse_app_group",
    "parse_role_assignment", "parse_custom_role", "parse_resource_set", "parse_binding",
    "parse_binding_member", "parse_api_token", "parse_iam_assignee", "parse_list", "principal_from_href",
]


class ModelError(ValueError):
    """An Okta object missing a required field or carrying it with the wrong type."""


def _obj(data: Any, model: str) -> dict:
    if not isinstance(data, dict):
        raise ModelError(f"{model}: expected a JSON object, got {type(data).__name__}")
    return data


def _req_str(data: dict, key: str, model: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        got = "missing" if key not in data else f"{type(value).__name__} {value!r}"[:80]
        raise ModelError(f"{model}.{key} must be a non-empty string, got {got}")
    return value


def _str(data: Any, key: str) -> str | None:
    if not isinstance(data, dict):
        return None
    value = data.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _dict(data: Any, key: str) -> dict:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _int(data: Any, key: str) -> int | None:
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _href(data: dict, rel: str) -> str | None:
    link = _dict(data, "_links").get(rel)
    if isinstance(link, list):  # some rels (logo) are arrays
        link = link[0] if link else None
    return _str(link, "href")


def _last_segment(href: str | None, after: str) -> str | None:
    """The path segment following `after` in an href, e.g. users -> 00u1 in /api/v1/users/00u1."""
    if not href:
        return None
    segments = [s for s in urlsplit(href).path.split("/") if s]
    for i, seg in enumerate(segments[:-1]):
        if seg == after:
            return segments[i + 1]
    return None


def principal_from_href(href: str | None) -> tuple[str, str] | None:
    """('user', id) / ('group', id) / ('client', id) from an assignee/member href, else None."""
    if not href:
        return None
    segments = [s for s in urlsplit(href).path.split("/") if s]
    for kind, name in (("users", "user"), ("groups", "group"), ("clients", "client")):
        if kind in segments:
            i = len(segments) - 1 - segments[::-1].index(kind)
            if i + 1 < len(segments):
                return name, segments[i + 1]
    return None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    status: str | None
    login: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    display_name: str | None
    second_email: str | None
    created: str | None
    last_updated: str | None
    last_login: str | None
    status_changed: str | None
    type_id: str | None
    profile: dict = field(repr=False)
    raw: dict = field(repr=False)


def parse_user(data: Any) -> User:
    d = _obj(data, "User")
    profile = _dict(d, "profile")
    return User(
        id=_req_str(d, "id", "User"), status=_str(d, "status"), login=_str(profile, "login"),
        email=_str(profile, "email"), first_name=_str(profile, "firstName"),
        last_name=_str(profile, "lastName"), display_name=_str(profile, "displayName"),
        second_email=_str(profile, "secondEmail"), created=_str(d, "created"),
        last_updated=_str(d, "lastUpdated"), last_login=_str(d, "lastLogin"),
        status_changed=_str(d, "statusChanged"), type_id=_str(_dict(d, "type"), "id"),
        profile=profile, raw=d)


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    type: str | None  # OKTA_GROUP, APP_GROUP, BUILT_IN
    name: str | None
    description: str | None
    object_class: tuple[str, ...]
    created: str | None
    last_updated: str | None
    last_membership_updated: str | None
    source_app_id: str | None  # APP_GROUP: the app it is imported from
    users_count: int | None  # with expand=stats
    profile: dict = field(repr=False)
    raw: dict = field(repr=False)


def parse_group(data: Any) -> Group:
    d = _obj(data, "Group")
    profile = _dict(d, "profile")
    oc = d.get("objectClass")
    stats = _dict(_dict(d, "_embedded"), "stats")
    source = _dict(d, "source")
    return Group(
        id=_req_str(d, "id", "Group"), type=_str(d, "type"), name=_str(profile, "name"),
        description=_str(profile, "description"),
        object_class=tuple(x for x in oc if isinstance(x, str)) if isinstance(oc, list) else (),
        created=_str(d, "created"), last_updated=_str(d, "lastUpdated"),
        last_membership_updated=_str(d, "lastMembershipUpdated"),
        source_app_id=_str(source, "id") or _last_segment(_href(d, "source"), "apps"),
        users_count=_int(stats, "usersCount"), profile=profile, raw=d)


@dataclass(frozen=True, slots=True)
class App:
    id: str
    name: str | None
    label: str | None
    status: str | None  # ACTIVE, INACTIVE
    sign_on_mode: str | None
    created: str | None
    last_updated: str | None
    raw: dict = field(repr=False)


def parse_app(data: Any) -> App:
    d = _obj(data, "App")
    return App(id=_req_str(d, "id", "App"), name=_str(d, "name"), label=_str(d, "label"),
               status=_str(d, "status"), sign_on_mode=_str(d, "signOnMode"), created=_str(d, "created"),
               last_updated=_str(d, "lastUpdated"), raw=d)


@dataclass(frozen=True, slots=True)
class AppUser:
    id: str  # the Okta user id
    scope: str | None  # USER (direct) or GROUP
    status: str | None
    user_name: str | None
    external_id: str | None
    sync_state: str | None
    group_id: str | None  # for scope GROUP, when Okta links the group
    created: str | None
    last_updated: str | None
    profile: dict = field(repr=False)
    raw: dict = field(repr=False)


def parse_app_user(data: Any) -> AppUser:
    d = _obj(data, "AppUser")
    return AppUser(
        id=_req_str(d, "id", "AppUser"), scope=_str(d, "scope"), status=_str(d, "status"),
        user_name=_str(_dict(d, "credentials"), "userName"), external_id=_str(d, "externalId"),
        sync_state=_str(d, "syncState"), group_id=_last_segment(_href(d, "group"), "groups"),
        created=_str(d, "created"), last_updated=_str(d, "lastUpdated"), profile=_dict(d, "profile"), raw=d)


@dataclass(frozen=True, slots=True)
class AppGroup:
    id: str  # the group id
    priority: int | None
    last_updated: str | None
    profile: dict = field(repr=False)
    raw: dict = field(repr=False)


def parse_app_group(data: Any) -> AppGroup:
    d = _obj(data, "AppGroup")
    return AppGroup(id=_req_str(d, "id", "AppGroup"), priority=_int(d, "priority"),
                    last_updated=_str(d, "lastUpdated"), profile=_dict(d, "profile"), raw=d)


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    id: str
    type: str | None  # SUPER_ADMIN, ..., CUSTOM
    label: str | None
    status: str | None
    assignment_type: str | None  # USER, GROUP, CLIENT
    role: str | None  # custom role id (CUSTOM / IAM-based roles)
    resource_set: str | None
    assignee: tuple[str, str] | None  # ("user"|"group"|"client", id) from _links.assignee
    created: str | None
    last_updated: str | None
    raw: dict = field(repr=False)

    @property
    def is_custom(self) -> bool:
        return self.type == "CUSTOM" or self.role is not None


def parse_role_assignment(data: Any) -> RoleAssignment:
    d = _obj(data, "RoleAssignment")
    return RoleAssignment(
        id=_req_str(d, "id", "RoleAssignment"), type=_str(d, "type"), label=_str(d, "label"),
        status=_str(d, "status"), assignment_type=_str(d, "assignmentType"), role=_str(d, "role"),
        resource_set=_str(d, "resource-set"), assignee=principal_from_href(_href(d, "assignee")),
        created=_str(d, "created"), last_updated=_str(d, "lastUpdated"), raw=d)


@dataclass(frozen=True, slots=True)
class CustomRole:
    id: str
    label: str | None
    description: str | None
    created: str | None
    last_updated: str | None
    raw: dict = field(repr=False)


def parse_custom_role(data: Any) -> CustomRole:
    d = _obj(data, "CustomRole")
    return CustomRole(id=_req_str(d, "id", "CustomRole"), label=_str(d, "label"),
                      description=_str(d, "description"), created=_str(d, "created"),
                      last_updated=_str(d, "lastUpdated"), raw=d)


@dataclass(frozen=True, slots=True)
class ResourceSet:
    id: str
    label: str | None
    description: str | None
    created: str | None
    last_updated: str | None
    raw: dict = field(repr=False)


def parse_resource_set(data: Any) -> ResourceSet:
    d = _obj(data, "ResourceSet")
    return ResourceSet(id=_req_str(d, "id", "ResourceSet"), label=_str(d, "label"),
                       description=_str(d, "description"), created=_str(d, "created"),
                       last_updated=_str(d, "lastUpdated"), raw=d)


@dataclass(frozen=True, slots=True)
class Binding:
    """A role bound in a resource set (`/iam/resource-sets/{id}/bindings` -> `roles[]`)."""

    role_id: str
    members_href: str | None
    raw: dict = field(repr=False)


def parse_binding(data: Any) -> Binding:
    d = _obj(data, "Binding")
    return Binding(role_id=_req_str(d, "id", "Binding"), members_href=_href(d, "members"), raw=d)


@dataclass(frozen=True, slots=True)
class BindingMember:
    """A member of a binding (`.../bindings/{role}/members` -> `value[]`): a user or a group."""

    id: str  # the binding-member id (irb...)
    principal: tuple[str, str] | None  # ("user"|"group", id) from _links.member or _links.self
    raw: dict = field(repr=False)


def parse_binding_member(data: Any) -> BindingMember:
    d = _obj(data, "BindingMember")
    # Okta's examples link the principal as `self`; others use `member` (and `self` for the member row).
    principal = principal_from_href(_href(d, "member")) or principal_from_href(_href(d, "self"))
    return BindingMember(id=_req_str(d, "id", "BindingMember"), principal=principal, raw=d)


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    name: str | None
    user_id: str | None
    client_name: str | None
    created: str | None
    last_updated: str | None
    expires_at: str | None
    token_window: str | None
    network_connection: str | None
    raw: dict = field(repr=False)


def parse_api_token(data: Any) -> ApiToken:
    d = _obj(data, "ApiToken")
    return ApiToken(
        id=_req_str(d, "id", "ApiToken"), name=_str(d, "name"),
        user_id=_str(d, "userId") or _last_segment(_href(d, "user"), "users"),
        client_name=_str(d, "clientName"), created=_str(d, "created"), last_updated=_str(d, "lastUpdated"),
        expires_at=_str(d, "expiresAt"), token_window=_str(d, "tokenWindow"),
        network_connection=_str(_dict(d, "network"), "connection"), raw=d)


@dataclass(frozen=True, slots=True)
class IamAssignee:
    """A user holding admin roles (`/iam/assignees/users` -> `value[]`)."""

    id: str
    orn: str | None
    roles_href: str | None
    raw: dict = field(repr=False)


def parse_iam_assignee(data: Any) -> IamAssignee:
    d = _obj(data, "IamAssignee")
    return IamAssignee(id=_req_str(d, "id", "IamAssignee"), orn=_str(d, "orn"), roles_href=_href(d, "roles"),
                       raw=d)


T = TypeVar("T")


def parse_list(parse: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
    """Parse every object of a page; a bad one raises ModelError naming its position."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(parse(item))
        except ModelError as exc:
            raise ModelError(f"item {i}: {exc}") from None
    return out
