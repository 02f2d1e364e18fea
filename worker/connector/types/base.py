"""The common interface of a resource type (like baton-okta's ResourceSyncer), and its parts.

A type module (user.py, group.py, ...) builds one ResourceType: the streams that list it (with
their page handlers), its grant and revoke, its actions with their argument schemas, its
capability probes and its write-through rules. Anything a type does not do is left at None or
empty; the registry (worker.connector.types) ties them together.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker.connector.options import SyncOptions
from worker.connector.pages import PageResult, StreamSpec
from worker.model import Entitlement, Grant, Resource

if TYPE_CHECKING:
    from worker.connector.probes import Capability
    from worker.provisioning.context import ExecContext, Outcome

PAST = {"grant": "granted", "revoke": "revoked"}  # for messages about a request kind

PageHandler = Callable[[StreamSpec, Any, SyncOptions], PageResult]
# grant / revoke: (ctx, entitlement, principal type, principal id) -> Outcome
GrantExecutor = Callable[["ExecContext", Entitlement, str, str], "Outcome"]


@dataclass(frozen=True)
class Stream:
    """One kind of Okta list: what it reads, the permission that needs, and its page handler."""

    kind: str
    what: str  # for warnings: "skipped <what>"
    permission: str  # what the credentials need to read it (warnings, `oktasync check`)
    handle: PageHandler
    # 404 means "no such row" (one object read alone, e.g. an app user no longer assigned): the
    # stream ends empty, without a warning.
    absent_is_empty: bool = False


@dataclass(frozen=True)
class Arg:
    """One argument of an action: "str" | "list" | "bool" | "dict"."""

    type: str
    required: bool = False
    max_len: int | None = None
    choices: tuple[str, ...] | None = None  # a "str" that must be one of these (any case)


@dataclass(frozen=True)
class Action:
    """A connector action (baton-okta §4) or account creation (§3.1)."""

    name: str
    args: Mapping[str, Arg]
    run: Callable[[ExecContext, dict[str, Any]], Outcome]
    # Checks beyond each argument's type, on the coerced arguments: the problem, or None.
    check: Callable[[dict[str, Any]], str | None] = lambda _args: None
    # What `check` asks for that the argument list cannot say; shown by `oktasync action --list`.
    note: str = ""


@dataclass(frozen=True)
class Dirty:
    """What one System Log event says must be re-listed whole, or is gone."""

    streams: tuple[StreamSpec, ...] = ()  # containers to re-list
    deleted: tuple[str, ...] = ()  # resource keys (`user:00u1`) to remove with their grants
    open_children_of: tuple[str, ...] = ()  # relisted whole lists whose children must be re-listed too
    # (stream kind, filter clause): objects a time-filtered list must also return (OR-ed into its
    # filter), e.g. a group whose app count changed without its timestamps moving.
    also: tuple[tuple[str, str], ...] = ()
    # (principal key, container kind): re-read the principal's row of each container of that kind
    # holding its grants in the current view (an app user's status follows the user's lifecycle);
    # the planner re-lists a container whole instead when that costs no more requests.
    holding: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DerivedMembers:
    """A container an incremental run derives instead of re-listing it: one grant of `entitlement`
    to every user resource of the view (the built-in Everyone group holds every user)."""

    container: str
    entitlement: str


@dataclass(frozen=True)
class Validated:
    """A child container a partial list's page leaves unopened when its parent, as listed now,
    still has the validator the view stored (reference/okta-incremental.md §7: equality, no
    clock): the run keeps its rows. The finalizer checks the staged parent the same way."""

    container: str  # e.g. group-members:group:00g1
    resource: str  # its parent's key
    field: str  # the parent's profile field holding the validator
    value: str  # the view's value


# (resource type, profile field, value) -> ids (`group:00g1`) of the view's resources with that value.
FindResources = Callable[[str, str, str], list[str]]


@dataclass(frozen=True)
class View:
    """What the incremental planner may ask of the tenant's current view (the store answers)."""

    # {(principal key, container kind)} -> for each, the containers of that kind holding the
    # principal's grants, with each container's grant count (one look-up for the whole plan)
    holding: Callable[[Collection[tuple[str, str]]], dict[tuple[str, str], list[tuple[str, int]]]] = (
        lambda _pairs: {})
    find: FindResources = lambda _rtype, _field, _value: []
    # resource keys -> those of them that are resources of the view
    present: Callable[[Collection[str]], set[str]] = lambda _keys: set()
    # (resource keys, profile field) -> {key: the view's value of that field}, for those that have one
    values: Callable[[Collection[str], str], dict[str, str]] = lambda _keys, _field: {}


@dataclass(frozen=True)
class Screened:
    """What a type's own look at its changes before the run says: resources to remove, or why
    this run must be a full sync."""

    deleted: tuple[str, ...] = ()
    full_reason: str | None = None
    requests: int = 0  # counted in the run's requests


NO_VIEW = View()  # a planner's questions answered with nothing (tests, a view not yet there)

# (get_page, since, options, view) -> Screened
Screen = Callable[[Callable[[str], Any], str, SyncOptions, View], Screened]


