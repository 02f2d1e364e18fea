"""The System Log: the org's event store, the LogEvent JSON shape, and `GET /api/v1/logs` with Okta's
query dialect (okta-incremental.md §1.2).

Every area writes its events through `LogState.emit` next to the change that causes them. An event
is published at once but becomes readable only after a persistence delay (0 to --log-delay-ms,
seeded jitter), so readers can see events out of `published` order, as Okta warns. Persisted events
sit in one append-only list in persistence order: polling reads and `after` cursors are positions
in it, so a poll costs the page it returns, not the size of the log.

Polling mode (no `until`, ascending): persistence order, `since` compares with persistence time, a
`next` link always, empty pages at the head. Bounded mode (`until` given, or `sortOrder=DESCENDING`):
events with since <= published < until ordered by `published`, finite pages. 90-day retention;
`since` before 180 days ago is 400 E0000053."""

from __future__ import annotations

import heapq
import random
import uuid
from bisect import bisect_left
from dataclasses import dataclass, field
from urllib.parse import urlencode

import orjson

from oktasim import errors
from oktasim.errors import OktaError
from oktasim.query import Dialect
from oktasim.routing import Request, Response, compile_expression, limit_arg, route
from oktasim.scopes import LOGS_READ
from oktasim.timestamps import iso, now, parse_iso

DAY = 86400
RETENTION_DAYS = 90
MAX_SINCE_DAYS = 180
DEFAULT_WINDOW_DAYS = 7        # `since` defaults to 7 days before `until` (or now)
MAX_Q_KEYWORDS, MAX_Q_KEYWORD_LEN = 10, 40


def target(id: str, type: str, alternate_id: str | None, display_name: str | None) -> dict:
    """One entry of a LogEvent's `target` (or its `actor`)."""
    return {"id": id, "type": type, "alternateId": alternate_id or "unknown", "displayName": display_name,
            "detailEntry": None}


# The objects of every area as targets (duck-typed: this module imports no other area).
def _full_name(u) -> str:
    return f"{u.profile.get('firstName') or ''} {u.profile.get('lastName') or ''}".strip()


def user_target(u) -> dict:
    return target(u.id, "User", u.profile.get("login"), _full_name(u))


def group_target(g) -> dict:
    return target(g.id, "UserGroup", "unknown", g.profile.get("name"))


def app_target(a) -> dict:
    return target(a.id, "AppInstance", a.label, a.label)


def client_target(a) -> dict:
    """An OAuth client app as a target (or actor): Okta's PublicClientApp, named by its client id."""
    return target(a.id, "PublicClientApp", a.id, a.label)


def app_user_target(a, u) -> dict:
    """Okta's AppUser has its own `0ua` id; the simulator derives a stable one from app and user."""
    return target("0ua" + uuid.uuid5(uuid.NAMESPACE_OID, a.id + u.id).hex[:17], "AppUser",
                  u.profile.get("login"), _full_name(u))


@dataclass
class Context:
    """Who made the change and through what (the actor, transaction and client of its events)."""
    actor: dict
    transaction_type: str = "WEB"          # WEB for API and admin-console changes (churn)
    token_id: str | None = None            # transaction.detail.requestApiTokenId for SSWS calls
    ip: str = "127.0.0.1"
    user_agent: str = "oktasim"
    request_uri: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:20])


SYSTEM = Context(target("0oa_okta_system", "SystemPrincipal", "system@okta.com", "Okta System"))


class Event:
    __slots__ = ("published", "persisted", "seq", "body", "text", "raw")

    def __init__(self, published: float, body: dict):
        self.published = published
        self.persisted = 0.0
        self.seq = 0
        self.body = body
        self.text = _search_text(body)
        self.raw: bytes | None = None

    def bytes(self) -> bytes:
        if self.raw is None:
            self.raw = orjson.dumps(self.body)
        return self.raw


def _search_text(body: dict) -> str:
    """What `q` keywords are matched against (lower case)."""
    parts = [body["eventType"], body["displayMessage"], body["outcome"]["result"], body["client"]["ipAddress"]]
    for who in [body["actor"], *body["target"]]:
        parts += [who["id"], who["alternateId"] or "", who["displayName"] or ""]
    return " ".join(p for p in parts if p).lower()


