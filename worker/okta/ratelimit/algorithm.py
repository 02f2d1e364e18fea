"""The limiter algorithm, as state transitions on plain dicts.

This is the reference the in-process backend runs; limiter.lua is the same transitions, line for
line, for Redis (tests/okta/test_ratelimit_backends.py runs random operation sequences through
both and requires identical answers). Keep the two in step: same fields, same order of checks, same
arithmetic.

State of one tenant:
  B  one Okta bucket: limit, remaining, reset_at, window, rolled, known, paused_until, gen, wlen,
     and per use u: "used:u" (permits this window), "gen:u" (window "used:u" counts), "last:u"
     (time of the use's last permit, for pacing), "resv:u" (the latest slot promised to a waiter)
  T  the tenant: low, lowered_at (the in-flight cap lowered by Okta's concurrency signal)
  L  in-flight leases: lease -> expiry
Times are the limiter's clock (Redis TIME for Redis). `window` is Okta's X-Rate-Limit-Reset, which
names the window; reset_at is when that window ends on our clock, an upper bound that only tightens.
`rolled` = 1: our reset_at passed without news from Okta, so we assumed a fresh window.
"""

from __future__ import annotations

import math
from typing import Any

from worker.okta.ratelimit.headers import Observation
from worker.okta.ratelimit.types import LimiterConfig

State = dict[str, Any]
EARLY = 0.1  # fraction of a pacing interval a waiter may come back early (sleep and clock jitter)


def _min(stored: float | None, new: float) -> float:
    return new if stored is None else min(stored, new)


def effective_cap(T: State, now: float, cfg: LimiterConfig) -> int:
    low, at = T.get("low"), T.get("lowered_at")
    if low is None or at is None:
        return cfg.max_in_flight
    return min(cfg.max_in_flight, low + math.floor((now - at) / cfg.concurrency_recovery_seconds))


def acquire(B: State, T: State, L: dict[str, float], now: float, use: str, share: float,
            cfg: LimiterConfig, lease: str) -> tuple[str, float, str]:
    """("permit", 0, "") or ("wait", seconds, reason); mutates the state."""
    for k in [k for k, exp in L.items() if exp <= now]:  # leases of killed workers
        del L[k]
    paused = B.get("paused_until")
    if paused is not None and now < paused:
        return ("wait", paused - now, "paused")
    limit = B.get("limit") or cfg.initial_limit  # 0 counts as unknown, as in the Lua
    reset_at = B.get("reset_at")
    if reset_at is None or now >= reset_at:
        # No news for a window that has ended: assume a fresh one with the last known limit.
        reset_at = now + (B.get("wlen") or cfg.initial_window_seconds)
        B["reset_at"] = reset_at
        B["remaining"] = limit
        B["gen"] = (B.get("gen") or 0) + 1
        B["rolled"] = 1
    gen = B["gen"]
    remaining = B["remaining"]
    used = B.get("used:" + use) or 0
    if B.get("gen:" + use) != gen:
        used = 0
    cap = max(1, math.floor(share * limit))
    if used >= cap:
        return ("wait", reset_at - now, "share")
    if remaining < 1:
        return ("wait", reset_at - now, "rate")
    # Pacing: spread what this use may still spend evenly until pace_ahead before the reset, and
    # its last `end_probes` over that final uncertain stretch (Reset has 1 s resolution): one that
    # lands after Okta's real reset opens the next window early instead of idling until Reset.
    avail = min(cap - used, remaining)
    if avail > cfg.end_probes:
        interval = max(reset_at - cfg.pace_ahead_seconds - now, 0.0) / (avail - cfg.end_probes)
    else:
        interval = max(reset_at - now, 0.0) / (avail + 1)
    # Burst: once the bucket is known, permits are not paced while more than (1 - burst_fraction)
    # of the share would still be left after them (never the end probes): a small org whose lists
    # need less than that from a bucket does not wait at all, and what is left is spread as above.
    unpaced = (B.get("known") == 1 and avail > cfg.end_probes
               and avail - 1 >= cap - math.floor(cfg.burst_fraction * cap))
    last = B.get("last:" + use)
    due = None if unpaced or last is None else last + interval
    if B.get("known") == 1 and avail <= cfg.end_probes:
        # The end probes go in the window's last uncertain stretch even when the rest of the share
        # went early in a burst (one landing after Okta's real reset opens the next window).
        probe_at = reset_at - cfg.pace_ahead_seconds * avail / (cfg.end_probes + 1)
        due = probe_at if due is None else max(due, probe_at)
    if due is not None and now < due - interval * EARLY:
        if B.get("known") != 1:
            return ("wait", min(due - now, cfg.unknown_wait_seconds), "rate")
        # Waiters are told distinct slots (the next one not promised yet) so they do not all wake
        # for the same slot; a waiter up to EARLY of an interval early still gets its permit.
        slot = due
        resv = B.get("resv:" + use)
        if resv is not None and resv >= slot and resv + interval <= reset_at:  # no promises past the window
            slot = resv + interval
        B["resv:" + use] = slot
        return ("wait", slot - now, "rate")
    if len(L) >= effective_cap(T, now, cfg):
        return ("wait", min(min(L.values()) - now, cfg.in_flight_wait_seconds), "in-flight")
    B["remaining"] = remaining - 1
    B["used:" + use] = used + 1
    B["gen:" + use] = gen
    B["last:" + use] = now
    L[lease] = now + cfg.lease_seconds
    return ("permit", 0.0, "")