@dataclass(frozen=True)
class ChangeSources:
    """How an incremental run finds a type's changes (docs/engine.md, "Incremental sync").

    `lists(options, since, also)`: the lists an incremental run always reads for the type: a list
    filtered by time (`lastUpdated gt since`, OR-ed with the `also` clauses events asked for; its
    kind is in `partial`: rows are upserted by id and the children it opens are re-listed), or a
    small list re-listed whole (its children are opened only when an event asks for it). `dirty(event, options)`: the containers a System Log event
    of one of `event_types` marks dirty. State never comes from an event's contents."""

    lists: Callable[[SyncOptions, str, tuple[str, ...]], list[StreamSpec]] = lambda _options, _since, _also: []
    partial: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    dirty: Callable[[Mapping[str, Any], SyncOptions], Dirty] = lambda _event, _options: Dirty()
    # Kinds the partial list opens for each object it returns: one it did not open is empty now.
    children: tuple[str, ...] = ()
    # A container's list rebuilt from its kind and parent (for Dirty.holding); None: not this type's.
    spec_for: Callable[[str, str], StreamSpec | None] = lambda _kind, _parent: None
    # One principal's row of a container, read alone (for Dirty.holding): (kind, parent,
    # principal) -> its spec, whose kind is in `rows`, with meta "container"; None: not this type's.
    row_spec: Callable[[str, str, str], StreamSpec | None] = lambda _kind, _parent, _principal: None
    rows: tuple[str, ...] = ()
    # Rows one page of a container kind's list holds (to compare a re-list with row reads); 0: unknown.
    page_size: Callable[[str], int] = lambda _kind: 0
    # Containers derived from the users an incremental run stages, found in the view; their lists
    # are not opened (partial lists mark them with meta "derived").
    derived: Callable[[FindResources], list[DerivedMembers]] = lambda _find: []
    # (the type's lists of this run, the view) -> the lists with the view's validators attached
    # for their pages to compare (meta), and those validators (see Validated).
    validate: Callable[[list[StreamSpec], View], tuple[list[StreamSpec], list[Validated]]] = (
        lambda specs, _view: (specs, []))
    # Reads the planner does for the type beyond the log (e.g. users whose e-mail left the filter).
    screen: Screen = lambda _get_page, _since, _options, _view: Screened()


def event_targets(event: Mapping[str, Any], *types: str) -> list[str]:
    """Ids of the event's targets of the given Okta target types (User, UserGroup, AppInstance, ...)."""
    targets = event.get("target") if isinstance(event.get("target"), list) else []
    return [str(t["id"]) for t in targets
            if isinstance(t, Mapping) and t.get("type") in types and isinstance(t.get("id"), str) and t["id"]]


@dataclass(frozen=True)
class ResourceType:
    name: str  # the baton resource type, e.g. "resourceset-binding"
    streams: tuple[Stream, ...] = ()
    # The lists a run starts with (children are opened by the page handlers).
    initial_streams: Callable[[SyncOptions], list[StreamSpec]] = lambda _options: []
    # Rows no API call lists (the standard admin roles).
    static_resources: Callable[[SyncOptions], PageResult] | None = None
    grant: GrantExecutor | None = None
    revoke: GrantExecutor | None = None
    # Why a grant ("grant") or revoke ("revoke") of `entitlement` is not done here; intake's message.
    not_provisionable: Callable[[str, Entitlement], str] = (
        lambda kind, ent: f"entitlement {ent.id!r} cannot be {PAST[kind]}")
    actions: tuple[Action, ...] = ()
    delete: Callable[[ExecContext, str], Outcome] | None = None
    # Capability probes: name -> probe, in the order `oktasync check` shows them.
    probes: Callable[[Any], dict[str, Capability]] = lambda _client: {}
    # Write-through rule: the grants holding `grant` also gives its principal (shown where the
    # implied grant's resource is in the view; removed when no other grant implies it).
    implied_grants: Callable[[Grant], list[Grant]] = lambda _grant: []
    changes: ChangeSources = ChangeSources()
    # The container (worker.model.container_key) of the list a sync reads a grant of this type's
    # entitlements, or a resource of this type, from: write-through stores rows under it, so the
    # next incremental re-list of that list replaces them.
    container_of: Callable[[Grant | Resource], str] = lambda _item: ""
    # Write-through rule: (entitlement id, the user's profile in the view or None) -> the annotations
    # of the grant Okta itself lists for a user holding the entitlement through a group (apps list
    # such users with scope GROUP), or None: the store expands it as finalize does.
    listed_through_group: Callable[[str, Mapping[str, Any] | None], dict[str, Any] | None] = (
        lambda _ent, _user: None)
    # Write-through rule: (a grant's annotations, the key of a resource deleted) -> its annotations
    # now (a deleted group leaves a role's targets), or None: the grant went with the resource.
    after_removed: Callable[[Mapping[str, Any], str], dict[str, Any] | None] = (
        lambda annotations, _removed: dict(annotations))


# Sent on lists of user objects (users, a group's members): Okta leaves out credential objects and links (smaller pages, server-side fast path).
OMIT_CREDENTIALS = (
    ("Content-Type",
     'application/json; okta-response="omitCredentials,omitCredentialsLinks,omitTransitioningToStatus"'),
)
