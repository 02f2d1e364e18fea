"""The access model shared by the connector, the grant store and provisioning.

Ids follow baton-okta so that exports line up with what baton users know:
resource `<type>:<id>`, entitlement `<type>:<resource id>:<slug>`, grant
`<entitlement id>:<principal type>:<principal id>`. A resourceset-binding's resource id is
`<resourceSetId>:<roleId>`, so resource ids may hold ':'; principal ids and slugs never do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

RESOURCE_TYPES = (
    "user", "group", "app", "role", "custom-role", "resource-set", "resourceset-binding", "api-token",
)

# slug and the principal types an entitlement of each resource type may be granted to.
ENTITLEMENT_SLUGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "group": ("member", ("user",)),
    "app": ("access", ("user", "group")),
    # Admin roles are held by users, groups and OAuth service apps (`app:<id>`, the role's client).
    "role": ("assigned", ("user", "group", "app")),
    "custom-role": ("assigned", ("user", "group", "app")),
    "resource-set": ("bindings", ("custom-role",)),
    "resourceset-binding": ("member", ("user", "group", "app")),
}

PRINCIPAL_TYPES = ("user", "group", "app", "custom-role")


class InvalidId(ValueError):
    """An entitlement, grant or principal id that does not parse; the message says why."""


# The store's id columns (entitlements 512, grants 600, principal ids 255 + type); Okta ids are
# about 20 characters. A longer id is refused before it is echoed in a message or sent to Okta.
MAX_LENGTH = {"entitlement id": 512, "grant id": 600, "principal": 288}


def _check_length(kind: str, text: str) -> None:
    if len(text) > MAX_LENGTH[kind]:
        raise InvalidId(f"{kind} {text[:40]!r}... is {len(text)} characters long; at most {MAX_LENGTH[kind]}")


@dataclass(frozen=True, slots=True)
class Resource:
    type: str
    id: str
    display_name: str
    profile: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    parent: str | None = None  # "<type>:<id>" of the owner, e.g. an api-token's user

    @property
    def key(self) -> str:
        return resource_key(self.type, self.id)


@dataclass(frozen=True, slots=True)
class Entitlement:
    resource_type: str
    resource_id: str
    slug: str
    display_name: str = ""

    @property
    def id(self) -> str:
        return f"{self.resource_type}:{self.resource_id}:{self.slug}"

    @property
    def resource(self) -> str:
        return resource_key(self.resource_type, self.resource_id)


@dataclass(frozen=True, slots=True)
class Grant:
    entitlement_id: str
    principal_type: str
    principal_id: str
    # True when oktasync derived it by expanding a group's grant to a member (Okta did not list it
    # for this principal); sources then names the grants it came from.
    expanded: bool = False
    sources: tuple[str, ...] = ()
    # What Okta said about how it holds, e.g. {"scope": "GROUP"} for an app user.
    annotations: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def id(self) -> str:
        return f"{self.entitlement_id}:{self.principal_type}:{self.principal_id}"

    @property
    def principal(self) -> str:
        return resource_key(self.principal_type, self.principal_id)


def container_key(kind: str, parent: str | None) -> str:
    """The list a stored row came from (its *container*): the stream's kind and parent, e.g.
    `group-members:group:00g1`. Re-listing a container replaces exactly its rows."""
    return f"{kind}:{parent}" if parent else kind


def row_key(container: str, principal: str) -> str:
    """One principal's row of a container, `app-users:app:0oa1@user:00u1`: the parent of a stream
    that reads that row alone; re-reading it replaces exactly that principal's rows there."""
    return f"{container}@{principal}"


def split_row_key(key: str) -> tuple[str, str]:
    """`app-users:app:0oa1@user:00u1` -> ("app-users:app:0oa1", "user:00u1") (ids hold no '@')."""
    container, _, principal = key.rpartition("@")
    return container, principal


def resource_key(rtype: str, rid: str) -> str:
    """`<type>:<id>`: a resource's key, a principal, a stream's parent."""
    return f"{rtype}:{rid}"


def split_resource_key(key: str) -> tuple[str, str]:
    """`user:00u1` -> ("user", "00u1"); a resourceset-binding's id keeps its ':'."""
    rtype, _, rid = key.partition(":")
    return rtype, rid


def entitlement_of(rtype: str, rid: str) -> Entitlement:
    """The one entitlement of resource `<rtype>:<rid>` (every type has at most one slug)."""
    return Entitlement(rtype, rid, ENTITLEMENT_SLUGS[rtype][0])


def _check_part(kind: str, value: str, part: str, text: str) -> None:
    if not part or any(c.isspace() for c in part):
        raise InvalidId(f"{kind} {text!r}: empty or blank {value}")


