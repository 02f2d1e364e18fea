"""Cost of scheduling many tenants: Beat's dispatcher tick at 1,000 and 10,000 tenant rows.

    python bench/tenants_cost.py tick --tenants 1000 10000 [--ticks 50] [--running 500] [--history 3] [--incremental]
    python bench/tenants_cost.py backlog --tenants 10000
    python bench/tenants_cost.py scrape --tenants 10000 [--history 3]
    python bench/tenants_cost.py release --tenants 10000 [--running 500] [--pending 20] [--global-cap 256]
    python bench/tenants_cost.py page --users 4000 [--profile] [--celery [--pool threads|solo] [--runs N]]

`tick`: N tenant rows (direct inserts, as a bulk import makes them), `--running` of them with a
running run and one active stream (a sync in progress), and each tick a few tenants (`--due-per-tick`)
come due (with --incremental every tenant also has incremental runs every 300 s, and as many more
come due for one each tick), and each tenant has `--history` finished runs of 20 streams each (the
history a database keeps: up to 20 runs per tenant); one tick = steps.dispatch (claim, release,
reap) with a sender that only counts. Reports
p50/p99 wall ms and this process's CPU ms per tick (PostgreSQL's own CPU is not in it: wall
includes it, and the machine's load). `backlog`: all N tenants due at once (after an outage or a
bulk add): how many ticks and how long until every tenant has a queued run. `scrape`: the same
tenants, running runs and history, each succeeded run its tenant's current view; the metrics
endpoint's collect and render (worker/observability/metrics.py), p50/p99 over 10 scrapes.
`release`: the release a page task does after its page (steps.release for the page's run), with
`--running` runs syncing, each with one active and `--pending` pending lists: p50/p99 wall ms over
200 releases of random runs (what a release activates in its run is put back to pending, untimed,
after it; other runs keep what a global release gave them, as in a steady state).

`page`: one oktasim org (no latency, limits far above what one process can use) synced on
PostgreSQL by the engine's steps run one after another in this process (the work of one worker
slot, without Celery's own per-message cost): pages per CPU-second of this process, and with
--profile where that CPU goes (cProfile on process time: a table of a page's components, then the
top functions by own time; the profiler inflates call-heavy code, so read the shares, not the ms).
With --celery the same sync runs on a real Celery worker (`-P prefork -c 1 -E`) on the Redis of
$BENCH_REDIS_URL (default redis://127.0.0.1:6379/9; flushed): pages per worker CPU-second with
Celery's per-message cost, split into the worker's main process and its pool child; `--pool
threads|solo` runs another pool; `--celery --profile` runs the worker under cProfile
(bench/celery_profile.py) and prints where each of its processes' CPU went. `--runs N` (default 2)
syncs the org N times in the same worker: the first run pays what a worker pays once (the tenant's
client, SQLAlchemy's statement caches, first connections), so the figure is the median of the
others. Without --celery it also prints the statements and transactions sent to PostgreSQL.

Needs PostgreSQL: $DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test) names the
server; the bench creates and drops its own database. Run with PYTHONPATH=<another tree> to
measure another version of the code against the same script.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from worker.engine import steps
from worker.engine.runtime import Runtime
from worker.store.db import make_engine, make_session_factory
from worker.store.migrate import migrate
from worker.store.tables import SyncRun, SyncStream, Tenant, utcnow


class CountingSender:
    def __init__(self) -> None:
        self.sent = 0

    def enqueue(self, task: str, args: Sequence[Any], countdown: float | None = None, priority: int = 0) -> None:
        self.sent += 1


@contextmanager
def scratch_database() -> Iterator[str]:
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    base = server.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"bench_sched_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


INCREMENTAL_INTERVAL = 300


def insert_tenants(sessions: Any, count: int, due_now: int = 0, incremental: bool = False) -> list[int]:
    now = utcnow()
    rows = [{"name": f"bench{i:06d}", "domain": f"bench{i:06d}.okta.com", "auth_method": "api_token",
             "credentials": b"bench-not-a-token", "sync_interval": 3600, "enabled": True,
             "next_sync_at": now - timedelta(seconds=5) if i < due_now else now + timedelta(seconds=3600 + i),
             "incremental_interval": INCREMENTAL_INTERVAL if incremental else None,
             "next_incremental_at": now + timedelta(seconds=INCREMENTAL_INTERVAL + i % 100) if incremental else None}
            for i in range(count)]
    with sessions() as s:
        for i in range(0, count, 2000):
            s.execute(sa.insert(Tenant.__table__), rows[i:i + 2000])
        s.commit()
        return list(s.execute(sa.select(Tenant.id).order_by(Tenant.id)).scalars())


def start_running(sessions: Any, tenant_ids: list[int]) -> None:
    """A running run with one active, fresh stream for each tenant: syncs in progress."""
    now = utcnow()
    with sessions() as s:
        run_ids = s.execute(sa.insert(SyncRun.__table__).returning(SyncRun.id), [
            {"tenant_id": t, "state": "running", "created_at": now, "updated_at": now, "started_at": now,
             "counts": {}, "warnings": []} for t in tenant_ids]).scalars().all()
        if run_ids:
            s.execute(sa.insert(SyncStream.__table__), [
                {"run_id": r, "kind": "users", "parent": "", "url": "/api/v1/users", "cursor": "/api/v1/users",
                 "state": "active", "heartbeat_at": now, "created_at": now, "updated_at": now} for r in run_ids])
        s.commit()


HISTORY_STREAMS = 20


def add_history(sessions: Any, runs_per_tenant: int) -> None:
    """`runs_per_tenant` succeeded runs per tenant with HISTORY_STREAMS done streams each (SQL-side
    generate_series: millions of rows in seconds), the newest one the tenant's current view."""
    if runs_per_tenant <= 0:
        return
    with sessions() as s:
        s.execute(sa.text(
            "INSERT INTO sync_runs (tenant_id, state, created_at, started_at, finished_at, updated_at, due_at, "
            "counts, warnings, kind, plan) "
            "SELECT t.id, 'succeeded', now() - make_interval(hours => g), now() - make_interval(hours => g), "
            "now() - make_interval(hours => g) + interval '30 seconds', now(), now() - make_interval(hours => g), "
            "jsonb_build_object('pages', :streams * 2, 'items', :streams * 150, "
            "'resources_by_type', jsonb_build_object('user', 150)), '[]', 'full', '{}' "
            "FROM tenants t, generate_series(1, :n) g"), {"n": runs_per_tenant, "streams": HISTORY_STREAMS})
        s.execute(sa.text(
            "INSERT INTO sync_streams (run_id, kind, parent, url, cursor, state, pages, items, attempts, "
            "created_at, updated_at) SELECT r.id, 'group-members', 'group:' || g, '{}', NULL, 'done', 2, 150, 0, "
            "r.created_at, r.finished_at FROM sync_runs r, generate_series(1, :streams) g "
            "WHERE r.state = 'succeeded'"), {"streams": HISTORY_STREAMS})
        s.execute(sa.text(
            "UPDATE tenants t SET current_run_id = m.id FROM (SELECT tenant_id, max(id) AS id FROM sync_runs "
            "WHERE state = 'succeeded' GROUP BY tenant_id) m WHERE m.tenant_id = t.id"))
        s.commit()
        s.execute(sa.text("ANALYZE"))


