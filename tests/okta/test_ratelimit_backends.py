"""The limiter algorithm on both backends (in-process and Redis), driven by an injected clock.

Every test runs twice: MemoryLimiter and RedisLimiter over a real Redis. The last test feeds random
operation sequences to both and requires the same answers, which keeps algorithm.py and
limiter.lua the same algorithm.
"""

from __future__ import annotations

import math
import uuid
from email.utils import formatdate

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.okta.ratelimit import LimiterConfig, MemoryLimiter, Permit, RedisLimiter, Wait

T0 = 1_700_000_000.0
USERS = ("GET", "/api/v1/users")


class Clock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def okta_headers(limit: int, remaining: int, reset: int, date: float) -> dict[str, str]:
    """Headers as Okta sends them: Reset in epoch seconds, Date in RFC 1123 (whole seconds)."""
    return {"X-Rate-Limit-Limit": str(limit), "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(reset), "Date": formatdate(math.floor(date), usegmt=True)}


@pytest.fixture(params=["memory", "redis"])
def make(request):
    """make(config=None, clock=None) -> a limiter of the parametrized backend."""
    clients = []

    def factory(config: LimiterConfig | None = None, clock: Clock | None = None):
        clock = clock or Clock()
        if request.param == "memory":
            return MemoryLimiter(config, clock=clock)
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        clients.append(client)
        return RedisLimiter(client, config, prefix=f"test:{uuid.uuid4().hex[:8]}", clock=clock)

    yield factory
    for c in clients:
        c.close()


def take(lim, clock: Clock, tenant="t1", use="sync", req=USERS, max_seconds=1e9):
    """Ask until a Permit, following the Waits on the clock; returns (permit, waited reasons)."""
    reasons = []
    for _ in range(10_000):
        got = lim.acquire(tenant, *req, use=use)
        if isinstance(got, Permit):
            return got, reasons
        assert got.seconds >= 0
        reasons.append(got.reason)
        if got.seconds > max_seconds:
            return got, reasons
        clock.advance(got.seconds)
    raise AssertionError("no permit after 10000 waits")


def learn(lim, clock: Clock, limit: int, remaining: int, window: float, tenant="t1", req=USERS, status=200):
    """One request whose response reports `remaining` of `limit` with `window` s left (Okta clock = ours)."""
    p, _ = take(lim, clock, tenant=tenant, req=req)
    lim.release(p, status, okta_headers(limit, remaining, math.floor(clock()) + math.ceil(window), clock()))
    return p


# -- before any response ---------------------------------------------------------------------------

def test_first_request_goes_then_only_short_waits_until_a_response(make):
    clock = Clock()
    lim = make(LimiterConfig(unknown_wait_seconds=0.25), clock)
    assert isinstance(lim.acquire("t1", *USERS), Permit)
    got = lim.acquire("t1", *USERS)
    assert got == Wait(0.25, "rate")  # the default guess paces hard, but we re-ask soon


# -- pacing ---------------------------------------------------------------------------------------

def test_pacing_spreads_the_budget_until_reset(make):
    clock = Clock()
    cfg = LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=0.0, end_probes=0, burst_fraction=0.0)
    lim = make(cfg, clock)
    learn(lim, clock, limit=61, remaining=60, window=60)  # 60 left, 60 s to go
    start, reset = clock(), math.floor(T0) + 60
    times = []
    sent = 1
    while clock() < reset - 1e-9:
        got = lim.acquire("t1", *USERS)
        if isinstance(got, Wait):
            assert got.reason == "rate"
            clock.advance(min(got.seconds, reset - clock()))
            continue
        times.append(clock())
        sent += 1
        lim.release(got, 200, okta_headers(61, 61 - sent, reset, clock()))
    # One request a second, the last of the 60 due at the reset itself: not a burst then a wall.
    assert len(times) == 59
    gaps = [b - a for a, b in zip([start] + times, times, strict=False)]
    assert max(gaps) == pytest.approx(1.0, abs=1e-6)
    assert times[29] - start == pytest.approx(30.0, abs=1e-6)  # half the budget, half the window


def test_the_last_permits_are_spread_over_the_last_uncertain_second(make):
    """Reset has 1 s resolution: the budget is spent by pace_ahead before it, except end_probes
    permits spread over that last second (one landing after Okta's real reset opens the next window)."""
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=1.0, end_probes=2, burst_fraction=0.0), clock)
    learn(lim, clock, limit=61, remaining=60, window=60)
    times = []
    while len(times) < 60:
        got = lim.acquire("t1", *USERS)
        if isinstance(got, Wait):
            assert got.reason == "rate"
            clock.advance(got.seconds)
        else:
            times.append(clock() - T0)
            lim.release(got, 200, {})
    assert times[57] == pytest.approx(59.0)           # 58 over the first 59 s
    assert times[58:] == pytest.approx([59 + 1 / 3, 59 + 2 / 3])  # 2 within the last second
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 1.1


