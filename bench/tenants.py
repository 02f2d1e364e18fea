"""Many tenants end to end (issue 16 item 6): one `oktasim --orgs N --org-sizes mixed` process,
`oktasync tenant import`, 2 Celery sync workers x `-c 4`, the dispatcher worker and Beat on Redis and PostgreSQL.

    .venv/bin/python bench/tenants.py run --tenants 1000 --interval 900 --duration 3600   # the issue's run
    .venv/bin/python bench/tenants.py run --tenants 200 --interval 120 --duration 600     # a shorter one

Needs Redis (BENCH_REDIS_URL, default db 8: it is flushed) and PostgreSQL (DATABASE_URL; the bench
makes a database of its own). Prints one JSON object:

- first_success_s: from the import until every tenant has had one successful sync.
- steady: from then to the end: syncs per minute, pages fetched per worker CPU-second (worker
  processes and their pool children, utime+stime from /proc).
- pages_fetched, pages_per_s, pages_per_worker_cpu_s_overall: every page fetched, of finished runs
  and of runs still running (sync_streams.pages), over the run and over the sync workers' CPU
  (parents and pool children); other_cpu_s: the dispatcher worker's and Beat's.
- synced_over_time: [seconds since the import, tenants with a successful sync] every 60 s.
- lag_s by size class (users < 1,000 small, < 10,000 medium, else large): p95 and worst of
  (finished_at - due_at) over succeeded runs, due_at being when the tenant was due as the claim
  recorded it (sync_runs.due_at; a run started by hand: its creation). A tenant is starving when
  its data gets older than twice its interval:
  max_staleness_s is the largest gap between a tenant's successes (or since its last one, at the end).
- tick: how many dispatcher tasks ran of those Beat sent (duration / interval), and their p50/p99
  (Beat's tick: claim, release, reap), from the dispatcher worker's INFO log lines `task oktasync.sync.dispatch SUCCESS Xs`, at this run's tenant count (the tick
  alone at 1,000 and 10,000 rows: bench/tenants_cost.py tick).
- per_tenant: rows in each table and Redis keys (excluding Celery's queue keys), divided by tenants;
  `redis_keys_without_ttl` (keys an idle tenant would leave behind for good: should be 0) and the
  longest TTL left (how long an idle tenant's keys outlive its last request).
- load: the 1-minute load average at start and end (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sync_bench import BIN, Cluster  # noqa: E402 - after the path set-up

TICK = re.compile(r"task oktasync\.sync\.dispatch SUCCESS ([0-9.]+)s")
CELERY_KEYS = ("_kombu", "unacked", "sync", "provisioning", "dispatch", "celery")  # broker bookkeeping, not per tenant
TABLES = ("tenants", "sync_runs", "sync_streams", "resources", "entitlements", "grants")


def size_class(users: int) -> str:
    return "small" if users < 1000 else "medium" if users < 10000 else "large"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of each process, its reaped children and its live children (the prefork pool)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            kids = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        for kid in kids:
            try:
                total += sum(int(x) for x in Path(f"/proc/{kid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
            except OSError:
                pass
    return total / tick


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def start_orgs(a: argparse.Namespace, tmp: Path) -> tuple[subprocess.Popen, list[dict]]:
    orgs_file = tmp / "orgs.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "oktasim", "--port", "0", "--orgs", str(a.tenants),
                             "--org-sizes", a.org_sizes, "--seed", str(a.seed), "--window-seconds", str(a.window),
                             "--latency-ms", str(a.latency), "--orgs-file", str(orgs_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise SystemExit(f"oktasim did not start: {line!r}")
    return proc, [json.loads(x) for x in orgs_file.read_text().splitlines()]


def import_tenants(cluster: Cluster, orgs: list[dict], interval: int, tmp: Path) -> dict[str, dict]:
    path = tmp / "tenants.jsonl"
    path.write_text("".join(json.dumps({"name": f"t{i:05d}", "domain": o["url"], "api_token": o["token"],
                                        "interval": interval}) + "\n" for i, o in enumerate(orgs)))
    path.chmod(0o600)
    got = subprocess.run([str(BIN / "oktasync"), "tenant", "import", str(path)], env=cluster.env,
                         capture_output=True, text=True, timeout=600)
    if got.returncode != 0:
        raise SystemExit(f"import failed: {got.stderr[-2000:]}")
    return {f"t{i:05d}": o for i, o in enumerate(orgs)}


def runs_by_tenant(cluster: Cluster) -> dict[str, list]:
    import sqlalchemy as sa

    from worker.store.tables import SyncRun, Tenant

    with cluster.sessions() as s:
        rows = s.execute(sa.select(Tenant.name, Tenant.sync_interval, SyncRun.state, SyncRun.created_at,
                                   SyncRun.finished_at, SyncRun.counts,
                                   sa.func.coalesce(SyncRun.due_at, SyncRun.created_at).label("due_at"))
                         .join(SyncRun, SyncRun.tenant_id == Tenant.id).order_by(SyncRun.id)).all()
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r.name, []).append(r)
    return out


def synced(cluster: Cluster) -> int:
    """Tenants with at least one successful sync."""
    import sqlalchemy as sa

    from worker.store.tables import SyncRun

    with cluster.sessions() as s:
        return s.execute(sa.select(sa.func.count(sa.distinct(SyncRun.tenant_id)))
                         .where(SyncRun.state == "succeeded")).scalar()


def pages_fetched(cluster: Cluster) -> int:
    """Pages fetched by every run, finished or not (a run's streams keep their page counts)."""
    import sqlalchemy as sa

    from worker.store.tables import SyncStream

    with cluster.sessions() as s:
        return int(s.execute(sa.select(sa.func.coalesce(sa.func.sum(SyncStream.pages), 0))).scalar())


def lags(by_tenant: dict[str, list], orgs: dict[str, dict], imported: datetime, end: datetime,
         interval: int) -> dict:
    """Per size class: p95 and worst of due -> succeeded; and each tenant's largest staleness."""
    per_class: dict[str, list[float]] = {}
    stale: dict[str, list[float]] = {}
    for name, org in orgs.items():  # a tenant without a run yet (waiting for admission) counts too
        rs = by_tenant.get(name, [])
        cls = size_class(org["users"])
        last_ok, worst_gap = imported, 0.0
        for r in rs:
            if r.state == "succeeded":
                per_class.setdefault(cls, []).append((r.finished_at - r.due_at).total_seconds())
                worst_gap = max(worst_gap, (r.finished_at - last_ok).total_seconds())
                last_ok = r.finished_at
        worst_gap = max(worst_gap, (end - last_ok).total_seconds())
        stale.setdefault(cls, []).append(worst_gap / interval)
    return {cls: {"tenants": len(gaps), "runs": len(per_class.get(cls, [])),
                  "lag_p95_s": round(pct(per_class.get(cls, []), 0.95), 1),
                  "lag_worst_s": round(max(per_class.get(cls, [float("nan")])), 1),
                  "max_staleness_in_intervals": round(max(gaps), 2)}
            for cls, gaps in sorted(stale.items())}


def per_tenant(cluster: Cluster, tenants: int) -> dict:
    import redis
    import sqlalchemy as sa

    with cluster.sessions() as s:
        rows = {t: s.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}  # noqa: S608 - fixed names
    r = redis.Redis.from_url(cluster.env["OKTASYNC_REDIS_URL"])
    keys = [k.decode() for k in r.scan_iter(count=1000)]
    ours = [k for k in keys if not k.startswith(CELERY_KEYS)]
    prefixes: dict[str, int] = {}
    for k in ours:
        prefix = ":".join(k.split(":")[:2])
        prefixes[prefix] = prefixes.get(prefix, 0) + 1
    ttls = [r.pttl(k) for k in ours]
    return {"rows": {t: round(n / tenants, 1) for t, n in rows.items()},
            "redis_keys": round(len(ours) / tenants, 2), "redis_key_prefixes": prefixes,
            "redis_keys_without_ttl": sum(t == -1 for t in ttls),
            "redis_key_ttl_max_s": round(max(ttls, default=0) / 1000),
            "redis_celery_keys": len(keys) - len(ours)}


def ticks(tmp: Path, due: int) -> dict:
    got = [float(x) for f in tmp.glob("p*.log") for x in TICK.findall(f.read_text(errors="replace"))]
    return {"ticks": len(got), "ticks_due": due, "p50_ms": round(statistics.median(got) * 1000, 1) if got else None,
            "p99_ms": round(pct(got, 0.99) * 1000, 1) if got else None}


def cmd_run(a: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        load_start = load1()
        sim, orgs = start_orgs(a, tmp)
        cluster = Cluster(tmpdir, workers=a.workers, concurrency=a.concurrency, loglevel="INFO",
                          env={"OKTASYNC_DISPATCH_INTERVAL": str(a.dispatch_interval),
                               **({"OKTASYNC_MAX_RUNS": str(a.max_runs)} if a.max_runs else {})})
        try:
            workers = [p.pid for p in cluster.workers]  # the sync workers: page CPU
            others = [p.pid for p in cluster.procs if p.pid not in workers]  # dispatcher, Beat
            t0, cpu0, other0 = time.monotonic(), cpu_seconds(workers), cpu_seconds(others)
            imported_at = datetime.now(UTC)
            names = import_tenants(cluster, orgs, a.interval, tmp)
            first_success, over_time, sample_at = None, [], 0.0
            while (now := time.monotonic() - t0) < a.duration:
                done = synced(cluster)
                if now >= sample_at:
                    over_time.append([round(now), done])
                    sample_at += 60
                if first_success is None and done >= len(orgs):
                    first_success = time.monotonic() - t0
                    steady_at, cpu_steady = datetime.now(UTC), cpu_seconds(workers)
                time.sleep(2)
            end, cpu_end, other_end = datetime.now(UTC), cpu_seconds(workers), cpu_seconds(others)
            elapsed, pages = time.monotonic() - t0, pages_fetched(cluster)
            over_time.append([round(elapsed), synced(cluster)])
            by_tenant = runs_by_tenant(cluster)
            all_runs = [r for rs in by_tenant.values() for r in rs]
            out = {"tenants": len(orgs), "interval_s": a.interval, "duration_s": a.duration, "max_runs": a.max_runs,
                   "workers": f"{a.workers} x -c {a.concurrency}", "window_s": a.window, "latency_ms": a.latency,
                   "orgs_by_class": {c: sum(size_class(o["users"]) == c for o in orgs)
                                     for c in ("small", "medium", "large")},
                   "users": sum(o["users"] for o in orgs),
                   "first_success_s": round(first_success, 1) if first_success else None,
                   "tenants_synced": len({n for n, rs in by_tenant.items() if any(r.state == "succeeded" for r in rs)}),
                   "runs": {st: sum(r.state == st for r in all_runs) for st in {r.state for r in all_runs}},
                   "synced_over_time": over_time, "pages_fetched": pages,
                   "pages_per_s": round(pages / elapsed, 1), "worker_cpu_s": round(cpu_end - cpu0, 1),
                   "other_cpu_s": round(other_end - other0, 1),
                   "pages_per_worker_cpu_s_overall": round(pages / max(1e-9, cpu_end - cpu0), 1)}
            if first_success is not None:
                window = [r for r in all_runs if r.state == "succeeded" and r.finished_at >= steady_at]
                minutes = (end - steady_at).total_seconds() / 60
                out["steady"] = {"minutes": round(minutes, 1),
                                 "syncs_per_min": round(len(window) / minutes, 1) if minutes else None,
                                 "pages_per_worker_cpu_s": round(sum(r.counts.get("pages", 0) for r in window)
                                                                 / max(1e-9, cpu_end - cpu_steady), 1)}
            out["lag"] = lags(by_tenant, names, imported_at, end, a.interval)
            out["tick"] = ticks(tmp, int(a.duration / a.dispatch_interval))
            out["per_tenant"] = per_tenant(cluster, len(orgs))
            out["load1"] = {"start": load_start, "end": load1()}
            print(json.dumps(out, indent=2, default=str))
        finally:
            cluster.stop()
            sim.terminate()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("run", help="the end-to-end run")
    s.add_argument("--tenants", type=int, default=1000)
    s.add_argument("--interval", type=int, default=900, help="each tenant's sync interval, seconds")
    s.add_argument("--duration", type=float, default=3600, help="seconds from the import to the end")
    s.add_argument("--org-sizes", default="mixed", choices=("mixed", "fixed"))
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--window", type=float, default=60, help="oktasim rate-limit window seconds (Okta: 60)")
    s.add_argument("--latency", type=int, default=50, help="oktasim latency per request, ms")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--concurrency", type=int, default=4)
    s.add_argument("--max-runs", type=int, default=0,
                   help="OKTASYNC_MAX_RUNS (0: the product default; a large number: no admission bound)")
    s.add_argument("--dispatch-interval", type=float, default=5, help="Beat tick, seconds (the product default)")
    a = p.parse_args()
    {"run": cmd_run}[a.cmd](a)


if __name__ == "__main__":
    main()
