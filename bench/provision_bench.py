"""Provisioning throughput under the rate limit: N group-membership grants through real workers.

Starts oktasim (Okta's per-window limits, short windows so the run takes seconds), a throwaway
PostgreSQL database, and `celery -A worker worker -Q provisioning -c C` processes on Redis; submits
N grants with worker.client.submit and waits for all of them. A grant costs 4 Okta calls (GET
group, GET user, GET user's groups, PUT member) in 4 buckets, and provisioning may use
(1 - sync share) of each. Prints requests/s, the bound the tightest bucket's share allows (from the
simulator's own counters), their ratio, and the 429s Okta (the simulator) answered.

    .venv/bin/python bench/provision_bench.py                       # 300 grants, 4 workers, 10 s windows
    .venv/bin/python bench/provision_bench.py --requests 600 --concurrency 8 --window-seconds 5
    .venv/bin/python bench/provision_bench.py --requests 60 --rate-limit-scale 0.1   # the limit binds

Needs Redis (--redis-url, default $REDIS_URL or redis://127.0.0.1:6379/14; the db is flushed) and
PostgreSQL (--pg-url, default $DATABASE_URL or postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker import client  # noqa: E402
from worker.store.db import make_engine, make_session_factory  # noqa: E402
from worker.store.migrate import migrate  # noqa: E402
from worker.store.secrets import generate_key  # noqa: E402
from worker.store.tables import ProvisioningRequest, SyncRun, Tenant  # noqa: E402
from worker.store.tenants import create_tenant  # noqa: E402

TOKEN = "00sim-super-admin-token-0000000000000000000"


def start_sim(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "oktasim", "--port", "0", "--users", str(args.users),
                             "--groups", "40", "--window-seconds", str(args.window_seconds),
                             "--rate-limit-scale", str(args.rate_limit_scale)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    m = re.match(r"^oktasim listening on (http://\S+)$", line)
    if not m:
        proc.kill()
        raise SystemExit(f"oktasim did not start: {line!r}")
    return proc, m.group(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=4, help="worker processes (celery -c)")
    ap.add_argument("--window-seconds", type=float, default=10.0)
    ap.add_argument("--rate-limit-scale", type=float, default=1.0,
                    help="oktasim --rate-limit-scale: below 1 the rate limit, not the CPU, is what binds")
    ap.add_argument("--sync-share", type=float, default=0.5, help="OKTASYNC_RATE_LIMIT_SHARE (sync's part)")
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
    ap.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()

    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    base = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    dbname = f"oktasync_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
    url = sa.engine.make_url(base).set(database=dbname).render_as_string(hide_password=False)
    sim, sim_url = start_sim(args)
    key = generate_key()
    os.environ.update(OKTASYNC_BROKER_URL=args.redis_url, OKTASYNC_REDIS_URL=args.redis_url,
                      OKTASYNC_DATABASE_URL=url, OKTASYNC_SECRET_KEY=key,
                      OKTASYNC_RATE_LIMIT_SHARE=str(args.sync_share))
    workers: subprocess.Popen | None = None
    log = tempfile.NamedTemporaryFile(prefix="provision-bench-", suffix=".log", delete=False)
    try:
        migrate(url)
        sessions = make_session_factory(make_engine(url))
        with sessions() as s:
            t = create_tenant(s, "bench", "example.okta.com", {"api_token": TOKEN})
            s.execute(sa.update(Tenant).where(Tenant.id == t.id).values(domain=sim_url))
            run = SyncRun(tenant_id=t.id, state="succeeded")
            s.add(run)
            s.flush()
            t.current_run_id = run.id
            s.commit()
        state = httpx.get(f"{sim_url}/__sim/state", timeout=60).json()
        groups = [g for g in state["groups"] if g["type"] == "OKTA_GROUP"]
        users = [u["id"] for u in state["users"] if u["status"] == "ACTIVE"]
        pairs = [(g["id"], u) for g in groups for u in users if u not in set(g["members"])][: args.requests]
        if len(pairs) < args.requests:
            raise SystemExit(f"only {len(pairs)} distinct grants available; raise --users")

        workers = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", "provisioning", "-c",
             str(args.concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel", os.environ.get("BENCH_LOGLEVEL", "WARNING"), "-n", f"bench{os.getpid()}@%h"],
            cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        from worker import config
        from worker.app import make_app

        app = make_app(config.load())
        time.sleep(3)  # let the pool fork
        httpx.post(f"{sim_url}/__sim/reset-stats")
        t0 = time.monotonic()
        ids = [client.submit("bench", "grant", {"entitlement": f"group:{g}:member", "principal": f"user:{u}"},
                             database_url=url, app=app).id for g, u in pairs]
        submitted = time.monotonic() - t0
        while True:
            with sessions() as s:
                open_ = s.scalar(sa.select(sa.func.count()).select_from(ProvisioningRequest).where(
                    ProvisioningRequest.id.in_(ids), ProvisioningRequest.state.in_(("queued", "running"))))
            if not open_:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        with sessions() as s:
            states = dict(s.execute(sa.select(ProvisioningRequest.state, sa.func.count())
                                    .group_by(ProvisioningRequest.state)).all())
            spans = sorted((r.finished_at - r.started_at).total_seconds() for r in s.execute(
                sa.select(ProvisioningRequest.started_at, ProvisioningRequest.finished_at)
                .where(ProvisioningRequest.id.in_(ids))))
        busy = sum(spans) / (args.concurrency * elapsed)  # share of worker-slot time spent executing
        stats = httpx.get(f"{sim_url}/__sim/stats").json()
        share = 1.0 - args.sync_share
        windows = max(1.0, elapsed / args.window_seconds)
        # The bound: per bucket, what the provisioning share allows per second divided by the calls
        # each request makes in it; the smallest is what the rate limit lets through.
        per_bucket = {name: b["limit"] * share / args.window_seconds / (b["requests"] / len(ids))
                      for name, b in stats["buckets"].items() if b["requests"]}
        tight = min(per_bucket, key=per_bucket.get)
        bound = per_bucket[tight]
        rate = len(ids) / elapsed
        print(f"requests           {len(ids)} ({states})")
        print(f"workers            {args.concurrency} processes, window {args.window_seconds:g}s, "
              f"provisioning share {share:g}")
        print(f"submit             {len(ids) / submitted:.0f} requests/s (intake: validate + row + publish)")
        print(f"completed          {rate:.1f} requests/s over {elapsed:.1f}s ({windows:.1f} windows)")
        print(f"bound              {bound:.2f} requests/s (tightest bucket {tight}: "
              f"{stats['buckets'][tight]['limit']}/window x {share:g} share)")
        print(f"ratio              {rate / bound:.2f} of the bound")
        print(f"execution          p50 {spans[len(spans) // 2] * 1000:.0f} ms, p95 {spans[int(len(spans) * .95)] * 1000:.0f} ms "
              f"per request (first claim to finish); worker slots busy {busy:.0%}")
        print(f"okta calls         {stats['requests_total']} ({stats['requests_total'] / len(ids):.1f} per request), "
              f"429s {stats['throttled_total']}")
        for name, b in sorted(stats["buckets"].items()):
            print(f"  bucket {name:<32} {b['requests']:>5} calls  limit {b['limit']}/window")
    finally:
        if workers is not None and workers.poll() is None:
            os.killpg(workers.pid, signal.SIGTERM)
            workers.wait(30)
        sim.terminate()
        sim.wait(10)
        with admin.connect() as c:
            c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                      {"n": dbname})
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}"'))
        print(f"worker log         {log.name}")


if __name__ == "__main__":
    main()