def test_waiters_are_given_distinct_slots(make):
    """Three processes asking at once are told to come back one interval apart, not all together."""
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=0.0, end_probes=0, burst_fraction=0.0), clock)
    learn(lim, clock, limit=61, remaining=60, window=60)  # one a second
    assert [lim.acquire("t1", *USERS).seconds for _ in range(3)] == pytest.approx([1.0, 2.0, 3.0])
    clock.advance(0.95)  # a little early (sleep jitter) still gets the slot
    assert isinstance(lim.acquire("t1", *USERS), Permit)
    clock.advance(1.05)
    assert isinstance(lim.acquire("t1", *USERS), Permit)
    clock.advance(1.0)
    assert isinstance(lim.acquire("t1", *USERS), Permit)
    assert lim.acquire("t1", *USERS).seconds == pytest.approx(1.0)  # no promises left: the next slot


def test_promises_do_not_reach_past_the_window(make):
    """Waiters that never come back cannot push everyone else's wait beyond the window's end."""
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=0.0, end_probes=0, burst_fraction=0.0), clock)
    learn(lim, clock, limit=11, remaining=10, window=10)  # one a second
    waits = [lim.acquire("t1", *USERS).seconds for _ in range(15)]
    assert max(waits) <= 10.0
    assert waits[:10] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])


def test_pacing_speeds_up_when_fewer_requests_were_made_than_possible(make):
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=0.0, end_probes=0, burst_fraction=0.0), clock)
    learn(lim, clock, limit=61, remaining=60, window=60)
    clock.advance(30)  # idle for half the window: 60 left for 30 s
    assert isinstance(lim.acquire("t1", *USERS), Permit)
    got = lim.acquire("t1", *USERS)
    assert got.reason == "rate" and got.seconds == pytest.approx(30 / 59)


def test_a_known_bucket_lets_the_first_part_of_the_share_go_at_once(make):
    """A list that needs less than burst_fraction of a bucket's share in a window never waits for
    pacing (a 200-user org on Okta's 60 s windows); the rest of the share is then spread evenly."""
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=0.0, end_probes=0, burst_fraction=0.5), clock)
    learn(lim, clock, limit=61, remaining=60, window=60)  # 60 left; unpaced while 31 or more stay
    at_once = 0
    while isinstance(got := lim.acquire("t1", *USERS), Permit):
        at_once += 1
        lim.release(got, 200, {})
    assert at_once == 29
    assert got.reason == "rate" and got.seconds == pytest.approx(60 / 31)  # the other 31 over the window


def test_after_a_burst_the_end_probes_still_wait_for_the_window_s_last_second(make):
    """Spending the share early must not spend the probes early: they land in the last uncertain
    second, where one after Okta's real reset opens the next window without idling until Reset."""
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=1.0, end_probes=2, burst_fraction=1.0), clock)
    learn(lim, clock, limit=61, remaining=60, window=60)
    at_once = 0
    while isinstance(got := lim.acquire("t1", *USERS), Permit):
        at_once += 1
        lim.release(got, 200, {})
    assert at_once == 58 and got.reason == "rate"
    assert got.seconds == pytest.approx(60 - 2 / 3)  # the first probe two thirds of a second before Reset
    clock.advance(got.seconds)
    assert isinstance(lim.acquire("t1", *USERS), Permit)
    assert lim.acquire("t1", *USERS).seconds == pytest.approx(1 / 3)


def test_no_burst_when_others_spent_the_bucket_or_before_it_is_known(make):
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=0.0, end_probes=0, burst_fraction=0.5), clock)
    assert isinstance(lim.acquire("t1", *USERS), Permit)  # unknown bucket: one, then wait for news
    assert isinstance(lim.acquire("t1", *USERS), Wait)
    learn(lim, clock, limit=100, remaining=10, window=60, tenant="t2")  # 90 spent by someone else
    assert isinstance(lim.acquire("t2", *USERS), Wait)


# -- shares ---------------------------------------------------------------------------------------