def release(B: State, T: State, L: dict[str, float], now: float, lease: str, status: int | None,
            obs: Observation | None, cfg: LimiterConfig) -> None:
    expiry = L.pop(lease, None)
    granted_at = None if expiry is None else expiry - cfg.lease_seconds
    if status is None:
        return  # no response: nothing learned
    if obs is None:
        if status == 429:  # throttled without headers: stay off for a conservative while
            B["remaining"] = 0
            B["paused_until"] = max(B.get("paused_until") or 0.0, now + cfg.missing_headers_pause_seconds)
        return
    if obs.concurrency:
        # Okta's concurrency signal: fewer requests in flight, not a wait for the window. Lower
        # once per burst: again only for a request sent after the last lowering (TCP's rule).
        at = T.get("lowered_at")
        if at is None or (granted_at is not None and granted_at >= at):
            T["low"] = max(1, math.floor(effective_cap(T, now, cfg) / 2))
            T["lowered_at"] = now
        return
    est = now + obs.seconds
    window = B.get("window")
    current = True
    if window is None or obs.reset > window:
        if B.get("known") != 1:
            B["remaining"] = obs.remaining
            B["gen"] = B.get("gen") or 0
        elif B.get("rolled") == 1:  # confirms the window we assumed; keep what we spent in it
            B["remaining"] = _min(B.get("remaining"), obs.remaining)
        else:  # Okta's window ended before our estimate: a fresh count
            B["gen"] = (B.get("gen") or 0) + 1
            B["remaining"] = obs.remaining
        B["window"] = obs.reset
        B["reset_at"] = est
        B["rolled"] = 0
        B["known"] = 1
    elif obs.reset == window and B.get("rolled") != 1:
        # Same window: responses arrive out of order, so remaining only goes down and the reset
        # estimate (an upper bound: Date is truncated, the response took time) only tightens.
        B["remaining"] = _min(B.get("remaining"), obs.remaining)
        B["reset_at"] = _min(B.get("reset_at"), est)
    else:
        current = False  # a late answer from a window already over
    if current:
        B["limit"] = obs.limit
        B["wlen"] = max(B.get("wlen") or 0.0, obs.seconds)
        if status == 429:
            B["remaining"] = 0
            B["paused_until"] = max(B.get("paused_until") or 0.0, est + cfg.pause_margin_seconds)
