"""One simulated org behind HTTP: its admin endpoints and the API pipeline (the command line and
listening are in oktasim.cli).

Per /api or /oauth2 request: concurrency gate -> authenticate (not for the token endpoint) ->
rate-limit check -> latency -> fault -> route (authorize, handler) -> response. Every response
carries Date, X-Okta-Request-Id, the three X-Rate-Limit headers and Content-Type application/json."""

from __future__ import annotations

import asyncio
import random
import sys
import traceback
from collections.abc import Callable
from urllib.parse import parse_qs

import orjson
from tornado import httputil

from oktasim import errors, routes, timestamps
from oktasim.auth import DEFAULT_TOKEN, Authenticator
from oktasim.churn import Churner
from oktasim.errors import OktaError
from oktasim.http import Reply
from oktasim.oauth import TokenEndpoint
from oktasim.org import Org
from oktasim.pagecache import PageCache
from oktasim.ratelimits import RateLimits
from oktasim.routing import Request, Response

ITEM_LATENCY_SHARE = 0.005   # each returned item costs this fraction of --latency-ms


class Simulator:
    """One org: `org` is the Org, or a function making it on first use (a process hosting many
    orgs generates each when it is first asked for)."""

    def __init__(self, org: Org | Callable[[], Org], *, seed: int = 0, latency_ms: float = 0.0,
                 fault_rate: float = 0.0, window_seconds: float = 60.0, rate_limit_scale: float = 1.0,
                 concurrency_limit: int = 75, api_tokens: dict[str, str] | None = None, oauth_app=None,
                 pages: PageCache | None = None):
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"--fault-rate must be between 0 and 1, got {fault_rate}")
        if latency_ms < 0:
            raise ValueError(f"--latency-ms must be >= 0, got {latency_ms}")
        self._org = org if isinstance(org, Org) else None
        self._make_org = None if isinstance(org, Org) else org
        self.latency_ms = latency_ms
        self.fault_rate = fault_rate
        self._faults = random.Random(f"faults:{seed}")
        self.rl = RateLimits(window_seconds, rate_limit_scale, concurrency_limit)
        self.auth = Authenticator(api_tokens if api_tokens is not None else {DEFAULT_TOKEN: "super-admin"})
        self.token_endpoint = TokenEndpoint(oauth_app, self.auth)
        self.base = ""                 # set once listening: http://host:port
        self.requests_total = 0
        self.faults_total = 0          # 500/503/cut answers injected by --fault-rate (chaos figures)
        self._logged = 0
        self._pages = pages if pages is not None else PageCache()
        self._version = 0              # bumped by every change: pages cached before it are stale

    @property
    def org(self) -> Org:
        if self._org is None:
            self._org = self._make_org()
            self._make_org = None
        return self._org

    # ------------------------------------------------------------------ admin endpoints
    def state(self) -> dict:
        return self.org.snapshot()

    def stats(self) -> dict:
        return {"requests_total": self.requests_total, "faults_total": self.faults_total, **self.rl.stats(),
                "latency_ms": self.latency_ms}

    def reset_stats(self) -> None:
        self.requests_total = 0
        self.faults_total = 0
        self.rl.reset_stats()

    async def admin(self, r: httputil.HTTPServerRequest, reply: Reply) -> None:
        path, method = r.path.rstrip("/"), r.method
        if path == "/__sim/state" and method == "GET":
            await reply.send(200, orjson.dumps(self.state()))
        elif path == "/__sim/stats" and method == "GET":
            await reply.send(200, orjson.dumps(self.stats()))
        elif path == "/__sim/reset-stats" and method == "POST":
            self.reset_stats()
            await reply.send(200, b"{}")
        elif path in ("/__sim/churn", "/__sim/clock") and method == "POST":
            status, body = self.admin_change(path, r.body)
            await reply.send(status, orjson.dumps(body))
        else:
            known = path in ("/__sim/state", "/__sim/stats", "/__sim/reset-stats", "/__sim/churn", "/__sim/clock")
            err = errors.method_not_allowed() if known else errors.path_not_found()
            await reply.send(err.status, orjson.dumps(err.body()))

    def admin_change(self, path: str, raw: bytes) -> tuple[int, dict]:
        """POST /__sim/churn {"changes": N, "seed": S} and POST /__sim/clock {"advance_seconds": S}."""
        try:
            body = orjson.loads(raw or b"{}")
            if path == "/__sim/clock":
                return 200, {"offset_seconds": timestamps.advance(float(body.get("advance_seconds", 0))),
                             "now": timestamps.now_iso()}
            changes = Churner(self.org, int(body.get("seed", 0))).run(int(body.get("changes", 1)))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            err = errors.invalid(f"Bad admin request: {exc}")
            return err.status, err.body()
        finally:
            self._version += 1
        return 200, {"applied": len(changes), "changes": changes}

    async def churn_forever(self, per_minute: float, seed: int) -> None:
        """--churn-per-minute: one change at a time, evenly spread."""
        churner = Churner(self.org, seed)
        while True:
            await asyncio.sleep(60 / per_minute)
            try:
                churner.run(1)
            except Exception:  # a churn bug must not stop the server
                self._log_exception()
            self._version += 1

    # ------------------------------------------------------------------ the API pipeline
    async def handle(self, r: httputil.HTTPServerRequest, reply: Reply) -> None:
        try:
            if r.path.startswith("/__sim/"):
                await self.admin(r, reply)
                return
            self.requests_total += 1
            if not self.rl.begin():
                err = errors.rate_limited()
                await reply.send(err.status, orjson.dumps(err.body()), self.rl.concurrency_headers())
                return
            try:
                await self._pipeline(r, reply)
            finally:
                self.rl.end()
        except Exception:  # the last line of defence: a JSON 500, never a dropped request
            self._log_exception()
            err = errors.internal_error()
            await reply.send(err.status, orjson.dumps(err.body()))

    async def _pipeline(self, r: httputil.HTTPServerRequest, reply: Reply) -> None:
        method, path = r.method, r.path
        origin = f"{r.protocol}://{r.host}"
        rate_headers: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        cut = False
        principal_id, principal, early_error = "anonymous", None, None
        if method in ("POST", "PUT") and "Content-Length" not in r.headers \
                and "Transfer-Encoding" not in r.headers:
            early_error = errors.length_required()
        elif path.startswith("/api/") or path.startswith("/oauth2/v1/clients/"):   # management API
            try:
                principal = self.auth.authenticate(method, origin + r.uri, r.headers)
                principal_id = principal.id
            except OktaError as exc:
                early_error = exc
        elif path == "/oauth2/v1/token":
            r._parse_body()   # the form: client_assertion, grant_type, scope, client_id
            form = {k: v[-1].decode("utf-8", "replace") for k, v in r.body_arguments.items()}
            principal_id = self.token_endpoint.principal_id(form)
        try:
            decision = self.rl.check(method, path, principal_id)
            rate_headers = decision.headers
            if not decision.allowed:
                raise errors.rate_limited()
            if early_error is not None:
                raise early_error
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            fault = self._fault()
            if fault == 500:
                raise errors.internal_error()
            if fault == 503:
                raise errors.service_unavailable()
            cut = fault == "cut"
            if path == "/oauth2/v1/token":
                if method != "POST":
                    raise errors.method_not_allowed()
                status, headers, body = self.token_endpoint.handle(origin + r.uri, r.headers, form)
                resp = Response(status, orjson.dumps(body), list(headers.items()))
            else:
                route, params = routes.match(method, path)
                self.auth.authorize(principal, route.scope, route.operation)
                resp = self._cached(r) if method == "GET" and route.cacheable else None
                if method != "GET":
                    self._version += 1
                    self.org.log.context = self.org.request_context(principal, r.uri, r.remote_ip,
                                                                    r.headers.get("User-Agent", ""))
                if resp is None:
                    req = Request(method, path, _query(r.query), self.base, r.headers, r.body, self.org)
                    resp = route.handler(req, **params)
                    if route.cacheable:
                        self._remember(r, resp)
                if self.latency_ms and resp.items:
                    await asyncio.sleep(self.latency_ms * ITEM_LATENCY_SHARE * resp.items / 1000)
            status, body, extra = resp.status, resp.body, resp.headers
        except OktaError as exc:
            status = exc.status
            body = b"" if getattr(exc, "empty_body", False) else orjson.dumps(exc.body())
            extra = list(exc.headers.items())
        except Exception:  # never a stack trace to the client
            self._log_exception()
            err = errors.internal_error()
            status, body, extra = err.status, orjson.dumps(err.body()), []
        if origin != self.base and body:
            body = body.replace(self.base.encode(), origin.encode())
            extra = [(k, v.replace(self.base, origin)) for k, v in extra]
        await reply.send(status, body, rate_headers, extra, cut=cut)

    # GET answers are kept until the org changes (any other method bumps the version).
    def _cache_key(self, r) -> tuple:
        return (id(self), self._version, r.uri, r.headers.get("okta-response") or "",
                r.headers.get("Content-Type") or "")

    def _cached(self, r) -> Response | None:
        return self._pages.get(self._cache_key(r))

    def _remember(self, r, resp: Response) -> None:
        if r.method == "GET" and resp.status == 200 and resp.body:
            self._pages.put(self._cache_key(r), resp)

    def _fault(self) -> int | str | None:
        if not self.fault_rate:
            return None
        if self._faults.random() >= self.fault_rate:
            return None
        self.faults_total += 1
        return self._faults.choice((500, 503, "cut"))

    def _log_exception(self) -> None:
        # stderr may be a pipe nobody reads (the test fixture): keep it short and bounded.
        if self._logged < 20:
            self._logged += 1
            print("oktasim: internal error:\n" + traceback.format_exc(limit=6), file=sys.stderr, flush=True)



def _query(raw: str) -> dict[str, list[str]]:
    return parse_qs(raw, keep_blank_values=True) if raw else {}