def test_each_use_is_capped_at_its_share(make):
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 0.8, "provisioning": 0.2}), clock)
    learn(lim, clock, limit=10, remaining=9, window=60)  # sync may spend 8, provisioning 2
    sync = 1
    while True:
        got = lim.acquire("t1", *USERS, use="sync")
        if isinstance(got, Wait) and got.reason == "share":
            break
        if isinstance(got, Wait):
            clock.advance(got.seconds)
        else:
            sync += 1
            lim.release(got, 200, {})
    assert sync == 8
    assert got.seconds == pytest.approx(T0 + 60 - clock(), abs=1.0)  # until the window resets
    prov = 0
    for _ in range(100):
        got = lim.acquire("t1", *USERS, use="provisioning")
        if isinstance(got, Permit):
            prov += 1
            lim.release(got, 200, {})
        elif got.reason == "share":
            break
        else:
            clock.advance(got.seconds)
    assert prov == 2 and clock() < T0 + 60  # provisioning's 2, in the same window
    with pytest.raises(ValueError, match="unknown limiter use 'audit'"):
        lim.acquire("t1", *USERS, use="audit")


# -- following the headers ---------------------------------------------------------------------------

def test_remaining_is_never_raised_within_a_window(make):
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=0.0, end_probes=0, burst_fraction=0.0), clock)
    learn(lim, clock, limit=100, remaining=2, window=60)  # someone else spent most of the bucket
    # A slower response from earlier in the same window reports more remaining: ignored.
    late = Permit("t1", "/api/v1/users", "sync", "late")
    lim.release(late, 200, okta_headers(100, 40, math.floor(T0) + 60, clock()))
    assert lim.acquire("t1", *USERS) == Wait(30.0, "rate")  # still 2 left over 60 s
    clock.advance(30)
    p, _ = take(lim, clock)
    p, _ = take(lim, clock, max_seconds=0)
    assert isinstance(p, Wait) and p.reason == "rate" and p.seconds == pytest.approx(30.0)  # 1 left for 30 s


def test_a_lower_remaining_from_okta_is_followed(make):
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}), clock)
    p = learn(lim, clock, limit=100, remaining=90, window=60)
    p, _ = take(lim, clock)
    lim.release(p, 200, okta_headers(100, 0, math.floor(T0) + 60, clock()))
    got = lim.acquire("t1", *USERS)
    assert got.reason == "rate" and got.seconds > 50


@pytest.mark.parametrize("skew", [-3600.0, 0.0, 5000.0])
def test_reset_is_read_against_the_responses_date(make, skew):
    """Okta's clock is `skew` seconds off ours: only Reset - Date matters."""
    clock = Clock()
    lim = make(LimiterConfig(pause_margin_seconds=1.0), clock)
    p, _ = take(lim, clock)
    okta_now = clock() + skew
    lim.release(p, 429, okta_headers(10, 0, math.floor(okta_now) + 30, okta_now))
    got = lim.acquire("t1", *USERS)
    assert got.reason == "paused"
    assert got.seconds == pytest.approx(31.0, abs=1e-6)  # 30 s to Okta's reset + 1 s margin


def test_okta_rolling_its_window_before_our_estimate_is_adopted(make):
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}, pace_ahead_seconds=0.0, end_probes=0, burst_fraction=0.0), clock)
    learn(lim, clock, limit=10, remaining=0, window=10)
    assert lim.acquire("t1", *USERS).reason == "rate"
    # A request still in flight comes back from Okta's next window with plenty left.
    clock.advance(9.5)
    lim.release(p_inflight := Permit("t1", "/api/v1/users", "sync", "gone"), 200,
                okta_headers(10, 9, math.floor(T0) + 20, clock()))
    assert p_inflight.lease == "gone"
    assert isinstance(lim.acquire("t1", *USERS), Permit)


def test_a_late_response_from_an_ended_window_is_ignored(make):
    clock = Clock()
    lim = make(LimiterConfig(shares={"sync": 1.0}), clock)
    p_old = learn(lim, clock, limit=10, remaining=9, window=10)
    old, _ = take(lim, clock)
    clock.advance(11)  # our estimate of the reset passed: a new window is assumed
    new, _ = take(lim, clock)
    lim.release(new, 200, okta_headers(10, 9, math.floor(clock()) + 10, clock()))
    lim.release(old, 429, okta_headers(10, 0, math.floor(T0) + 10, clock()))  # late, old window
    assert p_old.bucket == "/api/v1/users"
    got = lim.acquire("t1", *USERS)
    assert not (isinstance(got, Wait) and got.reason == "paused")


# -- 429 --------------------------------------------------------------------------------------------