def parse_entitlement_id(text: str) -> Entitlement:
    """`group:00g1:member` -> Entitlement; raises InvalidId naming what is wrong."""
    if not isinstance(text, str):
        raise InvalidId(f"entitlement id must be a string, not {type(text).__name__}")
    _check_length("entitlement id", text)
    parts = text.split(":")
    if len(parts) < 3:
        raise InvalidId(f"entitlement id {text!r}: expected '<resource type>:<resource id>:<slug>'")
    rtype, slug, rid = parts[0], parts[-1], ":".join(parts[1:-1])
    if rtype not in ENTITLEMENT_SLUGS:
        raise InvalidId(
            f"entitlement id {text!r}: resource type {rtype!r} has no entitlements "
            f"(one of {', '.join(ENTITLEMENT_SLUGS)})")
    want = ENTITLEMENT_SLUGS[rtype][0]
    if slug != want:
        raise InvalidId(f"entitlement id {text!r}: a {rtype} entitlement's slug is {want!r}, not {slug!r}")
    _check_part("entitlement id", "resource id", rid, text)
    if rtype == "resourceset-binding" and rid.count(":") != 1:
        raise InvalidId(f"entitlement id {text!r}: a resourceset-binding id is '<resourceSetId>:<roleId>'")
    if rtype != "resourceset-binding" and ":" in rid:
        raise InvalidId(f"entitlement id {text!r}: resource id {rid!r} must not contain ':'")
    return Entitlement(rtype, rid, slug)


def parse_principal(text: str) -> tuple[str, str]:
    """`user:00u1` -> ("user", "00u1")."""
    if not isinstance(text, str):
        raise InvalidId(f"principal must be a string, not {type(text).__name__}")
    _check_length("principal", text)
    ptype, sep, pid = text.partition(":")
    if not sep:
        raise InvalidId(f"principal {text!r}: expected '<type>:<id>', e.g. 'user:00u1'")
    if ptype not in PRINCIPAL_TYPES:
        raise InvalidId(f"principal {text!r}: type {ptype!r} is not one of {', '.join(PRINCIPAL_TYPES)}")
    _check_part("principal", "id", pid, text)
    if ":" in pid:
        raise InvalidId(f"principal {text!r}: id must not contain ':'")
    return ptype, pid


def parse_grant_id(text: str) -> Grant:
    """`group:00g1:member:user:00u7` -> Grant."""
    if not isinstance(text, str):
        raise InvalidId(f"grant id must be a string, not {type(text).__name__}")
    _check_length("grant id", text)
    parts = text.split(":")
    if len(parts) < 5:
        raise InvalidId(f"grant id {text!r}: expected '<entitlement id>:<principal type>:<principal id>'")
    ent = parse_entitlement_id(":".join(parts[:-2]))
    ptype, pid = parse_principal(":".join(parts[-2:]))
    check_grantable(ent, ptype)
    return Grant(ent.id, ptype, pid)


def check_grantable(ent: Entitlement, principal_type: str) -> None:
    allowed = ENTITLEMENT_SLUGS[ent.resource_type][1]
    if principal_type not in allowed:
        raise InvalidId(
            f"entitlement {ent.id!r} cannot be granted to a {principal_type}; "
            f"it takes {' or '.join(allowed)}")


# ---------------------------------------------------------------------------------- changes
# What a provisioning step changed, for the store to write through to the tenant's view at once
# (worker.store.writethrough). The type modules say what changed; the store applies it.

@dataclass(frozen=True, slots=True)
class GrantAdded:
    grant: Grant


@dataclass(frozen=True, slots=True)
class GrantRemoved:
    grant: Grant


@dataclass(frozen=True, slots=True)
class ResourceSaved:
    """The resource (and its entitlements) as a sync would now map it."""

    resource: Resource
    entitlements: tuple[Entitlement, ...] = ()
    # Profile fields the view's row keeps when `resource` lacks them (counts a change leaves as
    # they were, which the object Okta answered with does not carry).
    keep: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResourceRemoved:
    """The resource is gone, with its entitlements and the grants on them and to it."""

    key: str


@dataclass(frozen=True, slots=True)
class CountChanged:
    """A count in a resource's profile (a group's `users_count`) moved by `delta`, as the next sync
    will read it; nothing happens where the view's row has no such count."""

    resource: str  # resource key, `group:00g1`
    field: str
    delta: int


@dataclass(frozen=True, slots=True)
class GrantsAnnotated:
    """The listed (not expanded) grants of `principal` on entitlements of `resource_type` now carry
    these annotation values (an app user's status follows the user's)."""

    principal: str  # `user:00u1`
    resource_type: str
    values: dict[str, Any]


Change = GrantAdded | GrantRemoved | ResourceSaved | ResourceRemoved | CountChanged | GrantsAnnotated


def _unchanged(annotations: Mapping[str, Any], _removed: str) -> dict[str, Any] | None:
    return dict(annotations)


@dataclass(frozen=True)
class WriteThroughRules:
    """What the resource types know that write-through applies (worker.connector.types builds the
    real ones; the defaults know nothing)."""

    # The grants holding a grant also gives its principal (a binding member's custom role).
    implied: Callable[[Grant], list[Grant]] = lambda _grant: []
    # The container (container_key) a sync lists a grant or resource in.
    container_of: Callable[[Grant | Resource], str] = lambda _item: ""
    # (entitlement id, the user's profile in the view or None) -> the annotations of the grant Okta
    # lists for a user holding it through a group (an app user of scope GROUP), or None: expanded.
    listed_through_group: Callable[[str, Mapping[str, Any] | None], dict[str, Any] | None] = (
        lambda _ent, _user: None)
    # (grant, key of a deleted resource) -> the grant's annotations now, or None: it went too.
    after_removed: Callable[[Grant, str], dict[str, Any] | None] = lambda grant, removed: _unchanged(
        grant.annotations, removed)
