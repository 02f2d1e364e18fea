"""Many independent orgs in one process (`oktasim --orgs N`): what each org is (seed, sizes, token),
where it listens, and the orgs file that tells clients.

Addressing: every org listens on its own loopback address on one port — org 0 on --host (default
127.0.0.1), org i on the i-th address after it (127.0.0.2, 127.0.0.3, …). Linux routes all of
127.0.0.0/8 to the loopback interface, so this needs neither DNS nor root, and each org is a
distinct host as real Okta orgs are: oktasync accepts `http://127.0.0.X:PORT` as an Okta domain
(plain http is allowed for loopback hosts), and tenants named after the host stay distinct."""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import math
import os
import random
import socket
from dataclasses import dataclass

import orjson
import tornado.netutil

from oktasim.auth import DEFAULT_TOKEN


@dataclass(frozen=True)
class OrgSpec:
    index: int
    seed: int          # org i is the org `oktasim --seed SEED+i` with the same sizes would serve
    users: int
    groups: int
    apps: int
    tokens: dict[str, str]   # accepted SSWS token -> level; the first is the one the orgs file names


def org_token(seed: int, index: int) -> str:
    """The super-admin token of org `index` when no --api-token is given and there are several orgs:
    one per org, so a token of one org is refused by the others (as in Okta). 42 characters."""
    return f"00sim{index:06d}" + hashlib.sha256(f"oktasim-token:{seed}:{index}".encode()).hexdigest()[:31]


def mixed_size(rng: random.Random) -> tuple[int, int, int]:
    """(users, groups, apps) of one org drawn from a realistic spread of Okta customers: most orgs
    20–500 users, about one in seven some thousands, one in a hundred 20,000."""
    r = rng.random()
    if r < 0.01:
        users = 20_000
    elif r < 0.15:
        users = int(math.exp(rng.uniform(math.log(1_000), math.log(8_000))))
    else:
        users = int(math.exp(rng.uniform(math.log(20), math.log(500))))
    groups = max(4, int(users * rng.uniform(0.05, 0.15)))
    apps = min(400, max(4, 3 + int(users * rng.uniform(0.01, 0.04))))
    return users, groups, apps


def plan(count: int, seed: int, sizes: str, users: int, groups: int, apps: int,
         api_tokens: dict[str, str] | None) -> list[OrgSpec]:
    """The orgs to serve. `sizes` is "fixed" (every org users/groups/apps) or "mixed"."""
    if count < 1:
        raise ValueError(f"--orgs must be at least 1, got {count}")
    if users < 0 or groups < 0 or apps < 0:
        raise ValueError("--users, --groups and --apps must be >= 0")
    if sizes not in ("fixed", "mixed"):
        raise ValueError(f"--org-sizes must be fixed or mixed, got {sizes!r}")
    rng = random.Random(f"org-sizes:{seed}")
    specs = []
    for i in range(count):
        u, g, a = mixed_size(rng) if sizes == "mixed" else (users, groups, apps)
        if api_tokens:
            tokens = dict(api_tokens)
        else:
            tokens = {DEFAULT_TOKEN if count == 1 else org_token(seed, i): "super-admin"}
        specs.append(OrgSpec(i, seed + i, u, g, a, tokens))
    return specs


def addresses(host: str, count: int) -> list[str]:
    """`count` listening addresses: `host` alone for one org, else consecutive IPv4 loopback
    addresses from `host` (skipping .0 and .255, which look like network and broadcast addresses)."""
    if count == 1:
        return [host]
    try:
        first = ipaddress.IPv4Address(host)
    except ValueError:
        first = None
    if first is None or not first.is_loopback:
        raise ValueError(f"--orgs {count} needs --host to be an IPv4 loopback address (127.x.x.x), got {host!r}: "
                         "each org listens on its own loopback address")
    out: list[str] = []
    a = first
    while len(out) < count:
        if not a.is_loopback:
            raise ValueError(f"--orgs {count} from --host {host} runs past 127.255.255.254")
        if a.packed[-1] not in (0, 255):
            out.append(str(a))
        a += 1
    return out


def bind(addrs: list[str], port: int, attempts: int = 50) -> tuple[int, list[list[socket.socket]]]:
    """Listening sockets for every address on one port: `port`, or with 0 the first port free on
    all of them. Returns the port and each address's sockets."""
    for _ in range(attempts if port == 0 else 1):
        bound: list[list[socket.socket]] = []
        try:
            bound.append(tornado.netutil.bind_sockets(port, address=addrs[0]))
            chosen = bound[0][0].getsockname()[1]
            for a in addrs[1:]:
                bound.append(tornado.netutil.bind_sockets(chosen, address=a))
            return chosen, bound
        except OSError as exc:
            for socks in bound:
                for s in socks:
                    s.close()
            if port != 0 or exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no port was free on all {len(addrs)} org addresses")


def url(address: str, port: int) -> str:
    shown = f"[{address}]" if ":" in address else address
    return f"http://{shown}:{port}"


def write_orgs_file(path: str, specs: list[OrgSpec], urls: list[str]) -> None:
    """One JSON line per org: url, token, users, groups, apps, seed. Written whole, then renamed,
    so a reader never sees half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        for spec, u in zip(specs, urls, strict=True):
            f.write(orjson.dumps({"url": u, "token": next(iter(spec.tokens)), "users": spec.users,
                                  "groups": spec.groups, "apps": spec.apps, "seed": spec.seed}) + b"\n")
    os.replace(tmp, path)