class EventLog:
    """The org's events: pending (published, not yet persisted) in a heap, persisted in a list."""

    def __init__(self, seed: int = 0, delay_ms: float = 0.0):
        self.recording = False          # the generated org starts with an empty log
        self.delay_ms = delay_ms
        self.context: Context | None = None
        self._rng = random.Random(f"log:{seed}")
        self._pending: list[tuple[float, int, Event]] = []
        self._events: list[Event] = []  # persisted, in persistence order
        self.first = 0                  # position of _events[0] (older ones fell out of retention)
        self._written = 0

    def write(self, event_type: str, message: str, targets: list[dict], debug: dict | None = None) -> None:
        if not self.recording:
            return
        ctx = self.context or SYSTEM
        t = now()
        data = {"requestId": ctx.request_id, **({"requestUri": ctx.request_uri} if ctx.request_uri else {}),
                **(debug or {})}
        body = {
            "actor": ctx.actor,
            "client": {"userAgent": {"rawUserAgent": ctx.user_agent, "os": "Unknown", "browser": "UNKNOWN"},
                       "zone": "null", "device": "Unknown", "id": None, "ipAddress": ctx.ip,
                       "geographicalContext": None},
            "device": None,
            "authenticationContext": {"authenticationProvider": None, "credentialProvider": None,
                                      "credentialType": None, "issuer": None, "interface": None,
                                      "authenticationStep": 0, "externalSessionId": "unknown"},
            "displayMessage": message, "eventType": event_type,
            "outcome": {"result": "SUCCESS", "reason": None},
            "published": iso(t),
            "securityContext": {"asNumber": None, "asOrg": None, "isp": None, "domain": None, "isProxy": None},
            "severity": "INFO",
            "debugContext": {"debugData": data},
            "legacyEventType": None,
            "transaction": {"type": ctx.transaction_type, "id": ctx.request_id,
                            "detail": {"requestApiTokenId": ctx.token_id} if ctx.token_id else {}},
            "uuid": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "version": "0",
            "request": {"ipChain": [{"ip": ctx.ip, "geographicalContext": None, "version": "V4", "source": None}]},
            "target": targets,
        }
        ev = Event(t, body)
        delay = self._rng.uniform(0, self.delay_ms / 1000) if self.delay_ms else 0.0
        self._written += 1
        heapq.heappush(self._pending, (t + delay, self._written, ev))

    def settle(self) -> None:
        """Persist what is due (in persistence order) and drop what is past retention."""
        t = now()
        while self._pending and self._pending[0][0] <= t:
            at, _, ev = heapq.heappop(self._pending)
            ev.persisted = at
            ev.seq = self.first + len(self._events)
            self._events.append(ev)
        cutoff = t - RETENTION_DAYS * DAY
        gone = 0
        while gone < len(self._events) and self._events[gone].published < cutoff:
            gone += 1
        if gone:
            del self._events[:gone]
            self.first += gone

    def persisted(self) -> list[Event]:
        self.settle()
        return self._events


class LogState:
    """The System Log of the org (a mixin of Org); areas call `self.emit(...)` for every change."""

    def _init_logs(self, seed: int) -> None:
        self.log = EventLog(seed)

    def emit(self, event_type: str, message: str, targets: list[dict], debug: dict | None = None) -> None:
        self.log.write(event_type, message, targets, debug)


# ---------------------------------------------------------------- query dialect

def _path(*keys: str):
    def get(ev: Event):
        v = ev.body
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v
    return get


def _targets(key: str):
    return lambda ev: [t.get(key) for t in ev.body["target"]]


_TEXT_OPS = frozenset({"eq", "ne", "sw", "co", "ew", "pr"})
_FIELDS = {
    "eventType": _path("eventType"), "uuid": _path("uuid"), "severity": _path("severity"),
    "displayMessage": _path("displayMessage"), "legacyEventType": _path("legacyEventType"),
    "outcome.result": _path("outcome", "result"), "outcome.reason": _path("outcome", "reason"),
    "actor.id": _path("actor", "id"), "actor.type": _path("actor", "type"),
    "actor.alternateId": _path("actor", "alternateId"), "actor.displayName": _path("actor", "displayName"),
    "client.ipAddress": _path("client", "ipAddress"),
    "transaction.id": _path("transaction", "id"), "transaction.type": _path("transaction", "type"),
    "transaction.detail.requestApiTokenId": _path("transaction", "detail", "requestApiTokenId"),
    "target.id": _targets("id"), "target.type": _targets("type"),
    "target.alternateId": _targets("alternateId"), "target.displayName": _targets("displayName"),
}
LOG_FILTER = Dialect(getters=_FIELDS, ops={k: _TEXT_OPS for k in _FIELDS}, allow_not=True)


def _bad_filter() -> OktaError:
    return errors.invalid("Invalid search criteria.", ["filter: unsupported expression (published is not "
                                                       "filterable; use since and until)"])


def _since_too_old() -> OktaError:
    return OktaError(400, "E0000053", "Invalid date. 'since' must be later than 180 days ago.")


def _date_arg(req: Request, name: str) -> float | None:
    raw = req.arg(name)
    if raw is None or raw == "":
        return None
    t = parse_iso(raw)
    if t is None:
        raise errors.invalid(f"Api validation failed: {name}", [f"{name}: '{raw}' is not a valid ISO 8601 date"])
    return t


