"""The incremental planner: from a tenant's cursor and the System Log, what to re-list.

Generic: every type declares its own change sources (ResourceType.changes: the lists it always
reads, filtered by time or small enough to re-list whole, and the containers a log event marks
dirty); this module only asks them. The plan is plain data stored on the run (sync_runs.plan)
so the page steps and the finalizer, on any worker, read the same one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.pages import StreamSpec
from worker.connector.system_log import RETENTION, LogRead, LogUnavailable, iso, read_log
from worker.connector.types import TYPES
from worker.connector.types.base import NO_VIEW, View

# The overlap window: the log and the lastUpdated filters are read from this long before the
# previous run's watermark (replica lag, one-second timestamps, late events); uuids dedupe it.
OVERLAP = timedelta(minutes=2)


@dataclass
class Plan:
    """An incremental run: its first lists, which are partial, what is gone, the next cursor."""

    streams: list[StreamSpec] = field(default_factory=list)
    partial_kinds: list[str] = field(default_factory=list)
    closed_kinds: list[str] = field(default_factory=list)  # whole lists whose children are not re-listed
    partial_children: list[str] = field(default_factory=list)  # kinds partial lists open per object
    row_kinds: list[str] = field(default_factory=list)  # kinds reading one principal's row of a container
    deleted: list[str] = field(default_factory=list)
    events: int = 0
    log_pages: int = 0  # requests the planner made: System Log pages and the types' screens
    watermark: datetime | None = None
    log_after: str | None = None
    recent_event_ids: list[str] = field(default_factory=list)
    derived: list[dict[str, str]] = field(default_factory=list)  # DerivedMembers as dicts
    validated: list[dict[str, str]] = field(default_factory=list)  # Validated as dicts
    log_from: str = ""  # "after": resumed from the saved link; "since": from the watermark less the overlap

    def to_dict(self) -> dict[str, Any]:
        return {"partial_kinds": self.partial_kinds, "closed_kinds": self.closed_kinds,
                "partial_children": self.partial_children, "row_kinds": self.row_kinds, "deleted": self.deleted,
                "derived": self.derived, "validated": self.validated, "log_from": self.log_from,
                "events": self.events, "log_pages": self.log_pages,
                "watermark": iso(self.watermark) if self.watermark else None, "log_after": self.log_after,
                "recent_event_ids": self.recent_event_ids}


@dataclass(frozen=True)
class FullSync:
    """Why this run must be a full sync; `warning` if the user must act."""

    reason: str
    warning: str | None = None


def fallback_reason(cursor: Any, options: SyncOptions) -> str | None:
    """Why the stored cursor cannot start an incremental run, or None."""
    if cursor is None:
        return "no cursor: the tenant has no complete sync with a change cursor yet"
    if not options.matches(cursor.options_fingerprint):
        return "the tenant's options changed since the last sync"
    return None


def _dedupe(specs: list[StreamSpec]) -> list[StreamSpec]:
    seen: dict[tuple[str, str], StreamSpec] = {}
    for spec in specs:
        seen.setdefault((spec.kind, spec.parent or ""), spec)
    return list(seen.values())


# {(principal key, container kind)} -> for each, the containers of the current view holding its
# grants, with their grant counts (View.holding).
Lookup = Callable[[Collection[tuple[str, str]]], dict[tuple[str, str], list[tuple[str, int]]]]


def plan_incremental(get_page: Callable[[str], Any], cursor: Any, options: SyncOptions,
                     view: View = NO_VIEW) -> Plan | FullSync:
    """Read the log since the cursor and plan the run, or say why it must be a full sync."""
    reason = fallback_reason(cursor, options)
    if reason is not None:
        return FullSync(reason)
    since = cursor.watermark - OVERLAP
    try:
        read = read_log(get_page, since, set(cursor.recent_event_ids), cursor.log_after, OVERLAP)
    except LogUnavailable as exc:
        return FullSync(exc.reason, exc.warning)
    now = read.server_now or cursor.watermark
    if cursor.watermark < now - RETENTION:
        return FullSync(f"the cursor ({iso(cursor.watermark)}) is older than the System Log keeps (90 days)")
    plan = build_plan(read.events, options, since, now, view.holding)
    plan.log_after, plan.log_pages, plan.recent_event_ids = read.resume, read.pages, resume_ids(read, now)
    plan.log_from = "after" if read.from_after else "since"
    plan.derived = [{"container": d.container, "entitlement": d.entitlement}
                    for t in TYPES.values() for d in t.changes.derived(view.find)]
    for t in TYPES.values():
        plan.streams, validated = t.changes.validate(plan.streams, view)
        plan.validated += [dataclasses.asdict(v) for v in validated]
    for t in TYPES.values():
        screened = t.changes.screen(get_page, iso(since), options, view)
        plan.log_pages += screened.requests
        if screened.full_reason:
            return FullSync(screened.full_reason)
        plan.deleted = sorted(set(plan.deleted) | set(screened.deleted))
    return plan


def resume_ids(read: LogRead, now: datetime) -> list[str]:
    """uuids the next run will read again: those after its resume link, and those inside the
    overlap window of its `since` fallback."""
    horizon = now - OVERLAP
    return sorted(set(read.resume_ids) | {uuid for uuid, published in read.seen if (published or now) >= horizon})


def full_cursor(get_page: Callable[[str], Any], local_now: datetime) -> Plan | FullSync:
    """A full run's starting cursor: Okta's time now and the events of the last moments (read
    once, so a run without okta.logs.read says so)."""
    try:
        read = read_log(get_page, local_now - OVERLAP, overlap=OVERLAP)
    except LogUnavailable as exc:
        return FullSync(exc.reason, exc.warning)
    now = read.server_now or local_now
    return Plan(watermark=now, log_after=read.resume, log_pages=read.pages, recent_event_ids=resume_ids(read, now))


def _spec_for(container: str) -> StreamSpec | None:
    kind, _, parent = container.partition(":")
    for t in TYPES.values():
        spec = t.changes.spec_for(kind, parent)
        if spec is not None:
            return spec
    return None


def _row_spec_for(container: str, principal: str) -> tuple[StreamSpec, int] | None:
    """(the spec reading `principal`'s row of `container` alone, rows per page of its list)."""
    kind, _, parent = container.partition(":")
    for t in TYPES.values():
        spec = t.changes.row_spec(kind, parent, principal)
        if spec is not None:
            return spec, t.changes.page_size(kind)
    return None


def _holding_specs(pairs: set[tuple[str, str]], lookup: Lookup) -> list[StreamSpec]:
    """The reads for Dirty.holding: each principal's row of each container holding its grants,
    or the container whole when its row reads would cost more requests than re-listing it
    (more principals than the list has pages). Row reads run in parallel while a list's pages
    are sequential, so with no more requests they also take no longer."""
    by_container: dict[str, tuple[int, list[str]]] = {}
    for (principal, _kind), held in lookup(pairs).items():
        for container, count in held:
            by_container.setdefault(container, (count, []))[1].append(principal)
    specs: list[StreamSpec] = []
    for container, (count, principals) in sorted(by_container.items()):
        rows = [r for p in sorted(set(principals)) if (r := _row_spec_for(container, p)) is not None]
        page_size = rows[0][1] if rows else 0
        if rows and len(rows) == len(set(principals)) and page_size > 0 \
                and len(rows) <= max(1, math.ceil(count / page_size)):
            specs += [spec for spec, _size in rows]
        elif (whole := _spec_for(container)) is not None:
            specs.append(whole)
    return specs


def build_plan(events: list[Mapping[str, Any]], options: SyncOptions, since: datetime, now: datetime,
               lookup: Lookup = lambda _pairs: {}) -> Plan:
    """The run's lists: every type's change lists, then the containers the events mark dirty."""
    plan = Plan(events=len(events), watermark=now)
    dirty: list[StreamSpec] = []
    deleted: set[str] = set()
    opened: set[str] = set()
    also: dict[str, list[str]] = {}
    holding: set[tuple[str, str]] = set()
    for event in events:
        kind = event.get("eventType")
        for t in TYPES.values():
            if kind in t.changes.event_types:
                d = t.changes.dirty(event, options)
                dirty += d.streams
                deleted |= set(d.deleted)
                opened |= set(d.open_children_of)
                holding |= set(d.holding)
                for list_kind, clause in d.also:
                    also.setdefault(list_kind, [])
                    if clause not in also[list_kind]:
                        also[list_kind].append(clause)
    # A deleted object's lists would answer 404; its containers go with it.
    dirty = [spec for spec in dirty if spec.parent not in deleted]
    if holding:
        # A row read is redundant where the run re-lists its container whole.
        whole = {(spec.kind, spec.parent) for spec in dirty}
        dirty += [spec for spec in _holding_specs(holding, lookup)
                  if spec.meta_value("container").partition(":")[::2] not in whole]
    first: list[StreamSpec] = []
    for t in TYPES.values():
        extra = tuple(c for k in t.changes.partial for c in also.get(k, ()))
        lists = t.changes.lists(options, iso(since), extra)
        first += lists
        plan.partial_kinds += [k for k in t.changes.partial if k not in plan.partial_kinds]
        plan.partial_children += [k for k in t.changes.children if k not in plan.partial_children]
        plan.row_kinds += [k for k in t.changes.rows if k not in plan.row_kinds]
        plan.closed_kinds += [s.kind for s in lists if s.kind not in t.changes.partial]
    plan.closed_kinds = [k for k in dict.fromkeys(plan.closed_kinds) if k not in opened]
    plan.streams = _dedupe(first + dirty)
    plan.deleted = sorted(deleted)
    return plan