def test_a_429_pauses_the_bucket_until_reset_then_a_fresh_window(make):
    clock = Clock()
    lim = make(LimiterConfig(pause_margin_seconds=1.0), clock)
    p, _ = take(lim, clock)
    lim.release(p, 429, okta_headers(50, 0, math.floor(T0) + 20, clock()))
    got = lim.acquire("t1", *USERS)
    assert got.reason == "paused" and got.seconds == pytest.approx(21.0)
    assert lim.acquire("t1", "GET", "/api/v1/groups").__class__ is Permit  # other buckets unaffected
    clock.advance(20.9)
    assert lim.acquire("t1", *USERS).reason == "paused"
    clock.advance(0.2)
    assert isinstance(lim.acquire("t1", *USERS), Permit)


def test_a_429_without_headers_pauses_conservatively(make):
    clock = Clock()
    lim = make(LimiterConfig(missing_headers_pause_seconds=60.0), clock)
    p, _ = take(lim, clock)
    lim.release(p, 429, {})
    got = lim.acquire("t1", *USERS)
    assert got.reason == "paused" and got.seconds == pytest.approx(60.0)


# -- in flight --------------------------------------------------------------------------------------

def fast_config(**kw) -> LimiterConfig:
    """Rate limits out of the way (a huge guessed limit) so the in-flight cap is what binds."""
    base = dict(shares={"sync": 1.0}, initial_limit=1_000_000, max_in_flight=4, lease_seconds=30.0,
                concurrency_recovery_seconds=10.0)
    base.update(kw)
    return LimiterConfig(**base)


def ask(lim, clock: Clock, tenant: str, method: str, path: str):
    clock.advance(0.001)  # past the (tiny) pacing interval of the huge guessed limit
    return lim.acquire(tenant, method, path)


def test_the_in_flight_cap_holds_and_releases_free_slots(make):
    clock = Clock()
    lim = make(fast_config(max_in_flight=3), clock)
    held = [take(lim, clock)[0] for _ in range(3)]
    got = ask(lim, clock, "t1", *USERS)
    assert got.reason == "in-flight" and 0 < got.seconds <= 0.05
    lim.release(held.pop(), None, {})  # no response (timeout): the slot still comes back
    assert isinstance(take(lim, clock)[0], Permit)
    assert ask(lim, clock, "t1", *USERS).reason == "in-flight"


def test_a_lease_never_released_expires(make):
    clock = Clock()
    lim = make(fast_config(max_in_flight=1, lease_seconds=30.0), clock)
    take(lim, clock)  # its holder dies without releasing
    clock.advance(29.9)
    assert ask(lim, clock, "t1", *USERS).reason == "in-flight"
    clock.advance(0.2)
    assert isinstance(ask(lim, clock, "t1", *USERS), Permit)


def test_the_concurrency_signal_lowers_the_in_flight_cap_which_then_recovers(make):
    clock = Clock()
    lim = make(fast_config(max_in_flight=4, concurrency_recovery_seconds=10.0, lease_seconds=300.0), clock)
    held = [take(lim, clock)[0] for _ in range(4)]
    concurrency = okta_headers(0, 0, math.floor(clock()) + 1, clock())
    lim.release(held.pop(), 429, concurrency)  # cap 4 -> 2
    lim.release(held.pop(), 429, concurrency)  # same burst: lowered once only
    assert ask(lim, clock, "t1", *USERS).reason == "in-flight"  # 2 in flight, cap 2
    lim.release(held.pop(), 200, {})
    assert isinstance(take(lim, clock)[0], Permit)
    assert ask(lim, clock, "t1", *USERS).reason == "in-flight"
    # No bucket pause: the concurrency signal is not a rate-limit window.
    clock.advance(10.0)  # recovery: cap 3
    assert isinstance(ask(lim, clock, "t1", *USERS), Permit)
    assert ask(lim, clock, "t1", *USERS).reason == "in-flight"
    clock.advance(20.0)  # cap back to 4 (and capped there)
    assert isinstance(ask(lim, clock, "t1", *USERS), Permit)
    assert ask(lim, clock, "t1", *USERS).reason == "in-flight"


def test_the_cap_is_lowered_again_only_by_requests_sent_after_the_last_lowering(make):
    clock = Clock()
    lim = make(fast_config(max_in_flight=8, lease_seconds=300.0), clock)
    held = [take(lim, clock)[0] for _ in range(8)]
    concurrency = okta_headers(0, 0, math.floor(clock()) + 1, clock())
    for p in held[:5]:  # one burst, all sent before the first signal: 8 -> 4, once
        clock.advance(0.01)
        lim.release(p, 429, concurrency)
    p_new = ask(lim, clock, "t1", *USERS)
    assert isinstance(p_new, Permit)  # 4 in flight, cap 4
    assert ask(lim, clock, "t1", *USERS).reason == "in-flight"
    lim.release(p_new, 429, concurrency)  # sent under the lowered cap and still too many: 4 -> 2
    lim.release(held[5], 200, {})
    lim.release(held[6], 200, {})  # 1 in flight
    assert isinstance(ask(lim, clock, "t1", *USERS), Permit)
    assert ask(lim, clock, "t1", *USERS).reason == "in-flight"


