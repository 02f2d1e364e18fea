"""`oktasim [flags]`: parse the command line, build the orgs, listen, and print
'oktasim listening on http://HOST:PORT' once every org is ready."""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
from functools import partial

import tornado.httpserver

from oktasim import fleet
from oktasim.auth import DEFAULT_TOKEN
from oktasim.generate import generate
from oktasim.http import Delegate
from oktasim.pagecache import PageCache
from oktasim.server import Simulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="oktasim", description=(
        "A simulated Okta org over HTTP: generated users, groups, apps, roles; Okta's pagination, "
        "errors, rate limits, SSWS and OAuth (private_key_jwt, DPoP). Prints "
        "'oktasim listening on http://HOST:PORT' when ready."))
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; with --orgs N, org 0's loopback address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for the generated org and faults; org i of --orgs uses SEED+i (default 0)")
    p.add_argument("--users", type=int, default=200, help="users to generate (default 200)")
    p.add_argument("--groups", type=int, default=30, help="groups to generate, Everyone included (default 30)")
    p.add_argument("--apps", type=int, default=12, help="apps to generate (default 12)")
    p.add_argument("--orgs", type=int, default=1,
                   help="independent orgs to serve, each on its own loopback address on the same port (default 1)")
    p.add_argument("--orgs-file", metavar="PATH", help="write one JSON line per org: url, token, users, groups, apps, seed")
    p.add_argument("--org-sizes", choices=("fixed", "mixed"), default="fixed",
                   help="fixed: every org has --users/--groups/--apps; mixed: sizes drawn from a realistic "
                        "spread (most 20-500 users, some thousands, a few 20,000) (default fixed)")
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="added latency per API request, plus 0.5%% of it per returned item (default 0)")
    p.add_argument("--fault-rate", type=float, default=0.0,
                   help="fraction of API requests answered 500, 503 or cut off mid-body (default 0)")
    p.add_argument("--window-seconds", type=float, default=60.0,
                   help="length of every rate-limit window; limits per window stay Okta's (default 60)")
    p.add_argument("--rate-limit-scale", type=float, default=1.0, help="multiply every rate limit (default 1)")
    p.add_argument("--concurrency-limit", type=int, default=75,
                   help="requests in flight before 429 with Limit=0, per org (default 75)")
    p.add_argument("--api-token", action="append", default=[], metavar="TOKEN[=LEVEL]",
                   help="accept this SSWS token; LEVEL read-only, app-group-admin or super-admin (default). "
                        f"Repeatable. Without any, the token {DEFAULT_TOKEN} (super-admin) is accepted "
                        "(with --orgs N, each org has its own, listed in --orgs-file)")
    p.add_argument("--oauth-client-id", help="client id of the one OAuth service app")
    p.add_argument("--oauth-public-key", metavar="PEM_FILE", help="the app's public key (PEM)")
    p.add_argument("--oauth-key-id", help="the key id (kid) client assertions must carry")
    p.add_argument("--oauth-scopes", help="space-separated scopes granted to the app (default: all)")
    p.add_argument("--oauth-require-dpop", action="store_true", help="the app must use DPoP-bound tokens")
    p.add_argument("--log-delay-ms", type=float, default=0.0,
                   help="System Log events become readable 0..MS after they are published (default 0)")
    p.add_argument("--churn-per-minute", type=float, default=0.0,
                   help="apply this many random changes a minute to every org, as POST /__sim/churn does "
                        "(default 0)")
    return p.parse_args(argv)


