"""The org's objects. Plain __slots__ classes: a 100k-user org must fit well under 1 GiB, and each
object caches its serialized list form (bytes) so a 200-item page is a join, not 200 dumps."""

from __future__ import annotations

import base64
import time

from oktasim.orderedset import OrderedIds

USER_STATUSES = ("ACTIVE", "STAGED", "PROVISIONED", "SUSPENDED", "DEPROVISIONED", "LOCKED_OUT",
                 "PASSWORD_EXPIRED", "RECOVERY")

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

# IAM-based standard roles: listed by /api/v1/iam/roles with the custom roles, answered in the
# custom-role shape with their own type (baton-okta.md §8.4, okta-api.md §5.7).
IAM_ROLES: dict[str, str] = {
    "WORKFLOWS_ADMIN": "Workflows Administrator",
    "ACCESS_CERTIFICATIONS_ADMIN": "Access Certifications Administrator",
    "ACCESS_REQUESTS_ADMIN": "Access Requests Administrator",
}


def now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


def role_assignment_id(role_type: str) -> str:
    """Okta's ids for standard role assignments: the unpadded Base32 of the type
    (KVJUKUS7IFCE2SKO = USER_ADMIN in the recordings)."""
    return base64.b32encode(role_type.encode()).decode().rstrip("=")


ROLE_TYPE_BY_ID = {role_assignment_id(t): t for t in STANDARD_ROLES}


class User:
    __slots__ = ("id", "status", "created", "activated", "status_changed", "last_login",
                 "last_updated", "password_changed", "profile", "has_password", "cache", "cache_nc")

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
        self.cache: bytes | None = None      # list form, with credentials
        self.cache_nc: bytes | None = None   # list form, okta-response=omitCredentials

    def touch(self) -> None:
        self.last_updated = now_iso()
        self.cache = self.cache_nc = None


class Group:
    __slots__ = ("id", "type", "created", "last_updated", "last_membership_updated", "profile",
                 "source", "members", "apps", "cache")

    def __init__(self, id: str, type: str, created: str, profile: dict, source: str | None = None,
                 members: OrderedIds | None = None):
        self.id = id
        self.type = type            # OKTA_GROUP | APP_GROUP | BUILT_IN
        self.created = created
        self.last_updated = created
        self.last_membership_updated = created
        self.profile = profile
        self.source = source        # APP_GROUP: the app it was imported from
        self.members = members      # None for Everyone: its members are all users
        self.apps = OrderedIds()    # apps this group is assigned to
        self.cache: bytes | None = None

    def touch(self) -> None:
        self.last_updated = now_iso()
        self.cache = None


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
    __slots__ = ("id", "name", "label", "status", "sign_on_mode", "created", "last_updated",
                 "users", "direct", "via", "groups", "group_assign", "cache")

    def __init__(self, id: str, name: str, label: str, status: str, sign_on_mode: str, created: str):
        self.id = id
        self.name = name
        self.label = label
        self.status = status
        self.sign_on_mode = sign_on_mode
        self.created = created
        self.last_updated = created
        self.users = OrderedIds()                 # everyone with access (direct or via a group)
        self.direct: dict[str, AppUser] = {}
        self.via: dict[str, int] = {}             # user id -> number of assigned groups holding them
        self.groups = OrderedIds()
        self.group_assign: dict[str, AppGroup] = {}
        self.cache: bytes | None = None


class RoleAssignment:
    """A standard role assigned to a user or a group."""
    __slots__ = ("id", "type", "principal_type", "principal_id", "created", "last_updated", "status")

    def __init__(self, type: str, principal_type: str, principal_id: str, created: str):
        self.id = role_assignment_id(type)
        self.type = type
        self.principal_type = principal_type  # "user" | "group"
        self.principal_id = principal_id
        self.created = created
        self.last_updated = created
        self.status = "ACTIVE"


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


class ApiToken:
    __slots__ = ("id", "name", "user_id", "created", "last_updated", "expires_at", "token_window")

    def __init__(self, id: str, name: str, user_id: str, created: str, last_updated: str,
                 expires_at: str, token_window: str = "P30D"):
        self.id = id
        self.name = name
        self.user_id = user_id
        self.created = created
        self.last_updated = last_updated
        self.expires_at = expires_at
        self.token_window = token_window