def _keywords(req: Request) -> list[str]:
    q = req.arg("q")
    words = q.lower().split() if q else []
    if len(words) > MAX_Q_KEYWORDS or any(len(w) > MAX_Q_KEYWORD_LEN for w in words):
        raise errors.invalid("Api validation failed: q", [
            f"q: at most {MAX_Q_KEYWORDS} keywords of at most {MAX_Q_KEYWORD_LEN} characters"])
    return words


# Cursors: "<persisted ms>_<position>" in polling mode, "<published ms>_<position>_b" in bounded mode.
def _cursor(req: Request, bounded: bool) -> tuple[float, int] | None:
    raw = req.arg("after")
    if not raw:
        return None
    parts = raw.split("_")
    try:
        if bounded and len(parts) == 3 and parts[2] == "b":
            return int(parts[0]) / 1000, int(parts[1])
        if not bounded and len(parts) == 2:
            return int(parts[0]) / 1000, int(parts[1])
    except ValueError:
        pass
    raise errors.bad_cursor()


def _link(req: Request, limit: int, after: str | None, drop: tuple[str, ...]) -> str:
    params = [(k, v) for k, vs in req.args.items() if k not in ("after", "limit", *drop) for v in vs]
    if after is not None:
        params.append(("after", after))
    params.append(("limit", str(limit)))
    return f"{req.base}{req.path}?{urlencode(params)}"


def list_logs(req: Request) -> Response:
    log: EventLog = req.org.log
    limit = limit_arg(req, 100, 1000)
    since, until = _date_arg(req, "since"), _date_arg(req, "until")
    order = (req.arg("sortOrder") or "ASCENDING").upper()
    if order not in ("ASCENDING", "DESCENDING"):
        raise errors.invalid("Api validation failed: sortOrder", ["sortOrder: ASCENDING or DESCENDING"])
    t = now()
    if since is not None and since < t - MAX_SINCE_DAYS * DAY:
        raise _since_too_old()
    flt = req.arg("filter")
    pred = compile_expression(flt, LOG_FILTER, _bad_filter) if flt else None
    words = _keywords(req)

    def keep(ev: Event) -> bool:
        return (pred is None or pred(ev)) and all(w in ev.text for w in words)

    events = log.persisted()
    self_link = ("Link", f'<{_link(req, limit, req.arg("after"), ())}>; rel="self"')
    if until is None and order == "ASCENDING":
        return _poll(req, log, events, limit, since, keep, self_link)
    return _bounded(req, events, limit, since, until if until is not None else t, order, keep, self_link)


def _poll(req, log: EventLog, events: list[Event], limit: int, since, keep, self_link) -> Response:
    cur = _cursor(req, bounded=False)
    if cur is not None:
        start = min(max(cur[1], log.first) - log.first, len(events))
    else:
        since = since if since is not None else now() - DEFAULT_WINDOW_DAYS * DAY
        start = bisect_left(events, since, key=lambda e: e.persisted)
    out: list[Event] = []
    i = start
    while i < len(events) and len(out) < limit:
        if keep(events[i]):
            out.append(events[i])
        i += 1
    # the next poll starts after what this one scanned; at the head that is the head itself
    last = events[i - 1].persisted if i > 0 and events else (cur[0] if cur else now())
    nxt = f"{int(last * 1000)}_{log.first + i}"
    return Response(200, b"[" + b",".join(e.bytes() for e in out) + b"]",
                    [self_link, ("Link", f'<{_link(req, limit, nxt, ("since",))}>; rel="next"')], items=len(out))


def _bounded(req, events: list[Event], limit: int, since, until: float, order: str, keep,
             self_link) -> Response:
    since = since if since is not None else until - DEFAULT_WINDOW_DAYS * DAY
    desc = order == "DESCENDING"

    def position(e: Event) -> tuple[int, int]:
        return int(e.published * 1000), e.seq

    chosen = sorted((e for e in events if since <= e.published < until and keep(e)), key=position, reverse=desc)
    cur = _cursor(req, bounded=True)
    if cur is not None:
        key = (int(round(cur[0] * 1000)), cur[1])
        chosen = [e for e in chosen if (position(e) < key if desc else position(e) > key)]
    page_events, more = chosen[:limit], len(chosen) > limit
    headers = [self_link]
    if more:
        last = page_events[-1]
        nxt = f"{int(last.published * 1000)}_{last.seq}_b"
        headers.append(("Link", f'<{_link(req, limit, nxt, ())}>; rel="next"'))
    return Response(200, b"[" + b",".join(e.bytes() for e in page_events) + b"]", headers,
                    items=len(page_events))


ROUTES = [route("GET", "/api/v1/logs", list_logs, LOGS_READ, cacheable=False)]