def runtime(url: str) -> tuple[Runtime, CountingSender, sa.Engine]:
    engine = make_engine(url)
    sender = CountingSender()

    def no_tenant(_row: Any) -> Any:
        raise AssertionError("the dispatcher builds no tenant context")

    return Runtime(sessions=make_session_factory(engine), sender=sender, make_tenant=no_tenant), sender, engine


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_tick(count: int, ticks: int, running: int, due_per_tick: int, history: int,
               incremental: bool = False, max_runs: int = -1) -> None:
    """max_runs: the admission bound (-1: room for every tenant coming due, so the bounded claim
    admits them all; 0: no bound, the unbounded claim)."""
    with scratch_database() as url:
        migrate(url)
        rt, sender, engine = runtime(url)
        rt.max_active_runs = (running + 2 * ticks * due_per_tick + 10) if max_runs < 0 else (max_runs or None)
        ids = insert_tenants(rt.sessions, count, incremental=incremental)
        add_history(rt.sessions, history)
        start_running(rt.sessions, ids[:running])
        idle = ids[running:]
        steps.dispatch(rt)  # warm the pool and the statement caches
        wall: list[float] = []
        cpu: list[float] = []
        phases: dict[str, list[float]] = {"claim": [], "release": [], "reap": []}
        for tick in range(ticks):
            coming_due = idle[tick * due_per_tick:(tick + 1) * due_per_tick]
            with rt.sessions() as s:
                s.execute(sa.update(Tenant.__table__).where(Tenant.id.in_(coming_due))
                          .values(next_sync_at=utcnow() - timedelta(seconds=1)))
                if incremental:  # as many others due for an incremental run (taken from the end)
                    end = len(idle) - tick * due_per_tick
                    s.execute(sa.update(Tenant.__table__).where(Tenant.id.in_(idle[end - due_per_tick:end]))
                              .values(next_incremental_at=utcnow() - timedelta(seconds=1)))
                s.commit()
            w0, c0 = time.perf_counter(), time.process_time()
            for name, step in (("claim", steps.claim_and_start), ("release", steps.release), ("reap", steps.reap)):
                p0 = time.perf_counter()
                step(rt)  # the three parts of steps.dispatch, in its order
                phases[name].append((time.perf_counter() - p0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        engine.dispose()
    print(f"tick tenants={count} running={running} history={history} due/tick={due_per_tick}{' (+ as many incremental)' if incremental else ''} ticks={ticks}: "
          f"wall p50 {statistics.median(wall):.1f} ms p99 {pct(wall, 0.99):.1f} ms; "
          f"client CPU p50 {statistics.median(cpu):.1f} ms p99 {pct(cpu, 0.99):.1f} ms; "
          f"messages {sender.sent}; max runs {rt.max_active_runs}; load {os.getloadavg()[0]:.1f}")
    print("  wall p50 by part: " + ", ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in phases.items()))


def bench_scrape(count: int, running: int, history: int, scrapes: int = 10) -> None:
    from worker.observability.metrics import registry_for, render

    with scratch_database() as url:
        migrate(url)
        rt, _sender, engine = runtime(url)
        ids = insert_tenants(rt.sessions, count)
        add_history(rt.sessions, history)
        start_running(rt.sessions, ids[:running])
        engine.dispose()
        redis_url = os.environ.get("BENCH_REDIS_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        registry = registry_for(url, redis_url)
        size = len(render(registry))  # warm: connections, statement caches
        wall: list[float] = []
        for _ in range(scrapes):
            w0 = time.perf_counter()
            render(registry)
            wall.append((time.perf_counter() - w0) * 1000)
    print(f"scrape tenants={count} running={running} history={history}: p50 {statistics.median(wall):.0f} ms "
          f"p99 {pct(wall, 0.99):.0f} ms, {size / 1e6:.1f} MB of text; load {os.getloadavg()[0]:.1f}")


def bench_release(count: int, running: int, pending: int, history: int, global_cap: int, calls: int = 200) -> None:
    import inspect
    import random

    with scratch_database() as url:
        migrate(url)
        rt, _sender, engine = runtime(url)
        rt.global_max_streams = global_cap
        ids = insert_tenants(rt.sessions, count)
        add_history(rt.sessions, history)
        start_running(rt.sessions, ids[:running])
        with rt.sessions() as s:
            run_ids = list(s.execute(sa.select(SyncRun.id).where(SyncRun.state == "running")).scalars())
            s.execute(sa.insert(SyncStream.__table__), [
                {"run_id": r, "kind": "group-members", "parent": f"group:{i}", "url": "{}", "cursor": "/g",
                 "state": "pending"} for r in run_ids for i in range(pending)])
            s.commit()
            s.execute(sa.text("ANALYZE"))
        per_run = "run_id" in inspect.signature(steps.release).parameters  # older code: one global release
        rng = random.Random(7)
        wall: list[float] = []
        for _ in range(calls):
            run_id = rng.choice(run_ids)
            w0 = time.perf_counter()
            steps.release(rt, run_id) if per_run else steps.release(rt)
            wall.append((time.perf_counter() - w0) * 1000)
            with rt.sessions() as s:  # the run's lists back to pending: its next release has work again
                s.execute(sa.update(SyncStream.__table__).where(SyncStream.run_id == run_id,
                                                                SyncStream.kind == "group-members",
                                                                SyncStream.state == "active").values(state="pending"))
                s.commit()
        engine.dispose()
    print(f"release tenants={count} running={running} pending/run={pending} history={history} global cap={global_cap} "
          f"({'per run' if per_run else 'global'}): p50 {statistics.median(wall):.1f} ms p99 {pct(wall, 0.99):.1f} ms; "
          f"load {os.getloadavg()[0]:.1f}")


def bench_backlog(count: int) -> None:
    with scratch_database() as url:
        migrate(url)
        rt, sender, engine = runtime(url)
        insert_tenants(rt.sessions, count, due_now=count)
        w0, c0 = time.perf_counter(), time.process_time()
        ticks = 0
        while sender.sent < count and ticks < 10_000:
            steps.claim_and_start(rt)
            ticks += 1
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        engine.dispose()
    print(f"backlog tenants={count}: all queued after {ticks} claim ticks, {wall:.2f} s wall, "
          f"{cpu:.2f} s client CPU ({sender.sent} runs); load {os.getloadavg()[0]:.1f}")


TOKEN = "00sim-super-admin-token-0000000000000000000"


class InlineSender:
    """Runs each enqueued step after the current one, in this thread (countdowns are not waited)."""

    def __init__(self) -> None:
        self.queue: list[tuple[str, list[Any]]] = []
        self.handlers: dict[str, Any] = {}

    def enqueue(self, task: str, args: Sequence[Any], countdown: float | None = None, priority: int = 0) -> None:
        self.queue.append((task, list(args)))

    def drain(self) -> None:
        while self.queue:
            task, args = self.queue.pop(0)
            self.handlers[task](*args)


@contextmanager
def page_org(users: int) -> Iterator[tuple[str, Any, int]]:
    """oktasim with one org of `users` users, 40 groups, 10 apps, and a scratch database holding
    one tenant for it: yields (database URL, session factory, tenant id)."""
    import re
    import subprocess
    import sys

    from worker.store.secrets import generate_key
    from worker.store.tenants import create_tenant

    os.environ.setdefault("OKTASYNC_SECRET_KEY", generate_key())
    sim = subprocess.Popen([sys.executable, "-m", "oktasim", "--users", str(users), "--groups", "40", "--apps", "10",
                            "--rate-limit-scale", "1000", "--api-token", TOKEN], stdout=subprocess.PIPE, text=True)
    try:
        line = sim.stdout.readline() if sim.stdout else ""
        found = re.search(r"(http://\S+)", line)
        if not found:
            raise SystemExit(f"oktasim did not start: {line!r}")
        with scratch_database() as url:
            migrate(url)
            engine = make_engine(url)
            sessions = make_session_factory(engine)
            with sessions() as s:
                tenant_id = create_tenant(s, "bench", found.group(1), {"api_token": TOKEN}).id
                s.commit()
            try:
                yield url, sessions, tenant_id
            finally:
                engine.dispose()
    finally:
        sim.terminate()
        sim.wait(10)


def new_run(sessions: Any, tenant_id: int) -> int:
    from worker.store import runs

    with sessions() as s:
        runs.begin_write(s)
        run_id = runs.create_run(s, tenant_id)
        s.commit()
    assert run_id is not None
    return run_id


def run_result(sessions: Any, run_id: int) -> tuple[str, dict[str, Any]]:
    with sessions() as s:
        run = s.get(SyncRun, run_id, populate_existing=True)
        assert run is not None
        return run.state, dict(run.counts or {})


def bench_page(users: int, profile: bool) -> None:
    import cProfile
    import pstats

    from worker.connector.tenant_client import memory_limiter, tenant_factory

    with page_org(users) as (_url, sessions, tenant_id):
        # Statements and transactions the sync sends PostgreSQL (the same for every run of a
        # version of the code: a count the machine's load does not blur).
        sent = {"statements": 0, "transactions": 0}
        bind = sessions.kw["bind"]
        sa.event.listen(bind, "before_cursor_execute", lambda *_a, **_k: sent.__setitem__("statements", sent["statements"] + 1))
        for end in ("commit", "rollback"):
            sa.event.listen(bind, end, lambda *_a, **_k: sent.__setitem__("transactions", sent["transactions"] + 1))
        sender = InlineSender()
        rt = Runtime(sessions=sessions, sender=sender, global_max_streams=64, tenant_max_streams=64,
                     make_tenant=tenant_factory(memory_limiter(1.0, max_in_flight=8)))
        sender.handlers.update({steps.START: lambda r: steps.start_run(rt, r),
                                steps.PAGE: lambda sid, cur: steps.page(rt, sid, cur),
                                steps.FINALIZE: lambda r: steps.finalize(rt, r)})
        run_id = new_run(sessions, tenant_id)
        sender.enqueue(steps.START, [run_id])
        # CPU time, not wall: waiting for oktasim or PostgreSQL is not this process's cost.
        profiler = cProfile.Profile(time.process_time) if profile else None
        c0, w0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        sender.drain()
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        state, counts = run_result(sessions, run_id)
    pages, items = counts.get("pages", 0), counts.get("items", 0)
    print(f"page users={users}: run {state}, {pages} pages, {items} items, {cpu:.2f} s client CPU, {wall:.2f} s wall: "
          f"{pages / cpu:.0f} pages per CPU-second ({items / max(pages, 1):.0f} items a page); "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"  to PostgreSQL: {sent['statements']} statements, {sent['transactions']} transactions "
          f"({sent['statements'] / max(pages, 1):.1f} and {sent['transactions'] / max(pages, 1):.1f} a page)")
    if profiler:
        stats = pstats.Stats(profiler).sort_stats("tottime")
        print_breakdown(stats, pages)
        stats.print_stats(25)
        if os.environ.get("BENCH_CALLERS"):
            stats.print_callers(os.environ["BENCH_CALLERS"])


def bench_page_celery(users: int, pool: str = "prefork", profile: bool = False, runs: int = 2) -> None:
    """The same sync run by a real Celery worker (`-P prefork -c 1 -E`, as the Procfile runs it,
    on the Redis of $BENCH_REDIS_URL, which is flushed): worker CPU (parent and pool child, from
    /proc) per page, so Celery's own per-message cost (message decode, delivery counter, ack,
    events, the next page's send) is in the figure. `pool`: another pool (`threads`, `solo`);
    `profile`: cProfile in the worker (bench/celery_profile.py), then where its CPU went.

    `runs` syncs of the org one after another in the same worker: the first pays what a worker
    pays once per process and tenant (the tenant's HTTP client and TLS context, SQLAlchemy's
    statement caches, the first connections), which a long-running worker spreads over all its
    pages; the figure is the median of the later (warm) runs, and the first is printed too."""
    import subprocess
    import sys
    from pathlib import Path

    import redis
    from celery import Celery
    from tenants import cpu_seconds

    import worker

    broker = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    redis.Redis.from_url(broker).flushdb()
    results: list[tuple[str, int, float, float, float]] = []  # state, pages, cpu, wall, parent cpu
    with page_org(users) as (url, sessions, tenant_id):
        code = Path(worker.__file__).resolve().parents[1]  # the tree under test (PYTHONPATH or this one)
        here = Path(__file__).resolve().parent
        prof_out = f"/tmp/tenants_cost_profile_{os.getpid()}"
        env = {**os.environ, "OKTASYNC_BROKER_URL": broker, "OKTASYNC_DATABASE_URL": url,
               "PYTHONPATH": os.pathsep.join([str(code), str(here)] if profile else [str(code)]),
               "BENCH_PROFILE_OUT": prof_out}
        log = Path(f"/tmp/tenants_cost_worker_{os.getpid()}.log")
        celery = Path(sys.executable).with_name("celery")
        proc = subprocess.Popen([str(celery), "-A", "celery_profile" if profile else "worker", "worker", "-Q", "sync",
                                 "-P", pool, "-c", "1",
                                 "-E", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                                env=env, cwd=code, stdout=log.open("w"), stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while " ready." not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            if " ready." not in log.read_text():
                raise SystemExit(f"the Celery worker did not start: see {log}")
            time.sleep(1.0)  # let the pool child finish its own start
            # A bare client on the bench's broker (worker.app would read the broker from the environment).
            client = Celery(broker=broker)
            for _ in range(runs):
                run_id = new_run(sessions, tenant_id)
                c0, p0, w0 = cpu_seconds([proc.pid]), own_cpu_seconds(proc.pid), time.perf_counter()
                client.send_task(steps.START, [run_id], queue="sync")
                state = "queued"
                deadline = time.monotonic() + 300
                while state not in ("succeeded", "failed") and time.monotonic() < deadline:
                    time.sleep(0.05)
                    state, counts = run_result(sessions, run_id)
                time.sleep(0.2)  # the finalize task's own end (its ack, its events)
                cpu, wall = cpu_seconds([proc.pid]) - c0, time.perf_counter() - w0
                results.append((state, counts.get("pages", 0), cpu, wall, own_cpu_seconds(proc.pid) - p0))
        finally:
            proc.terminate()
            proc.wait(30)
    for i, (state, pages, cpu, wall, parent) in enumerate(results):
        print(f"page (celery -P {pool}) users={users} run {i + 1}{' (cold)' if i == 0 else ''}: {state}, {pages} pages, "
              f"{cpu:.2f} s worker CPU, {wall:.2f} s wall: {pages / max(cpu, 1e-9):.0f} pages per worker CPU-second "
              f"(main process {parent:.2f} s, pool child {cpu - parent:.2f} s)")
    warm = [pages / max(cpu, 1e-9) for _s, pages, cpu, _w, _p in results[1:]] or [results[0][1] / max(results[0][2], 1e-9)]
    print(f"page (celery -P {pool}) users={users}: {statistics.median(warm):.0f} pages per worker CPU-second "
          f"(median of {'the warm runs' if len(results) > 1 else 'one cold run'}); load {os.getloadavg()[0]:.1f}")
    if profile:
        print_worker_profile(prof_out, sum(r[1] for r in results))


def print_worker_profile(prefix: str, pages: int) -> None:
    """Where the worker's CPU went (cProfile: shares, not ms, are the figure to read)."""
    import pstats
    from pathlib import Path

    for which in ("parent", "child"):
        if not Path(f"{prefix}.{which}").exists():
            print(f"no profile of the {which} process")
            continue
        stats = pstats.Stats(f"{prefix}.{which}")
        total = stats.total_tt  # type: ignore[attr-defined]
        print(f"\nworker {which} process (cProfile, process time): {1000 * total / max(pages, 1):.2f} profiled ms a page")
        rows = [(label, _cumulative(stats, where)) for label, where in CELERY_PARTS[which]]
        for label, t in rows:
            print(f"  {label:<52} {1000 * t / max(pages, 1):8.2f} {100 * t / total:5.0f}%")
        if which == "child":
            print_breakdown(stats, pages)
        stats.sort_stats("cumulative").print_stats(30)


def own_cpu_seconds(pid: int) -> float:
    """utime+stime of one process alone (the prefork parent: receives, dispatches, acks)."""
    from pathlib import Path

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")


# Where a page's CPU goes: (label, functions as (file suffix, name[, caller name]), parts). A part's
# time is inside its parent's; what no part names is the parent's "other".
STEPS = "worker/engine/steps.py"
CLIENT = "worker/okta/client.py"
BREAKDOWN: list[Any] = [
    ("pool checkout + pre-ping", [("worker/store/db.py", "one_connection")], []),
    ("read stream row + tenant version", [("worker/store/runs.py", "load_stream", "page"),
                                          ("worker/store/runs.py", "load_stream", "_page"),
                                          ("worker/engine/runtime.py", "tenant", "page"),
                                          ("worker/engine/runtime.py", "tenant", "_page")], []),
    ("fetch (OktaClient.get_page)", [(CLIENT, "get_page", "page"), (CLIENT, "get_page", "_page")], [
        ("limiter acquire + release", [(CLIENT, "_acquire"), (CLIENT, "_release")], []),
        ("HTTP exchange (httpx send + read)", [("httpx/_client.py", "send", "_exchange"),
                                               ("httpx/_models.py", "read", "_exchange")], []),
        ("JSON parse (orjson)", [(CLIENT, "_parse")], []),
    ]),
    ("map to rows (handle_page)", [("worker/connector/types/__init__.py", "handle_page", "page"),
                                   ("worker/connector/types/__init__.py", "handle_page", "_page"),
                                   (STEPS, "decode_spec", "page"), (STEPS, "decode_spec", "_page")], []),
    ("write transaction (_commit_page)", [(STEPS, "_commit_page", "page"), (STEPS, "_commit_page", "_page")], [
        ("begin (BEGIN; a pool checkout if none held)", [("worker/store/runs.py", "begin_write", "_commit_page")], []),
        ("lock run + advance cursor", [("worker/store/runs.py", "lock_running", "_commit_page"),
                                       ("worker/store/runs.py", "advance", "_commit_page")], []),
        ("upsert rows (write_page)", [("worker/store/writes.py", "write_page", "_commit_page")], []),
        ("child streams", [("worker/store/runs.py", "closed_kinds", "_commit_page"),
                           ("worker/store/runs.py", "add_streams", "_commit_page")], []),
        ("commit", [("sqlalchemy/orm/session.py", "commit", "_commit_page")], []),
        ("release streams (main: own transaction; new: in this one)",
         [(STEPS, "release", "_commit_page"), ("worker/engine/release.py", "release_run", "_commit_page")], []),
        ("completion check (own transaction)", [(STEPS, "complete", "_commit_page")], []),
        ("publish next page / released lists", [("bench/tenants_cost.py", "enqueue", "_commit_page"),
                                                ("bench/tenants_cost.py", "enqueue", "release"),
                                                ("worker/engine/sender.py", "enqueue", "_commit_page"),
                                                ("worker/engine/sender.py", "enqueue", "release")], []),
    ]),
]


# The worker's parts (cumulative time of these functions) for --celery --profile.
CELERY_PARTS: dict[str, list[tuple[str, list[tuple[str, ...]]]]] = {
    "parent": [
        ("receive a message (BRPOP read, unacked bookkeeping)", [("kombu/transport/redis.py", "_brpop_read")]),
        ("ack (after the task: acks_late)", [("kombu/message.py", "ack_log_error")]),
        ("task events (publish)", [("celery/events/dispatcher.py", "flush")]),
        ("results from the pool child (pipe)", [("celery/concurrency/asynpool.py", "on_result_readable")]),
        ("job to the pool child (pipe)", [("celery/concurrency/asynpool.py", "send_job")]),
    ],
    "child": [
        ("task (steps: start, page, finalize)", [("worker/tasks/sync.py", "start"), ("worker/tasks/sync.py", "page"),
                                                 ("worker/tasks/sync.py", "finalize")]),
        ("  of which: publish next steps (send_task)", [("celery/app/base.py", "send_task")]),
        ("  of which: sent events", [("celery/events/dispatcher.py", "publish")]),
        ("  of which: limiter (Redis scripts)", [("redis/commands/core.py", "__call__")]),
        ("  of which: release streams", [("worker/engine/release.py", "release_streams"),
                                         ("worker/engine/release.py", "release_run", "_commit_page")]),
        ("task signals (log line, labels)", [("celery/utils/dispatch/signal.py", "send", "trace_task")]),
        ("Celery tracing around the task", [("celery/app/trace.py", "trace_task")]),
        ("process start (imports, runtime)", [("worker/tasks/base.py", "_on_process_init")]),
    ],
}


def _cumulative(stats: Any, where: list[tuple[str, ...]]) -> float:
    total = 0.0
    for (path, _line, name), (_cc, _nc, _tt, cum, callers) in stats.stats.items():
        for file_end, func, *caller in where:
            if name != func or not path.endswith(file_end):
                continue
            if not caller:
                total += cum
                continue
            total += sum(c[3] for (_p, _l, cname), c in callers.items() if cname == caller[0])
    return total


def print_breakdown(stats: Any, pages: int) -> None:
    """CPU ms per page by component (under the profiler, which inflates call-heavy code)."""
    total = _cumulative(stats, [(STEPS, "page")])
    print(f"where a page's CPU goes (cProfile, process time; steps.page = {1000 * total / pages:.2f} ms a page, "
          f"start/release/finalize outside pages not included):")
    print(f"  {'component':<44} {'ms/page':>8} {'share':>6}")

    def show(parts: list[Any], parent: float, depth: int) -> None:
        named = 0.0
        for label, where, children in parts:
            t = _cumulative(stats, where)
            named += t
            print(f"  {'  ' * depth + label:<44} {1000 * t / pages:8.2f} {100 * t / total:5.0f}%")
            if children:
                show(children, t, depth + 1)
        print(f"  {'  ' * depth + 'other':<44} {1000 * (parent - named) / pages:8.2f} {100 * (parent - named) / total:5.0f}%")

    show(BREAKDOWN, total, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    tick = sub.add_parser("tick")
    tick.add_argument("--tenants", type=int, nargs="+", default=[1000, 10000])
    tick.add_argument("--ticks", type=int, default=50)
    tick.add_argument("--running", type=int, default=500)
    tick.add_argument("--due-per-tick", type=int, default=5)
    tick.add_argument("--incremental", action="store_true", help="every tenant with incremental runs too")
    tick.add_argument("--history", type=int, default=0, help="finished runs per tenant (20 streams each)")
    tick.add_argument("--max-runs", type=int, default=-1,
                      help="admission bound (-1: room for every tenant coming due; 0: none; N: N, e.g. below --running)")
    scrape = sub.add_parser("scrape")
    scrape.add_argument("--tenants", type=int, nargs="+", default=[10000])
    scrape.add_argument("--running", type=int, default=500)
    scrape.add_argument("--history", type=int, default=0)
    release = sub.add_parser("release")
    release.add_argument("--tenants", type=int, nargs="+", default=[10000])
    release.add_argument("--running", type=int, default=500)
    release.add_argument("--pending", type=int, default=20)
    release.add_argument("--history", type=int, default=0)
    release.add_argument("--global-cap", type=int, default=256, help="GLOBAL_MAX_STREAMS (product default 256)")
    backlog = sub.add_parser("backlog")
    backlog.add_argument("--tenants", type=int, nargs="+", default=[10000])
    page = sub.add_parser("page")
    page.add_argument("--users", type=int, default=4000)
    page.add_argument("--profile", action="store_true", help="cProfile (with --celery: in the worker's processes)")
    page.add_argument("--celery", action="store_true", help="run the sync on a real Celery worker")
    page.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"],
                      help="the Celery worker's pool (with --celery)")
    page.add_argument("--runs", type=int, default=2,
                      help="with --celery: syncs in the same worker; the figure is the median of all but the first")
    args = parser.parse_args()
    if args.cmd == "page":
        if args.celery:
            bench_page_celery(args.users, args.pool, args.profile, max(1, args.runs))
        else:
            bench_page(args.users, args.profile)
        return
    for count in args.tenants:
        if args.cmd == "tick":
            bench_tick(count, args.ticks, min(args.running, count // 2), args.due_per_tick, args.history,
                       args.incremental, args.max_runs)
        elif args.cmd == "release":
            bench_release(count, min(args.running, count // 2), args.pending, args.history, args.global_cap)
        elif args.cmd == "scrape":
            bench_scrape(count, min(args.running, count // 2), args.history)
        else:
            bench_backlog(count)


if __name__ == "__main__":
    main()