def _oauth_app(ns: argparse.Namespace):
    from oktasim.oauth import OAuthApp, load_public_key
    from oktasim.scopes import ALL_SCOPES

    if not (ns.oauth_client_id or ns.oauth_public_key or ns.oauth_key_id):
        return None
    if not (ns.oauth_client_id and ns.oauth_public_key and ns.oauth_key_id):
        raise ValueError("--oauth-client-id, --oauth-public-key and --oauth-key-id go together")
    try:
        with open(ns.oauth_public_key, "rb") as f:
            pem = f.read()
    except OSError as exc:
        raise ValueError(f"--oauth-public-key: cannot read {ns.oauth_public_key}: {exc.strerror}") from None
    load_public_key(pem)
    scopes = frozenset(ns.oauth_scopes.split()) if ns.oauth_scopes else ALL_SCOPES
    return OAuthApp(ns.oauth_client_id, pem, ns.oauth_key_id, scopes, bool(ns.oauth_require_dpop))


def build(ns: argparse.Namespace) -> tuple[list[fleet.OrgSpec], list[Simulator], list[str]]:
    """The orgs, their simulators and their listening addresses. One org is generated now; with
    several, each is generated on its first request (so a thousand orgs start in seconds and only
    the ones used take memory)."""
    from oktasim.auth import parse_api_token

    if ns.log_delay_ms < 0 or ns.churn_per_minute < 0:
        raise ValueError("--log-delay-ms and --churn-per-minute must be >= 0")
    tokens = dict(parse_api_token(spec) for spec in ns.api_token) if ns.api_token else None
    oauth_app = _oauth_app(ns)
    specs = fleet.plan(ns.orgs, ns.seed, ns.org_sizes, ns.users, ns.groups, ns.apps, tokens)
    addrs = fleet.addresses(ns.host, len(specs))
    pages = PageCache()    # one budget for every org's cached pages
    sims = []
    for spec in specs:
        make = partial(_generate, spec, ns.log_delay_ms)
        sims.append(Simulator(make() if len(specs) == 1 else make, seed=spec.seed, latency_ms=ns.latency_ms,
                              fault_rate=ns.fault_rate, window_seconds=ns.window_seconds,
                              rate_limit_scale=ns.rate_limit_scale, concurrency_limit=ns.concurrency_limit,
                              api_tokens=spec.tokens, oauth_app=oauth_app, pages=pages))
    return specs, sims, addrs


def _generate(spec: fleet.OrgSpec, log_delay_ms: float):
    org = generate(spec.seed, spec.users, spec.groups, spec.apps)
    org.log.delay_ms = log_delay_ms
    return org


def _allow_open_files(needed: int) -> None:
    """A thousand orgs listen on a thousand sockets, plus their clients' connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def serve(specs: list[fleet.OrgSpec], sims: list[Simulator], addrs: list[str], port: int,
                orgs_file: str | None, churn_per_minute: float = 0.0) -> None:
    _allow_open_files(4 * len(sims) + 1024)
    bound_port, sockets = fleet.bind(addrs, port)
    urls = [fleet.url(a, bound_port) for a in addrs]
    for sim, socks, u in zip(sims, sockets, urls, strict=True):
        sim.base = u
        server = tornado.httpserver.HTTPServer(Delegate(sim.handle), idle_connection_timeout=300)
        server.add_sockets(socks)
    if orgs_file:
        fleet.write_orgs_file(orgs_file, specs, urls)
    print(f"oktasim listening on {urls[0]}", flush=True)
    churners = [asyncio.create_task(sim.churn_forever(churn_per_minute, spec.seed))
                for sim, spec in zip(sims, specs, strict=True)] if churn_per_minute else []
    await asyncio.Event().wait()
    del churners


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    # tornado logs client mistakes (malformed HTTP, resets) as warnings; stderr may be a pipe nobody
    # reads (test fixtures), so keep it for the simulator's own bounded messages.
    logging.getLogger("tornado").addHandler(logging.NullHandler())
    logging.getLogger("tornado").propagate = False
    try:
        specs, sims, addrs = build(ns)
    except ValueError as exc:
        print(f"oktasim: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        asyncio.run(serve(specs, sims, addrs, ns.port, ns.orgs_file, ns.churn_per_minute))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"oktasim: cannot listen on {ns.host}:{ns.port}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(1) from None
