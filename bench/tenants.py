"""Many tenants end to end (issue 16 item 6): one `oktasim --orgs N --org-sizes mixed` process,
`oktasync tenant import`, 2 Celery sync workers x `-c 4`, the dispatcher worker and Beat on Redis and PostgreSQL.

    .venv/bin/python bench/tenants.py run --tenants 1000 --interval 900 --duration 3600   # the issue's run
    .venv/bin/python bench/tenants.py run --tenants 200 --interval 120 --duration 600     # a shorter one
    # the operator's regime: 15-minute incremental runs, a daily full reconcile, every org changing
    .venv/bin/python bench/tenants.py run --tenants 1000 --interval 86400 --incremental-interval 900 \
        --churn-per-minute 1 --duration 6000
    .venv/bin/python bench/tenants.py run --tenants 100 --interval 3600 --incremental-interval 120 \
        --churn-per-minute 1 --duration 1200                                              # a small one

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

Finished runs are polled every 30 s while the bench runs (finalize keeps a tenant's last 20 runs and
prunes older ones with their streams), so no run and no page is lost to pruning in long runs.

With `--incremental-interval SECONDS` every imported tenant also gets that incremental interval
(`--interval` is then the full reconcile's; it must be longer), and `--churn-per-minute N` makes
oktasim change every org N times a minute (users, groups, memberships, apps, roles: oktasim/churn.py),
so the incremental runs have something to find. A tenant's first sync is always full (no cursor yet);
`first_success_s` is still the time until every tenant had one. The output then also has, instead
of the full mode's `steady` and `lag`:

- by_kind: over the whole run, per run kind (full, incremental): runs succeeded and failed, pages
  (list pages) and requests (pages + System Log pages) of the succeeded ones, pages per run.
- steady: the window from `--settle` seconds (default: one incremental interval) after every
  tenant's first success to the end: the first full syncs hold back the incremental runs due
  meanwhile (tenants never synced are admitted first, and admission bounds the active runs), and the window
  begins once that backlog had an interval to drain. `reached: false` with why when the run ended
  before it began; `long_enough: false` when it is shorter than one incremental interval (not every
  tenant was due in it). In it: syncs_per_min per kind against syncs_per_min_due (tenants x 60 /
  incremental interval), tenants_synced_in_window, by_kind (runs that finished in the window),
  worker_cpu_s, pages_per_worker_cpu_s and requests_per_worker_cpu_s (pages or requests of the
  runs that finished in the window over the sync workers' CPU in it), worker_cpu_ms_per_run.
- lag: per size class and run kind, p95 and worst of due -> succeeded, and failures; per size
  class the largest gap between a tenant's successes of any kind (max_staleness_s, and in
  incremental intervals), over the whole run (from the import) and within the steady window
  (steady_max_staleness_*: gaps that end in it, and the gap since the last success at the end).
- task_wall_s: per run kind and task (start: the run's plan, for an incremental run its System
  Log read and look-ups of the view; page: one list page fetched and written, or a limiter
  deferral; finalize: the run applied to the view), count, total, mean and p95 wall seconds, from
  the sync workers' INFO task lines: where an incremental run's cost goes.
- sim_cpu_s: oktasim's CPU (all orgs and the churn), which a real deployment does not pay.
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
from datetime import UTC, datetime, timedelta
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
                             "--latency-ms", str(a.latency), "--orgs-file", str(orgs_file),
                             *(["--churn-per-minute", str(a.churn_per_minute)] if a.churn_per_minute else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise SystemExit(f"oktasim did not start: {line!r}")
    return proc, [json.loads(x) for x in orgs_file.read_text().splitlines()]


def import_tenants(cluster: Cluster, orgs: list[dict], interval: int, tmp: Path,
                   incremental: int | None = None) -> dict[str, dict]:
    path = tmp / "tenants.jsonl"
    extra = {"incremental_interval": incremental} if incremental else {}
    path.write_text("".join(json.dumps({"name": f"t{i:05d}", "domain": o["url"], "api_token": o["token"],
                                        "interval": interval, **extra}) + "\n" for i, o in enumerate(orgs)))
    path.chmod(0o600)
    got = subprocess.run([str(BIN / "oktasync"), "tenant", "import", str(path)], env=cluster.env,
                         capture_output=True, text=True, timeout=600)
    if got.returncode != 0:
        raise SystemExit(f"import failed: {got.stderr[-2000:]}")
    return {f"t{i:05d}": o for i, o in enumerate(orgs)}


class RunLog:
    """Every run the bench saw, polled while it runs: finalize prunes a tenant's history beyond its
    last 20 runs (worker/store/runs.py), so a long run with short incremental intervals would lose
    runs (and their streams' page counts) if read only at the end."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.seen: dict[int, object] = {}
        self.present: set[int] = set()  # ids still in sync_runs at the last poll of all runs
        self.polled_at: datetime | None = None

    def poll(self, everything: bool = False) -> None:
        """Finished runs since the last poll (a minute's margin); `everything`: every run there is."""
        import sqlalchemy as sa

        from worker.store.tables import SyncRun, Tenant

        q = (sa.select(SyncRun.id, Tenant.name, SyncRun.kind, SyncRun.state, SyncRun.created_at,
                       SyncRun.finished_at, SyncRun.counts,
                       sa.func.coalesce(SyncRun.due_at, SyncRun.created_at).label("due_at"))
             .join(Tenant, SyncRun.tenant_id == Tenant.id))
        now = datetime.now(UTC)
        if not everything and self.polled_at is not None:
            q = q.where(SyncRun.finished_at >= self.polled_at - timedelta(seconds=60))
        with self.cluster.sessions() as s:
            rows = s.execute(q).all()
        for r in rows:
            self.seen[r.id] = r
        if everything:
            self.present = {r.id for r in rows}
        self.polled_at = now

    def by_tenant(self) -> dict[str, list]:
        out: dict[str, list] = {}
        for rid in sorted(self.seen):
            out.setdefault(self.seen[rid].name, []).append(self.seen[rid])
        return out

    def pruned_pages(self) -> int:
        """Pages of runs seen finished and since pruned (their streams went with them)."""
        return sum(int((r.counts or {}).get("pages", 0)) for rid, r in self.seen.items() if rid not in self.present)


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
        cls = size_class(org["users"])
        for r in by_tenant.get(name, []):
            if r.state == "succeeded":
                per_class.setdefault(cls, []).append((r.finished_at - r.due_at).total_seconds())
        stale.setdefault(cls, []).append(worst_gap(by_tenant.get(name, []), imported, end) / interval)
    return {cls: {"tenants": len(gaps), "runs": len(per_class.get(cls, [])),
                  "lag_p95_s": round(pct(per_class.get(cls, []), 0.95), 1),
                  "lag_worst_s": round(max(per_class.get(cls, [float("nan")])), 1),
                  "max_staleness_in_intervals": round(max(gaps), 2)}
            for cls, gaps in sorted(stale.items())}


def worst_gap(runs: list, imported: datetime, end: datetime, since: datetime | None = None) -> float:
    """The largest gap, seconds, between a tenant's successes of any kind (from the import before its
    first, and since its last at the end); `since`: only gaps that end after it."""
    last_ok, worst = imported, 0.0
    for r in sorted((r for r in runs if r.state == "succeeded"), key=lambda r: r.finished_at):
        if since is None or r.finished_at >= since:
            worst = max(worst, (r.finished_at - last_ok).total_seconds())
        last_ok = r.finished_at
    return max(worst, (end - last_ok).total_seconds())


def lags_by_kind(by_tenant: dict[str, list], orgs: dict[str, dict], imported: datetime, end: datetime,
                 incremental: int, steady_from: datetime | None) -> dict:
    """With incremental runs: per size class, lag (due -> succeeded) p95 and worst of each run kind,
    and the largest gap between a tenant's successes (any kind) over the whole run and within the
    steady window, in seconds and in incremental intervals (the interval an operator expects)."""
    out: dict[str, dict] = {}
    for cls in ("small", "medium", "large"):
        names = [n for n, o in orgs.items() if size_class(o["users"]) == cls]
        if not names:
            continue
        runs = [r for n in names for r in by_tenant.get(n, [])]
        row: dict = {"tenants": len(names)}
        for kind in ("full", "incremental"):
            got = [(r.finished_at - r.due_at).total_seconds() for r in runs if r.kind == kind and r.state == "succeeded"]
            row[kind] = {"runs": len(got), "failed": sum(r.kind == kind and r.state == "failed" for r in runs),
                         "lag_p95_s": round(pct(got, 0.95), 1) if got else None,
                         "lag_worst_s": round(max(got), 1) if got else None}
        whole = max(worst_gap(by_tenant.get(n, []), imported, end) for n in names)
        row["max_staleness_s"] = round(whole, 1)
        row["max_staleness_in_incremental_intervals"] = round(whole / incremental, 2)
        if steady_from is not None:
            steady = max(worst_gap(by_tenant.get(n, []), imported, end, since=steady_from) for n in names)
            row["steady_max_staleness_s"] = round(steady, 1)
            row["steady_max_staleness_in_incremental_intervals"] = round(steady / incremental, 2)
        out[cls] = row
    return out


TASK_LINE = re.compile(r"task (oktasync\.sync\.(?:start|page|finalize)) (\w+) ([0-9.]+)s .*?\brun_id=(\d+)")


def task_times(tmp: Path, kinds: dict[int, str]) -> dict:
    """Wall seconds of the sync workers' tasks per run kind and task (start: the plan, with an
    incremental run's System Log read and look-ups; page: one fetch and write, or a limiter
    deferral; finalize: apply the run), from the INFO task lines."""
    got: dict[str, dict[str, list[float]]] = {}
    for f in tmp.glob("p*.log"):
        for task, _state, secs, run_id in TASK_LINE.findall(f.read_text(errors="replace")):
            kind = kinds.get(int(run_id))
            if kind:
                got.setdefault(kind, {}).setdefault(task.rsplit(".", 1)[1], []).append(float(secs))
    return {kind: {task: {"n": len(v), "total_s": round(sum(v), 1), "mean_ms": round(1000 * sum(v) / len(v), 1),
                          "p95_ms": round(1000 * pct(v, 0.95), 1)} for task, v in sorted(tasks.items())}
            for kind, tasks in sorted(got.items())}


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
    if a.incremental_interval and a.incremental_interval >= a.interval:
        raise SystemExit("--incremental-interval must be shorter than --interval (the full reconcile)")
    settle = a.settle if a.settle is not None else (a.incremental_interval or 0)
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
            t0, cpu0, other0, sim0 = time.monotonic(), cpu_seconds(workers), cpu_seconds(others), cpu_seconds([sim.pid])
            imported_at = datetime.now(UTC)
            names = import_tenants(cluster, orgs, a.interval, tmp, a.incremental_interval)
            log = RunLog(cluster)
            first_success, over_time, sample_at, poll_at = None, [], 0.0, 0.0
            steady_at = cpu_steady = None
            while (now := time.monotonic() - t0) < a.duration:
                done = synced(cluster)
                if now >= sample_at:
                    over_time.append([round(now), done])
                    sample_at += 60
                if now >= poll_at:
                    log.poll()
                    poll_at += 30
                if first_success is None and done >= len(orgs):
                    first_success = time.monotonic() - t0
                if first_success is not None and steady_at is None and now >= first_success + settle:
                    steady_at, cpu_steady = datetime.now(UTC), cpu_seconds(workers)
                time.sleep(2)
            end, cpu_end, other_end = datetime.now(UTC), cpu_seconds(workers), cpu_seconds(others)
            sim_end = cpu_seconds([sim.pid])
            log.poll(everything=True)
            elapsed, pages = time.monotonic() - t0, pages_fetched(cluster) + log.pruned_pages()
            over_time.append([round(elapsed), synced(cluster)])
            by_tenant = log.by_tenant()
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
            if a.incremental_interval:
                out.update(incremental_report(a, all_runs, len(orgs), settle, imported_at, first_success, steady_at, end,
                                              cpu_end - cpu_steady if cpu_steady is not None else None))
                out["lag"] = lags_by_kind(by_tenant, names, imported_at, end, a.incremental_interval, steady_at)
                out["task_wall_s"] = task_times(tmp, {rid: r.kind for rid, r in log.seen.items()})
                out["sim_cpu_s"] = round(sim_end - sim0, 1)
            else:
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


def incremental_report(a: argparse.Namespace, runs: list, tenants: int, settle: float, imported: datetime,
                       first_success: float | None, steady_at: datetime | None, end: datetime,
                       steady_cpu: float | None) -> dict:
    """The incremental regime's figures: per run kind over the whole run, and the steady window
    (from `settle` seconds after every tenant's first success to the end), or why there is none."""
    def kinds(rs: list) -> dict:
        out = {}
        for kind in ("full", "incremental"):
            ok = [r for r in rs if r.kind == kind and r.state == "succeeded"]
            out[kind] = {"succeeded": len(ok), "failed": sum(r.kind == kind and r.state == "failed" for r in rs),
                         "pages": sum(int(r.counts.get("pages", 0)) for r in ok),
                         "requests": sum(int(r.counts.get("requests", r.counts.get("pages", 0))) for r in ok),
                         "pages_per_run_mean": round(statistics.mean(int(r.counts.get("pages", 0)) for r in ok), 1)
                         if ok else None}
        return out

    out: dict = {"incremental_interval_s": a.incremental_interval, "churn_per_minute_per_org": a.churn_per_minute,
                 "settle_s": settle, "by_kind": kinds(runs)}
    if steady_at is None:
        why = ("not every tenant had its first success" if first_success is None else
               f"every tenant had its first success at {first_success:.0f} s, the window would begin {settle:.0f} s later")
        out["steady"] = {"reached": False, "why": f"the run ended before the steady window began: {why}; "
                                                  "lengthen --duration"}
        return out
    window = [r for r in runs if r.finished_at is not None and r.finished_at >= steady_at]
    seconds = (end - steady_at).total_seconds()
    done = [r for r in window if r.state == "succeeded"]
    by = kinds(window)
    pages = sum(k["pages"] for k in by.values())
    out["steady"] = {
        "reached": True, "from_s": round((steady_at - imported).total_seconds(), 1), "minutes": round(seconds / 60, 1),
        "long_enough": seconds >= a.incremental_interval,  # every tenant due at least once in the window
        "syncs_per_min": {k: round(v["succeeded"] * 60 / seconds, 1) for k, v in by.items()},
        "syncs_per_min_due": round(tenants * 60 / a.incremental_interval, 1),  # what the schedule asks
        "tenants_synced_in_window": len({r.name for r in done}),
        "by_kind": by, "worker_cpu_s": round(steady_cpu, 1),
        "pages_per_worker_cpu_s": round(pages / max(1e-9, steady_cpu), 1),
        "requests_per_worker_cpu_s": round(sum(k["requests"] for k in by.values()) / max(1e-9, steady_cpu), 1),
        "worker_cpu_ms_per_run": round(1000 * steady_cpu / len(done), 1) if done else None,
    }
    return out


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
    s.add_argument("--incremental-interval", type=int, default=0,
                   help="each tenant's incremental interval, seconds (0: off, full syncs only); --interval is then "
                        "the full reconcile's")
    s.add_argument("--churn-per-minute", type=float, default=0,
                   help="random changes a minute in every org (oktasim --churn-per-minute)")
    s.add_argument("--settle", type=float, default=None,
                   help="with --incremental-interval: seconds after every tenant's first success before the steady "
                        "window begins (default: one incremental interval, for the incremental runs the first full "
                        "syncs held back)")
    a = p.parse_args()
    {"run": cmd_run}[a.cmd](a)


if __name__ == "__main__":
    main()