# -- tenants ----------------------------------------------------------------------------------------

def test_two_tenants_do_not_affect_each_other(make):
    clock = Clock()
    lim = make(fast_config(max_in_flight=1), clock)
    a, _ = take(lim, clock, tenant="acme")
    lim.release(a, 429, okta_headers(10, 0, math.floor(T0) + 60, clock()))
    take(lim, clock, tenant="acme", req=("GET", "/api/v1/groups"))  # holds acme's only slot
    assert ask(lim, clock, "acme", *USERS).reason == "paused"
    assert ask(lim, clock, "acme", "GET", "/api/v1/apps").reason == "in-flight"
    assert isinstance(ask(lim, clock, "globex", *USERS), Permit)


def test_bad_input_is_named(make):
    lim = make()
    with pytest.raises(ValueError, match="tenant id"):
        lim.acquire("a{b}", *USERS)
    with pytest.raises(ValueError, match="tenant id"):
        lim.acquire("", *USERS)
    with pytest.raises(ValueError, match="HTTP method"):
        lim.acquire("t1", "", "/api/v1/users")
    with pytest.raises(ValueError, match="path must start with '/'"):
        lim.acquire("t1", "GET", "api/v1/users")


# -- one algorithm ------------------------------------------------------------------------------------

REQS = [("GET", "/api/v1/users"), ("GET", "/api/v1/users"), ("GET", "/api/v1/groups/00g1/users")]
_acquire = st.tuples(st.just("acquire"), st.sampled_from(["t1", "t1", "t2"]), st.sampled_from(REQS),
                     st.sampled_from(["sync", "sync", "provisioning"]))
_release = st.tuples(st.just("release"), st.integers(min_value=0, max_value=50),
                     st.sampled_from([200, 200, 200, 429, 500, None]),
                     st.integers(min_value=0, max_value=12), st.integers(min_value=0, max_value=12),
                     st.integers(min_value=-2, max_value=12), st.booleans(), st.booleans())
_advance = st.tuples(st.just("advance"), st.floats(min_value=0.0, max_value=8.0, allow_nan=False))
# Weighted towards acquire/release so buckets get known and paced.
op = st.one_of(_acquire, _acquire, _acquire, _release, _release, _advance)


@pytest.mark.parametrize("burst", [0.0, 0.5])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=60))
def test_memory_and_redis_backends_give_the_same_answers(redis_url, burst, ops):
    cfg = LimiterConfig(max_in_flight=3, lease_seconds=5.0, initial_limit=6, initial_window_seconds=10.0,
                        concurrency_recovery_seconds=3.0, pace_ahead_seconds=0.5, burst_fraction=burst)
    clock = Clock()
    client = redis.Redis.from_url(redis_url)
    mem = MemoryLimiter(cfg, clock=clock)
    red = RedisLimiter(client, cfg, prefix=f"diff:{uuid.uuid4().hex[:8]}", clock=clock)
    held: list[tuple[Permit, Permit]] = []
    try:
        for o in ops:
            if o[0] == "advance":
                clock.advance(o[1])
            elif o[0] == "acquire":
                _, tenant, req, use = o
                a, b = mem.acquire(tenant, *req, use=use), red.acquire(tenant, *req, use=use)
                assert type(a) is type(b), (a, b)
                if isinstance(a, Wait):
                    assert a.reason == b.reason and a.seconds == pytest.approx(b.seconds, abs=1e-9), (a, b)
                else:
                    held.append((a, b))
            elif held:
                _, idx, status, limit, remaining, reset_in, with_date, drop_limit = o
                a, b = held.pop(idx % len(held))
                headers = {} if status is None else okta_headers(limit, remaining, math.floor(clock()) + reset_in,
                                                                   clock())
                if not with_date:
                    headers.pop("Date", None)
                if drop_limit:
                    headers.pop("X-Rate-Limit-Limit", None)
                if not with_date and headers:  # without Date the wall clock would differ: pin it
                    headers["Date"] = formatdate(math.floor(clock()), usegmt=True)
                mem.release(a, status, headers)
                red.release(b, status, headers)
    finally:
        client.close()
