"""`oktasim [flags]`: the Okta org simulator's HTTP server (tornado on asyncio).

Per /api or /oauth2 request: concurrency gate -> authenticate (not for the token endpoint) ->
rate-limit check -> latency -> fault -> route (authorize, handler) -> response. Every response
carries Date, X-Okta-Request-Id, the three X-Rate-Limit headers and Content-Type application/json."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import traceback
from collections import OrderedDict
from urllib.parse import parse_qs

import orjson
import tornado.httpserver
import tornado.netutil
from tornado import httputil

from oktasim import errors, routes, timestamps
from oktasim.churn import Churner
from oktasim.errors import OktaError
from oktasim.generate import generate
from oktasim.http import Delegate, Reply
from oktasim.org import Org
from oktasim.routing import Request, Response

DEFAULT_TOKEN = "00sim-super-admin-token-0000000000000000000"
ITEM_LATENCY_SHARE = 0.005
PAGE_CACHE_ENTRIES = 512     # answers to GETs kept until the org changes (about 80 MB of user pages)   # each returned item costs this fraction of --latency-ms


class Simulator:
    def __init__(self, org: Org, *, seed: int = 0, latency_ms: float = 0.0, fault_rate: float = 0.0,
                 window_seconds: float = 60.0, rate_limit_scale: float = 1.0, concurrency_limit: int = 75,
                 api_tokens: dict[str, str] | None = None, oauth_app=None):
        from oktasim.auth import Authenticator
        from oktasim.oauth import TokenEndpoint
        from oktasim.ratelimits import RateLimits

        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"--fault-rate must be between 0 and 1, got {fault_rate}")
        if latency_ms < 0:
            raise ValueError(f"--latency-ms must be >= 0, got {latency_ms}")
        self.org = org
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
        self._pages: OrderedDict[tuple[str, str, str], Response] = OrderedDict()

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
            self._pages.clear()
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
            self._pages.clear()

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
        elif path.startswith("/api/"):
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
                    self._pages.clear()
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

    # A GET's answer depends only on the org, so pages are kept until the next change (any other
    # method). This is what lets one process serve well over 1,000 pages of 200 users a second.
    def _cache_key(self, r) -> tuple[str, str, str]:
        return (r.uri, r.headers.get("okta-response") or "", r.headers.get("Content-Type") or "")

    def _cached(self, r) -> Response | None:
        hit = self._pages.get(self._cache_key(r))
        if hit is not None:
            self._pages.move_to_end(self._cache_key(r))
        return hit

    def _remember(self, r, resp: Response) -> None:
        if r.method == "GET" and resp.status == 200 and resp.body:
            self._pages[self._cache_key(r)] = resp
            if len(self._pages) > PAGE_CACHE_ENTRIES:
                self._pages.popitem(last=False)

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


# ---------------------------------------------------------------------- command line

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="oktasim", description=(
        "A simulated Okta org over HTTP: generated users, groups, apps, roles; Okta's pagination, "
        "errors, rate limits, SSWS and OAuth (private_key_jwt, DPoP). Prints "
        "'oktasim listening on http://HOST:PORT' when ready."))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed for the generated org and faults (default 0)")
    p.add_argument("--users", type=int, default=200, help="users to generate (default 200)")
    p.add_argument("--groups", type=int, default=30, help="groups to generate, Everyone included (default 30)")
    p.add_argument("--apps", type=int, default=12, help="apps to generate (default 12)")
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="added latency per API request, plus 0.5%% of it per returned item (default 0)")
    p.add_argument("--fault-rate", type=float, default=0.0,
                   help="fraction of API requests answered 500, 503 or cut off mid-body (default 0)")
    p.add_argument("--window-seconds", type=float, default=60.0,
                   help="length of every rate-limit window; limits per window stay Okta's (default 60)")
    p.add_argument("--rate-limit-scale", type=float, default=1.0, help="multiply every rate limit (default 1)")
    p.add_argument("--concurrency-limit", type=int, default=75,
                   help="requests in flight before 429 with Limit=0 (default 75)")
    p.add_argument("--api-token", action="append", default=[], metavar="TOKEN[=LEVEL]",
                   help="accept this SSWS token; LEVEL read-only, app-group-admin or super-admin (default). "
                        f"Repeatable. Without any, the token {DEFAULT_TOKEN} (super-admin) is accepted")
    p.add_argument("--oauth-client-id", help="client id of the one OAuth service app")
    p.add_argument("--oauth-public-key", metavar="PEM_FILE", help="the app's public key (PEM)")
    p.add_argument("--oauth-key-id", help="the key id (kid) client assertions must carry")
    p.add_argument("--oauth-scopes", help="space-separated scopes granted to the app (default: all)")
    p.add_argument("--oauth-require-dpop", action="store_true", help="the app must use DPoP-bound tokens")
    p.add_argument("--log-delay-ms", type=float, default=0.0,
                   help="System Log events become readable 0..MS after they are published (default 0)")
    p.add_argument("--churn-per-minute", type=float, default=0.0,
                   help="apply this many random changes a minute, as POST /__sim/churn does (default 0)")
    return p.parse_args(argv)


def build(ns: argparse.Namespace) -> Simulator:
    from oktasim.auth import parse_api_token
    from oktasim.oauth import OAuthApp, load_public_key
    from oktasim.scopes import ALL_SCOPES

    tokens: dict[str, str] | None = None
    if ns.api_token:
        tokens = dict(parse_api_token(spec) for spec in ns.api_token)
    oauth_app = None
    if ns.oauth_client_id or ns.oauth_public_key or ns.oauth_key_id:
        if not (ns.oauth_client_id and ns.oauth_public_key and ns.oauth_key_id):
            raise ValueError("--oauth-client-id, --oauth-public-key and --oauth-key-id go together")
        try:
            with open(ns.oauth_public_key, "rb") as f:
                pem = f.read()
        except OSError as exc:
            raise ValueError(f"--oauth-public-key: cannot read {ns.oauth_public_key}: {exc.strerror}") from None
        load_public_key(pem)
        scopes = frozenset(ns.oauth_scopes.split()) if ns.oauth_scopes else ALL_SCOPES
        oauth_app = OAuthApp(ns.oauth_client_id, pem, ns.oauth_key_id, scopes, bool(ns.oauth_require_dpop))
    org = generate(ns.seed, ns.users, ns.groups, ns.apps)
    if ns.log_delay_ms < 0 or ns.churn_per_minute < 0:
        raise ValueError("--log-delay-ms and --churn-per-minute must be >= 0")
    org.log.delay_ms = ns.log_delay_ms
    return Simulator(org, seed=ns.seed, latency_ms=ns.latency_ms, fault_rate=ns.fault_rate,
                     window_seconds=ns.window_seconds, rate_limit_scale=ns.rate_limit_scale,
                     concurrency_limit=ns.concurrency_limit, api_tokens=tokens, oauth_app=oauth_app)


async def serve(sim: Simulator, host: str, port: int, churn_per_minute: float = 0.0, seed: int = 0) -> None:
    sockets = tornado.netutil.bind_sockets(port, address=host)
    server = tornado.httpserver.HTTPServer(Delegate(sim.handle), idle_connection_timeout=300)
    server.add_sockets(sockets)
    bound = sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    sim.base = f"http://{shown}:{bound}"
    print(f"oktasim listening on {sim.base}", flush=True)
    if churn_per_minute:
        await sim.churn_forever(churn_per_minute, seed)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    # tornado logs client mistakes (malformed HTTP, resets) as warnings; stderr may be a pipe nobody
    # reads (test fixtures), so keep it for the simulator's own bounded messages.
    logging.getLogger("tornado").addHandler(logging.NullHandler())
    logging.getLogger("tornado").propagate = False
    try:
        sim = build(ns)
    except ValueError as exc:
        print(f"oktasim: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        asyncio.run(serve(sim, ns.host, ns.port, ns.churn_per_minute, ns.seed))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"oktasim: cannot listen on {ns.host}:{ns.port}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(1) from None
