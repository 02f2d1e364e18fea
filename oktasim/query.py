"""Okta's filter/search expression language (okta-api.md §3.6): attribute operators
eq ne gt ge lt le sw co ew pr, logical and/or/not, parentheses, JSON literals.

Each endpoint allows a subset (attributes, operators); anything else raises QueryError and the
caller answers with the endpoint's error code (E0000031 for search, E0000094 for filter)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oktasim.timestamps import parse_iso

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<lp>\()|(?P<rp>\))|(?P<word>[^\s()"]+))')
_OPS = {"eq", "ne", "gt", "ge", "lt", "le", "sw", "co", "ew", "pr"}
_DATE = re.compile(r"^\d{4}-\d\d-\d\dT")


class QueryError(ValueError):
    pass


@dataclass
class Dialect:
    """What one endpoint's `search` or `filter` accepts."""
    getters: dict[str, Callable[[Any], Any]]          # attribute -> value of an object
    ops: dict[str, frozenset[str]]                    # attribute -> allowed operators
    prefix_getters: dict[str, Callable[[Any, str], Any]] = field(default_factory=dict)  # e.g. profile.*
    prefix_ops: frozenset[str] = frozenset()
    allow_not: bool = False
    allow_or: bool = True

    def resolve(self, attr: str, op: str) -> Callable[[Any], Any]:
        if attr in self.getters:
            if op not in self.ops.get(attr, frozenset()):
                raise QueryError(f"operator {op!r} is not supported on {attr!r}")
            return self.getters[attr]
        for prefix, getter in self.prefix_getters.items():
            if attr.startswith(prefix) and len(attr) > len(prefix):
                if op not in self.prefix_ops and op not in self.ops.get(attr, frozenset()):
                    raise QueryError(f"operator {op!r} is not supported on {attr!r}")
                name = attr[len(prefix):]
                return lambda obj, _g=getter, _n=name: _g(obj, _n)
        raise QueryError(f"unknown attribute {attr!r}")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"cannot parse near {text[pos:pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


def _literal(kind: str, raw: str) -> Any:
    if kind == "str":
        import json
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise QueryError("bad string literal") from exc
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    try:
        return float(raw) if "." in raw else int(raw)
    except ValueError as exc:
        raise QueryError(f"bad literal {raw!r}") from exc


def _norm(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


class Holds:
    """A collection attribute (an app's users or groups): `eq` means membership."""
    __slots__ = ("items",)

    def __init__(self, items: Any):
        self.items = items


def _compare(op: str, have: Any, want: Any) -> bool:
    if isinstance(have, Holds):
        return op == "eq" and want in have.items
    if isinstance(have, list):
        return any(_compare(op, h, want) for h in have)
    if op == "eq":
        return _norm(have) == _norm(want)
    if op == "ne":
        return _norm(have) != _norm(want)
    if have is None:
        return False
    if op in ("sw", "co", "ew"):
        if not isinstance(have, str) or not isinstance(want, str):
            return False
        h, w = have.lower(), want.lower()
        return h.startswith(w) if op == "sw" else (w in h if op == "co" else h.endswith(w))
    try:
        h, w = _norm(have), _norm(want)
        if isinstance(have, str) and isinstance(want, str) and _DATE.match(have) and _DATE.match(want):
            # dates compare as instants: "…:21Z" and "…:21.000Z" are the same time
            h, w = parse_iso(have) or h, parse_iso(want) or w
        if op == "gt":
            return h > w
        if op == "ge":
            return h >= w
        if op == "lt":
            return h < w
        return h <= w
    except TypeError:
        return False


def compile_query(text: str, dialect: Dialect) -> Callable[[Any], bool]:
    """Parse `text` into a predicate over objects; QueryError on anything unsupported."""
    toks = _tokens(text)
    if not toks:
        raise QueryError("empty expression")
    i = 0

    def peek_word() -> str | None:
        return toks[i][1].lower() if i < len(toks) and toks[i][0] == "word" else None

    def parse_or() -> Callable[[Any], bool]:
        nonlocal i
        left = parse_and()
        while peek_word() == "or":
            if not dialect.allow_or:
                raise QueryError("'or' is not supported")
            i += 1
            right = parse_and()
            left = (lambda a, b: lambda o: a(o) or b(o))(left, right)
        return left

    def parse_and() -> Callable[[Any], bool]:
        nonlocal i
        left = parse_unary()
        while peek_word() == "and":
            i += 1
            right = parse_unary()
            left = (lambda a, b: lambda o: a(o) and b(o))(left, right)
        return left

    def parse_unary() -> Callable[[Any], bool]:
        nonlocal i
        if i >= len(toks):
            raise QueryError("unexpected end of expression")
        kind, raw = toks[i]
        if kind == "word" and raw.lower() == "not":
            if not dialect.allow_not:
                raise QueryError("'not' is not supported")
            i += 1
            inner = parse_unary()
            return lambda o: not inner(o)
        if kind == "lp":
            i += 1
            inner = parse_or()
            if i >= len(toks) or toks[i][0] != "rp":
                raise QueryError("missing ')'")
            i += 1
            return inner
        if kind != "word":
            raise QueryError(f"expected an attribute, got {raw!r}")
        attr = raw
        i += 1
        if i >= len(toks) or toks[i][0] != "word" or toks[i][1].lower() not in _OPS:
            raise QueryError(f"expected an operator after {attr!r}")
        op = toks[i][1].lower()
        i += 1
        getter = dialect.resolve(attr, op)
        if op == "pr":
            return lambda o: getter(o) not in (None, "", [])
        if i >= len(toks) or toks[i][0] not in ("str", "word"):
            raise QueryError(f"expected a value after {attr} {op}")
        want = _literal(*toks[i])
        i += 1
        if op in ("sw", "co", "ew") and not isinstance(want, str):
            raise QueryError(f"{op} needs a string value")
        return lambda o: _compare(op, getter(o), want)

    pred = parse_or()
    if i != len(toks):
        raise QueryError(f"unexpected {toks[i][1]!r}")
    return pred


# ---- building blocks for the endpoints' dialects (each area module defines its own, okta-api.md §3.3–§3.5)

COMPARE = frozenset({"eq", "gt", "ge", "lt", "le", "pr"})
EQUALS = frozenset({"eq"})
DATE_COMPARE = frozenset({"eq", "gt", "ge", "lt", "le"})


def profile_attr(obj: Any, name: str) -> Any:
    """`profile.<name>` of a user or group."""
    return obj.profile.get(name)
