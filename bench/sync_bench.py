"""Sync engine benchmarks (issue 6): rate-limit bound, speed-up over --concurrency 1, fairness, memory.

    .venv/bin/python bench/sync_bench.py bound    [--scale 1.0] [--concurrency 8]  # + baseline unless --no-baseline
    .venv/bin/python bench/sync_bench.py fairness [--scale 1.0]                    # needs Redis + PostgreSQL
    .venv/bin/python bench/sync_bench.py memory   [--users 20000 100000]           # needs Redis + PostgreSQL
    .venv/bin/python bench/sync_bench.py small    [--users 200 2000]               # 60 s windows: burst vs paced

Every measurement runs against a real oktasim process with Okta's default limits on short windows
(--window-seconds) and 50-100 ms latency. Figures are printed as ratios; paste them into
bench/RESULTS.md with the command line.

- bound: for each Okta bucket, the requests the sync needed divided by the rate it was allowed
  (share x limit per window); the slowest bucket is the lower bound on the sync's duration.
  Reports elapsed / bound and the share of requests answered 429.
- baseline: the same org with --concurrency 1 (one request at a time, as baton-okta crawls).
- fairness: distributed mode (2 workers); five 200-user tenants due together with the large one;
  each small tenant's duration vs its duration alone.
- memory: distributed mode, one worker; peak RSS (VmHWM) of the worker processes, 20k vs 100k users.
- small: small and medium orgs on Okta's real 60 s windows, the limiter's burst vs even pacing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "00sim-super-admin-token-0000000000000000000"
LISTEN = re.compile(r"oktasim listening on (http://\S+)")
BIN = Path(sys.executable).parent


def start_sim(users: int, groups: int, apps: int, seed: int, window: float, latency: str,
              extra: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "oktasim", "--port", "0", "--users", str(users), "--groups", str(groups),
           "--apps", str(apps), "--seed", str(seed), "--window-seconds", str(window), "--latency-ms", latency,
           *(extra or [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    m = LISTEN.search(line)
    if not m:
        proc.kill()
        raise SystemExit(f"oktasim did not start: {line!r}")
    return proc, m.group(1)


def sim_stats(url: str) -> dict:
    return httpx.get(f"{url}/__sim/stats", timeout=30).json()


def lower_bound(stats: dict, share: float) -> tuple[float, str]:
    """max over buckets of requests / (share x limit per window), in seconds."""
    window = float(stats["window_seconds"])
    worst, name = 0.0, ""
    for bucket, b in stats["buckets"].items():
        if not b.get("limit") or not b.get("requests"):
            continue
        t = b["requests"] * window / (share * b["limit"])
        if t > worst:
            worst, name = t, bucket
    return worst, name


def embedded_sync(url: str, concurrency: int, share: float, file: str) -> tuple[float, dict]:
    from worker.connector import SyncOptions
    from worker.engine.embedded import run_embedded

    t0 = time.monotonic()
    result = run_embedded(url, {"api_token": TOKEN}, SyncOptions(), file=file, concurrency=concurrency,
                          rate_limit_share=share)
    elapsed = time.monotonic() - t0
    if result.state != "succeeded":
        raise SystemExit(f"sync failed: {result.error}")
    return elapsed, result.counts


def cmd_bound(a: argparse.Namespace) -> None:
    users, groups, apps = int(20000 * a.scale), int(2000 * a.scale), max(1, int(300 * a.scale))
    out: dict = {"org": {"users": users, "groups": groups, "apps": apps}, "window_seconds": a.window,
                 "latency_ms": a.latency, "share": a.share}
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("parallel", a.concurrency)] + ([] if a.no_baseline else [("baseline", 1)])
        for label, conc in runs:
            proc, url = start_sim(users, groups, apps, 7, a.window, a.latency)
            try:
                elapsed, counts = embedded_sync(url, conc, a.share, f"{tmp}/{label}.db")
                stats = sim_stats(url)
            finally:
                proc.terminate()
                proc.wait()
            bound, bucket = lower_bound(stats, a.share)
            total = stats["requests_total"]
            out[label] = {"concurrency": conc, "elapsed_s": round(elapsed, 2), "requests": total,
                          "throttled_429": stats["throttled_total"],
                          "throttled_pct": round(100.0 * stats["throttled_total"] / max(1, total), 3),
                          "lower_bound_s": round(bound, 2), "slowest_bucket": bucket,
                          "elapsed_over_bound": round(elapsed / bound, 3) if bound else None,
                          "grants": counts.get("grants"), "resources": counts.get("resources")}
            print(json.dumps({label: out[label]}), flush=True)
    if "baseline" in out:
        out["speedup_vs_concurrency_1"] = round(out["baseline"]["elapsed_s"] / out["parallel"]["elapsed_s"], 2)
    print(json.dumps(out, indent=2))


# ---------------------------------------------------------------- distributed helpers

class Cluster:
    """A fresh PostgreSQL database, a flushed Redis database, N Celery sync workers, the dispatcher
    worker and Beat.
    `env` overrides the OKTASYNC_* settings below; `loglevel` INFO logs each task's duration."""

    def __init__(self, tmp: str, workers: int, concurrency: int, env: dict[str, str] | None = None,
                 loglevel: str = "WARNING"):
        import sqlalchemy as sa

        from worker.store.secrets import generate_key

        self.tmp = Path(tmp)
        # A database of its own: other suites run Celery workers on REDIS_URL's database (same queue names).
        redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
        base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        name = f"oktasync_bench_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
        admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.db_url = base.rsplit("/", 1)[0] + "/" + name
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        self.env = dict(os.environ, OKTASYNC_BROKER_URL=redis_url, OKTASYNC_REDIS_URL=redis_url,
                        OKTASYNC_DATABASE_URL=self.db_url, OKTASYNC_SECRET_KEY=generate_key(),
                        OKTASYNC_DISPATCH_INTERVAL="1", OKTASYNC_STALL_TIMEOUT="60",
                        OKTASYNC_VISIBILITY_TIMEOUT="300", PYTHONPATH=str(ROOT))
        self.env.update(env or {})
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("OKTASYNC_")})
        from worker.store.db import make_engine, make_session_factory
        from worker.store.migrate import migrate

        migrate(self.db_url)
        self.sessions = make_session_factory(make_engine(self.db_url))
        self.procs: list[subprocess.Popen] = []
        self.workers = [self.spawn(["-A", "worker", "worker", "-Q", "sync", "-c", str(concurrency), "-P", "prefork",
                                    "-n", f"w{i}@%h", "--loglevel", loglevel, "--without-gossip", "--without-mingle"])
                        for i in range(workers)]
        # Beat's ticks run on their own queue and worker (the Procfile's `dispatcher`).
        self.spawn(["-A", "worker", "worker", "-Q", "dispatch", "-c", "1", "-P", "prefork", "-n", "dispatch@%h",
                    "--loglevel", loglevel, "--without-gossip", "--without-mingle"])
        self.spawn(["-A", "scheduler", "beat", "--loglevel", loglevel, "-s", f"{tmp}/beat-schedule"])
        time.sleep(4)

    def spawn(self, args: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"p{len(self.procs)}.log", "w")  # noqa: SIM115
        p = subprocess.Popen([str(BIN / "celery"), *args], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def add(self, name: str, url: str, due: bool) -> int:
        from datetime import UTC, datetime, timedelta

        from worker.store.tenants import create_tenant

        with self.sessions() as s:
            t = create_tenant(s, name, url, {"api_token": TOKEN}, sync_interval=86400,
                              next_sync_at=None if due else datetime.now(UTC) + timedelta(days=1))
            s.commit()
            return t.id

    def make_due(self, tenant_ids: list[int]) -> None:
        import sqlalchemy as sa

        from worker.store.tables import Tenant

        with self.sessions() as s:
            s.execute(sa.update(Tenant).where(Tenant.id.in_(tenant_ids)).values(next_sync_at=None))
            s.commit()

    def wait_done(self, tenant_ids: list[int], after_run: dict[int, int] | None = None, timeout: float = 3600) -> dict:
        import sqlalchemy as sa

        from worker.store.tables import SyncRun

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.sessions() as s:
                rows = {}
                for tid in tenant_ids:
                    run = s.execute(sa.select(SyncRun).where(SyncRun.tenant_id == tid,
                                                             SyncRun.id > (after_run or {}).get(tid, 0))
                                    .order_by(SyncRun.id.desc()).limit(1)).scalar_one_or_none()
                    if run is None or run.state not in ("succeeded", "failed"):
                        break
                    if run.state == "failed":
                        raise SystemExit(f"tenant {tid} run {run.id} failed: {run.error}")
                    rows[tid] = run
                else:
                    return {tid: (r.id, (r.finished_at - r.created_at).total_seconds()) for tid, r in rows.items()}
            time.sleep(0.5)
        raise SystemExit("timed out")

    def peak_rss_mb(self) -> float:
        """Largest VmHWM among worker processes and their prefork children."""
        peak = 0
        for p in self.procs[:-1]:
            pids = [p.pid]
            try:
                pids += [int(x) for x in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()]
            except OSError:
                pass
            for pid in pids:
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
                except OSError:
                    pass
        return peak / 1024

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def cmd_fairness(a: argparse.Namespace) -> None:
    users, groups, apps = int(20000 * a.scale), int(2000 * a.scale), max(1, int(300 * a.scale))
    sims = []
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(tmp, workers=2, concurrency=a.concurrency)
        try:
            big_proc, big_url = start_sim(users, groups, apps, 1, a.window, a.latency)
            sims.append(big_proc)
            small = []
            for i in range(5):
                proc, url = start_sim(200, 20, 10, 100 + i, a.window, a.latency)
                sims.append(proc)
                small.append(cluster.add(f"small{i}", url, due=False))
            big = cluster.add("large", big_url, due=False)
            alone = {}
            for t in small:  # alone: each small tenant by itself
                cluster.make_due([t])
                alone.update(cluster.wait_done([t]))
            print(json.dumps({"alone_s": {k: round(v[1], 2) for k, v in alone.items()}}), flush=True)
            cluster.make_due(small)  # the five small ones together, without the large one
            five = cluster.wait_done(small, after_run={t: alone[t][0] for t in small})
            print(json.dumps({"five_together_s": {k: round(v[1], 2) for k, v in five.items()}}), flush=True)
            cluster.make_due(small + [big])
            together = cluster.wait_done(small, after_run={t: five[t][0] for t in small})
            big_done = cluster.wait_done([big])
            ratios = {t: round(together[t][1] / alone[t][1], 2) for t in small}
            ratios5 = {t: round(together[t][1] / five[t][1], 2) for t in small}
            print(json.dumps({"org": {"users": users, "groups": groups, "apps": apps},
                              "workers": f"2 x -c {a.concurrency}",
                              "with_large_s": {k: round(v[1], 2) for k, v in together.items()},
                              "ratio_vs_alone": ratios, "max_ratio_vs_alone": max(ratios.values()),
                              "ratio_vs_five_without_large": ratios5,
                              "max_ratio_vs_five": max(ratios5.values()),
                              "large_s": round(big_done[big][1], 2)}, indent=2))
        finally:
            cluster.stop()
            for p in sims:
                p.terminate()


def cmd_small(a: argparse.Namespace) -> None:
    """Orgs of --users sizes on Okta's real 60 s windows: the limiter's burst against even pacing
    (burst_fraction 0), same org, same run. Small orgs need less than a window's share of most
    buckets, so how the share is spread, not the bucket, decides their time."""
    from worker.connector.tenant_client import limiter_shares
    from worker.engine import embedded
    from worker.okta.ratelimit import LimiterConfig, MemoryLimiter

    def paced(share: float, max_in_flight: int) -> MemoryLimiter:
        return MemoryLimiter(LimiterConfig(shares=limiter_shares(share), max_in_flight=max_in_flight,
                                           burst_fraction=0.0))

    default_limiter = embedded.memory_limiter
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for users in a.users:
            row = {}
            for label, make in (("burst", default_limiter), ("paced", paced)):
                embedded.memory_limiter = make
                try:
                    proc, url = start_sim(users, max(2, users // 10), 12, 5, 60.0, a.latency)
                    try:
                        elapsed, _ = embedded_sync(url, a.concurrency, a.share, f"{tmp}/{users}-{label}.db")
                        stats = sim_stats(url)
                    finally:
                        proc.terminate()
                        proc.wait()
                finally:
                    embedded.memory_limiter = default_limiter
                row[label] = {"elapsed_s": round(elapsed, 2), "requests": stats["requests_total"],
                              "throttled_429": stats["throttled_total"]}
            row["paced_over_burst"] = round(row["paced"]["elapsed_s"] / row["burst"]["elapsed_s"], 1)
            out[users] = row
            print(json.dumps({users: row}), flush=True)
    print(json.dumps({"window_seconds": 60, "concurrency": a.concurrency, "orgs": out}, indent=2))


def cmd_memory(a: argparse.Namespace) -> None:
    out = {}
    for users in a.users:
        with tempfile.TemporaryDirectory() as tmp:
            cluster = Cluster(tmp, workers=1, concurrency=2)
            # Fewer groups/apps per user than the 20k/2k/300 org keeps the 100k run to minutes; memory
            # is about pages held at once, which the org's user count drives (200-user pages).
            proc, url = start_sim(users, max(1, users // a.users_per_group), max(1, users // 1000), 3,
                                  a.window, a.latency)
            try:
                tid = cluster.add("org", url, due=True)
                done = cluster.wait_done([tid])
                out[users] = {"peak_rss_mb": round(cluster.peak_rss_mb(), 1), "sync_s": round(done[tid][1], 1),
                              "groups": max(1, users // a.users_per_group), "apps": max(1, users // 1000)}
                print(json.dumps({users: out[users]}), flush=True)
            finally:
                cluster.stop()
                proc.terminate()
    vals = [v["peak_rss_mb"] for v in out.values()]
    print(json.dumps({"memory": out, "ratio_largest_to_smallest": round(vals[-1] / vals[0], 3)}, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("bound", "fairness", "memory", "small"):
        s = sub.add_parser(name)
        s.add_argument("--window", type=float, default=10.0, help="simulated rate-limit window seconds")
        s.add_argument("--latency", default="60", help="simulated latency per request in ms (oktasim adds 0.5%% of it per item)")
        s.add_argument("--share", type=float, default=0.8)
        s.add_argument("--scale", type=float, default=1.0, help="org size relative to 20k/2k/300")
        s.add_argument("--concurrency", type=int, default=8)
        s.add_argument("--no-baseline", action="store_true")
        s.add_argument("--users", type=int, nargs="+", default=[200, 2000] if name == "small" else [20000, 100000])
        s.add_argument("--users-per-group", type=int, default=50, help="memory: org shape")
    a = p.parse_args()
    {"bound": cmd_bound, "fairness": cmd_fairness, "memory": cmd_memory, "small": cmd_small}[a.cmd](a)


if __name__ == "__main__":
    main()
