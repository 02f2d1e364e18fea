"""The registry of resource types: resource type name -> ResourceType (worker.connector.types.base).

Everything about one type lives in its module (like baton-okta's one file per type); this module
only ties them together: which lists a run starts with, which page handler a stream kind has,
which executor a grant, revoke, action or delete runs, which rules write a change through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.pages import PageResult, StreamSpec
from worker.connector.types import api_token, app, custom_role, group, resource_set, role, user
from worker.connector.types.base import Action, ResourceType, Stream
from worker.model import Grant, Resource, WriteThroughRules, parse_entitlement_id

TYPES: dict[str, ResourceType] = {t.name: t for t in (
    user.TYPE, group.TYPE, app.TYPE, role.TYPE, custom_role.TYPE, resource_set.TYPE, resource_set.BINDING_TYPE,
    api_token.TYPE,
)}

# Stream kind -> its stream (page handler, what it reads, the permission it needs).
STREAMS: dict[str, Stream] = {s.kind: s for t in TYPES.values() for s in t.streams}

# Action name -> its action (argument schema, executor).
ACTIONS: dict[str, Action] = {a.name: a for t in TYPES.values() for a in t.actions}

# Resource types a `delete` request may name.
DELETABLE: tuple[str, ...] = tuple(name for name, t in TYPES.items() if t.delete is not None)


class UnknownStream(ValueError):
    """A StreamSpec whose kind this connector does not know."""


def initial_streams(options: SyncOptions) -> list[StreamSpec]:
    """The lists a run starts with, in the order types are registered."""
    return [spec for t in TYPES.values() for spec in t.initial_streams(options)]


def static_resources(options: SyncOptions) -> PageResult:
    """Rows no API call lists (the standard admin roles and their entitlements)."""
    out = PageResult()
    for t in TYPES.values():
        if t.static_resources is not None:
            out.extend(t.static_resources(options))
    return out


def handle_page(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    """One page's JSON body -> rows and child streams. Pure: no I/O, same input -> same output, so
    a redelivered page does nothing new.

    Pass the stream's spec with `url` set to the URL of this page (dataclasses.replace) when it is
    not the first, so first-page-only checks (the empty user list) stay exact."""
    stream = STREAMS.get(spec.kind)
    if stream is None:
        raise UnknownStream(f"unknown stream kind {spec.kind!r}; known: {', '.join(STREAMS)}")
    return stream.handle(spec, body, options)


def container_of(item: Grant | Resource) -> str:
    """The container a sync lists `item` in (see ResourceType.container_of)."""
    rtype = parse_entitlement_id(item.entitlement_id).resource_type if isinstance(item, Grant) else item.type
    return TYPES[rtype].container_of(item)


def implied_grants(grant: Grant) -> list[Grant]:
    """The write-through rule of the grant's entitlement type (see ResourceType.implied_grants)."""
    return TYPES[parse_entitlement_id(grant.entitlement_id).resource_type].implied_grants(grant)


def listed_through_group(entitlement_id: str, user: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The write-through rule of the entitlement's type (see ResourceType.listed_through_group)."""
    return TYPES[parse_entitlement_id(entitlement_id).resource_type].listed_through_group(entitlement_id, user)


def after_removed(grant: Grant, removed: str) -> dict[str, Any] | None:
    """The write-through rule of the grant's entitlement type (see ResourceType.after_removed)."""
    return TYPES[parse_entitlement_id(grant.entitlement_id).resource_type].after_removed(grant.annotations, removed)


# What write-through (worker.store.writethrough) applies of the types' rules.
WRITE_THROUGH_RULES = WriteThroughRules(implied_grants, container_of, listed_through_group, after_removed)


__all__ = ["ACTIONS", "DELETABLE", "STREAMS", "TYPES", "WRITE_THROUGH_RULES", "UnknownStream", "after_removed",
           "container_of", "handle_page", "implied_grants", "initial_streams", "listed_through_group", "static_resources"]
