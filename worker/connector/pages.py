"""The connector's page plumbing, shared by every type module: StreamSpec, PageResult, the one
rule that takes a page's records out of its body, and the per-object error rule.

A stream is one Okta list (all users, the members of one group, ...). The engine fetches it page
by page and hands each page's JSON body to the stream's page handler (worker.connector.types),
which returns a PageResult: rows, child streams, warnings, and how many records the page held.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from worker.model import Entitlement, Grant, Resource, split_resource_key


class BadObject(ValueError):
    """An Okta object (or page body) without the fields every object of its kind has (e.g. no id)."""


@dataclass(frozen=True)
class StreamSpec:
    kind: str
    url: str  # path + query of the first page
    parent: str | None = None  # "<type>:<id>" of the object this list belongs to
    # Request headers the engine must send with every page of this stream.
    headers: tuple[tuple[str, str], ...] = ()
    # Facts about the parent that the pages need (e.g. a resource set's label for its bindings).
    meta: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "parent": self.parent,
                "headers": [list(h) for h in self.headers], "meta": [list(x) for x in self.meta]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamSpec:
        return cls(data["kind"], data["url"], data.get("parent"),
                   tuple((str(k), str(v)) for k, v in data.get("headers") or ()),
                   tuple((str(k), str(v)) for k, v in data.get("meta") or ()))

    @property
    def header_dict(self) -> dict[str, str]:
        return dict(self.headers)

    def meta_value(self, key: str, default: str = "") -> str:
        return dict(self.meta).get(key, default)

    @property
    def parent_id(self) -> str:
        return split_resource_key(self.parent or "")[1]


@dataclass
class PageResult:
    resources: list[Resource] = field(default_factory=list)
    entitlements: list[Entitlement] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    children: list[StreamSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Next page named in the body (`_links.next.href`) by the IAM endpoints; the engine follows it when
    # the response had no `Link: rel="next"` header.
    next_url: str | None = None
    # Records the page held (what `records` took out of the body), for the run's progress counts.
    items: int = 0

    def extend(self, other: PageResult) -> None:
        self.resources += other.resources
        self.entitlements += other.entitlements
        self.grants += other.grants
        self.children += other.children
        self.warnings += other.warnings
        self.items += other.items


def q(value: str) -> str:
    """An id as one URL path segment."""
    return quote(value, safe="")


def records(body: Any, *keys: str) -> list[Any]:
    """The list in a page body: a bare array, or under one of `keys` for the IAM endpoints.

    The one rule for a page's records: page handlers map them, the engine counts them."""
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for key in keys:
            value = body.get(key)
            if isinstance(value, list):
                return value
        if not keys or not any(k in body for k in keys):
            raise BadObject(f"page body has none of {', '.join(keys) or 'a list'}: keys {sorted(body)[:8]}")
        return []
    raise BadObject(f"page body must be a JSON array or object, not {type(body).__name__}")


def body_next(body: Any) -> str | None:
    """`_links.next.href` of an IAM page body, if any."""
    if isinstance(body, Mapping):
        links = body.get("_links")
        nxt = links.get("next") if isinstance(links, Mapping) else None
        href = nxt.get("href") if isinstance(nxt, Mapping) else None
        if isinstance(href, str) and href:
            return href
    return None


def each(out: PageResult, what: str, items: list[Any], fn: Callable[[Any], None]) -> None:
    """Map every record; one malformed object becomes a warning instead of failing the whole page."""
    out.items += len(items)
    for item in items:
        try:
            fn(item)
        except BadObject as exc:
            out.warnings.append(f"{what}: skipped a malformed object ({exc})")


def grants_page(body: Any, what: str, grant: Callable[[Any], Grant | None]) -> PageResult:
    """A page that holds one grant per record (None: the record is left out, e.g. a filtered user)."""
    out = PageResult()

    def one(item: Any) -> None:
        if (g := grant(item)) is not None:
            out.grants.append(g)
    each(out, what, records(body), one)
    return out


# An id becomes part of `<type>:<id>` keys: no colon, no whitespace (\s is str.isspace's set).
_NOT_IN_ID = re.compile(r"[:\s]")


def object_id(obj: Any, kind: str) -> str:
    if not isinstance(obj, Mapping):
        raise BadObject(f"{kind}: expected a JSON object, got {type(obj).__name__}")
    value = obj.get("id")
    if not isinstance(value, str) or not value or _NOT_IN_ID.search(value):
        raise BadObject(f"{kind}: missing or invalid id {value!r}")
    return value


def text(value: Any) -> str | None:
    """A non-empty string field, or None."""
    return value if isinstance(value, str) and value else None
