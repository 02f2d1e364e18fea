"""The plumbing every resource area's routes share: the request and response a handler sees, Okta's
pagination (limits, cursors, Link headers, IAM list bodies), search/filter compilation, and the
route table entry with its OAuth scope and admin operation.

Handlers are synchronous and pure over the Org; the server does HTTP, auth, rate limits, latency
and faults around them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

from oktasim import errors
from oktasim.errors import OktaError
from oktasim.orderedset import OrderedIds
from oktasim.query import Dialect, QueryError, compile_query


@dataclass
class Request:
    method: str
    path: str
    args: dict[str, list[str]]      # decoded query parameters, in order
    base: str                       # scheme://host:port as the client addressed us
    headers: Any
    body: bytes
    org: Any                        # oktasim.org.Org (which combines the areas that import this module)

    def arg(self, name: str) -> str | None:
        v = self.args.get(name)
        return v[-1] if v else None

    def flag(self, name: str, default: bool) -> bool:
        """A boolean query parameter; anything but true/false is Okta's validation error."""
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        if raw.lower() not in ("true", "false"):
            raise errors.invalid(f"Api validation failed: {name}",
                                 [f"{name}: '{raw}' is not a valid boolean (true or false)"])
        return raw.lower() == "true"

    def json(self) -> dict:
        if not self.body.strip():
            return {}
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise errors.malformed_body() from None
        if not isinstance(data, dict):
            raise errors.malformed_body()
        return data


@dataclass
class Response:
    status: int = 200
    body: bytes | None = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    items: int = 0                  # objects returned (the per-item latency cost)


def json_response(obj: Any, status: int = 200, items: int = 1) -> Response:
    return Response(status, orjson.dumps(obj), items=items)


NO_CONTENT = Response(204, None)


# ---------------------------------------------------------------- pagination

def limit_arg(req: Request, default: int, maximum: int) -> int:
    raw = req.arg("limit")
    if raw is None or raw == "":
        return default
    try:
        n = int(raw)
    except ValueError:
        raise errors.invalid("Api validation failed: limit",
                             [f"limit: '{raw}' is not a valid integer"]) from None
    if n < 1:
        return default
    return min(n, maximum)


def page(req: Request, ordered: OrderedIds, default: int, maximum: int,
         keep: Callable[[str], bool] | None = None) -> tuple[list[str], int, str | None]:
    """One page of `ordered` from the `after` cursor: (ids, limit used, next cursor or None)."""
    limit = limit_arg(req, default, maximum)
    start = ordered.start_after(req.arg("after") or None)
    if start is None:
        raise errors.bad_cursor()
    ids, more = ordered.page(start, limit, keep)
    return ids, limit, (ids[-1] if more and ids else None)


def _link_url(req: Request, limit: int | None, after: str | None, keep_after: bool) -> str:
    params = [(k, v) for k, vs in req.args.items() if k not in ("after", "limit") for v in vs]
    if keep_after and req.arg("after"):
        params.append(("after", req.arg("after")))
    if after is not None:
        params.append(("after", after))
    if limit is not None:
        params.append(("limit", str(limit)))
    q = urlencode(params)
    return f"{req.base}{req.path}" + (f"?{q}" if q else "")


def _links(req: Request, limit: int | None, next_cursor: str | None) -> list[tuple[str, str]]:
    """Okta's two Link header lines: self (query repeated, limit echoed) and next when more follow."""
    out = [("Link", f'<{_link_url(req, limit, None, True)}>; rel="self"')]
    if next_cursor is not None:
        out.append(("Link", f'<{_link_url(req, limit, next_cursor, False)}>; rel="next"'))
    return out


def json_list(req: Request, chunks: list[bytes], limit: int | None, next_cursor: str | None,
              links: bool = True) -> Response:
    """A JSON array of already-serialized items, with Okta's Link headers unless `links` is False."""
    return Response(200, b"[" + b",".join(chunks) + b"]",
                    _links(req, limit, next_cursor) if links else [], items=len(chunks))


def iam_list(req: Request, key: str, items: list[dict], limit: int, next_cursor: str | None,
             extra_links: dict | None = None) -> Response:
    """IAM collections: an object with the items under `key` and `_links.next.href` in the body."""
    # self echoes a limit only when the caller gave one (as recorded: `<…/iam/roles>; rel="self"`)
    links: dict = {"self": {"href": _link_url(req, limit if req.arg("limit") else None, None, True)}}
    if next_cursor is not None:
        links["next"] = {"href": _link_url(req, limit, next_cursor, False)}
    links.update(extra_links or {})
    body = {key: items, "_links": links}
    headers = [("Link", f'<{links["self"]["href"]}>; rel="self"')]
    if next_cursor is not None:
        headers.append(("Link", f'<{links["next"]["href"]}>; rel="next"'))
    return Response(200, orjson.dumps(body), headers, items=len(items))


def iam_object(req: Request, obj: dict) -> Response:
    """IAM objects come with a self Link header too (recorded)."""
    resp = json_response(obj)
    resp.headers.append(("Link", f'<{req.base}{req.path}>; rel="self"'))
    return resp


MAX_QUERY = 2000   # Okta refuses overly long or complex expressions


def compile_expression(text: str, dialect: Dialect, err: Callable[[], OktaError]) -> Callable[[Any], bool]:
    """A `search`/`filter` expression as a predicate, or the endpoint's error (`err`)."""
    if len(text) > MAX_QUERY:
        raise err()
    try:
        return compile_query(text, dialect)
    except (QueryError, RecursionError):
        raise err() from None


def omit_credentials(req: Request) -> tuple[bool, bool]:
    """(credentials, credential links) honouring `okta-response=omitCredentials,omitCredentialsLinks`,
    sent as a Content-Type parameter (Okta's way) or as its own header."""
    raw = (req.headers.get("okta-response") or "") + ";" + (req.headers.get("Content-Type") or "")
    return "omitCredentials" not in raw.replace("omitCredentialsLinks", ""), "omitCredentialsLinks" not in raw


# ---------------------------------------------------------------- route table entries

@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: Callable[..., Response]
    scope: str                      # the OAuth scope the route needs
    operation: str                  # the admin operation (oktasim.auth.OPERATIONS) it performs
    body: bool = False              # a POST/PUT whose framing (Content-Length) is checked
    choices: dict[str, frozenset[str]] = field(default_factory=dict)   # path parameter -> allowed values
    cacheable: bool = True          # a GET whose answer depends only on the org (not on the clock)

    def accepts(self, params: dict[str, str]) -> bool:
        return all(params.get(k) in allowed for k, allowed in self.choices.items())


_ID = r"(?P<{}>[^/]+)"


def route(method: str, path: str, handler: Callable[..., Response], scope: str, operation: str = "read",
          choices: dict[str, frozenset[str]] | None = None, cacheable: bool = True) -> Route:
    """`path` with `{name}` placeholders (one path segment each, passed to the handler by name)."""
    regex = re.sub(r"\{(\w+)\}", lambda m: _ID.format(m.group(1)), path)
    return Route(method, re.compile(f"^{regex}/?$"), handler, scope, operation, method in ("POST", "PUT"),
                 choices or {}, cacheable)

