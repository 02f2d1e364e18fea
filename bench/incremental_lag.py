"""Incremental sync in distributed mode (issue 15 item 4): how long a change in Okta takes to show
in the store, and how many requests that costs an hour against hourly full syncs.

    BENCH_REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/incremental_lag.py --duration 300

One oktasim org (--users 2000, --groups 200, --apps 30; Okta's 60 s rate-limit windows, 50 ms
latency, System Log events readable 0..--log-delay-ms after they are published), 2 Celery sync
workers x -c 4 and Beat on Redis and PostgreSQL (bench/sync_bench.Cluster, as bench/tenants.py),
one tenant with custom roles and API tokens synced, full syncs hourly (--interval 3600).

1. Full: Beat runs the tenant's first sync, a full one. Its requests (oktasim /__sim/stats) are
   the cost of one full sync: hourly full syncs cost that many requests an hour.
2. Churn: incremental runs turned on (--incremental-interval 30); the bench applies
   --churn-per-minute random changes, one at a time evenly spread (POST /__sim/churn
   {"changes": 1}: the same churner as oktasim's own --churn-per-minute, whose answer says what
   changed), for --duration seconds, while Beat schedules the runs. For each change the bench
   records what the store must show for it (/__sim/state after the change against before:
   resources, entitlements and grants added or gone, and the changed user's status and profile
   or group's name) and polls the tenant's current view (--poll seconds) until it shows all of it.
   lag = that moment - the change's events' `published` (read from /api/v1/logs at the end). A
   later change that touches the same row supersedes it: the earlier change is measured on its
   other rows, or counted as superseded.
3. Requests an hour during the churn (oktasim /__sim/stats: every request, log reads and 429s
   included) against hourly full syncs.

Prints one JSON object: lag_s (p50, p95, max, changes measured, superseded, never visible),
requests (full sync, incremental per hour, ratio), runs (by kind and state, incremental run
seconds p50/max, fell back to full), load (1-minute load average at start and end).
Needs Redis (BENCH_REDIS_URL, default db 8 on port 6379: it is flushed) and PostgreSQL
(DATABASE_URL; the bench makes a database of its own).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sync_bench import TOKEN, Cluster, sim_stats, start_sim  # noqa: E402 - after the path set-up
from tenants import load1, pct  # noqa: E402

OPTIONS = {"sync_custom_roles": True, "sync_secrets": True}


# ---------------------------------------------------------------- what a change must make visible

def picture(state: dict) -> dict[tuple[str, str], object]:
    """Every fact the store's view must hold for this org state: (table, id) -> the value that
    must be there (True: the row exists; for users and groups the columns a change moves)."""
    from tests.support.expected import expected

    want = expected(state, **OPTIONS)
    facts: dict[tuple[str, str], object] = {}
    for table, ids in (("resources", want.resources), ("entitlements", want.entitlements), ("grants", want.grants)):
        facts.update({(table, i): True for i in ids})
    for u in state["users"]:
        facts[("user", f"user:{u['id']}")] = (u["status"], json.dumps(u["profile"], sort_keys=True))
    for g in state["groups"]:
        facts[("group", f"group:{g['id']}")] = g["profile"].get("name") or g["id"]
    return facts


def changed(before: dict, after: dict) -> dict[tuple[str, str], object]:
    """The facts a change moved: new or changed values, and None for rows that must be gone."""
    out: dict[tuple[str, str], object] = {k: v for k, v in after.items() if before.get(k) != v}
    out.update({k: None for k in before.keys() - after.keys()})
    return out


def seen(cluster: Cluster, tenant_id: int, keys: set[tuple[str, str]]) -> dict[tuple[str, str], object]:
    """The values of `keys` in the tenant's current view (absent keys are left out)."""
    import sqlalchemy as sa

    from worker.store.tables import EntitlementRow, GrantRow, ResourceRow, Tenant

    ids = {k[1] for k in keys}
    out: dict[tuple[str, str], object] = {}
    with cluster.sessions() as s:
        run = s.execute(sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id)).scalar()
        for rid, name, profile in s.execute(sa.select(ResourceRow.id, ResourceRow.display_name, ResourceRow.profile)
                                            .where(ResourceRow.run_id == run, ResourceRow.id.in_(ids))):
            out[("resources", rid)] = True
            if rid.startswith("user:"):
                out[("user", rid)] = (profile.get("okta_status"), json.dumps(profile.get("okta_profile"), sort_keys=True))
            elif rid.startswith("group:"):
                out[("group", rid)] = name
        out.update({("entitlements", e): True for e in s.execute(
            sa.select(EntitlementRow.id).where(EntitlementRow.run_id == run, EntitlementRow.id.in_(ids))).scalars()})
        out.update({("grants", g): True for g in s.execute(
            sa.select(GrantRow.id).where(GrantRow.run_id == run, GrantRow.expanded.is_(False),
                                         GrantRow.id.in_(ids))).scalars()})
    return out


class Change:
    def __init__(self, sent: float, answered: float, what: dict, facts: dict):
        self.sent, self.answered, self.what, self.facts = sent, answered, what, facts
        self.had_effect = bool(facts)  # a change the store cannot show (none seen so far) is not measured
        self.visible_at: float | None = None
        self.published: float | None = None


# ---------------------------------------------------------------- the run

def add_tenant(cluster: Cluster, url: str, interval: int) -> int:
    from worker.store.tenants import create_tenant

    with cluster.sessions() as s:
        t = create_tenant(s, "bench", url, {"api_token": TOKEN}, options=OPTIONS, sync_interval=interval)
        s.commit()
        return t.id


def tenant_runs(cluster: Cluster, tenant_id: int) -> list:
    import sqlalchemy as sa

    from worker.store.tables import SyncRun

    with cluster.sessions() as s:
        return list(s.execute(sa.select(SyncRun).where(SyncRun.tenant_id == tenant_id).order_by(SyncRun.id)).scalars())


def published_times(url: str, since: datetime, until: datetime) -> list[float]:
    """`published` of every System Log event in [since, until] (bounded mode: by published)."""
    out: list[float] = []
    link: str | None = (f"{url}/api/v1/logs?since={since.isoformat().replace('+00:00', 'Z')}"
                        f"&until={until.isoformat().replace('+00:00', 'Z')}&limit=1000")
    with httpx.Client(headers={"Authorization": f"SSWS {TOKEN}"}, timeout=60) as client:
        while link:
            got = client.get(link)
            got.raise_for_status()
            events = got.json()
            out += [datetime.fromisoformat(e["published"].replace("Z", "+00:00")).timestamp() for e in events]
            link = got.links.get("next", {}).get("url") if events else None
    return out


def churn_and_watch(a: argparse.Namespace, cluster: Cluster, url: str, tenant_id: int) -> tuple[list[Change], float]:
    """Phase 2; returns the changes and the seconds the churn lasted."""
    admin = httpx.Client(base_url=url, timeout=60)
    last = picture(admin.get("/__sim/state").json())
    changes: list[Change] = []
    pending: list[Change] = []
    t0 = time.time()
    every = 60.0 / a.churn_per_minute
    next_change = t0
    settle_until = t0 + a.duration + a.settle
    while time.time() < settle_until and (pending or time.time() < t0 + a.duration):
        if time.time() >= next_change and time.time() < t0 + a.duration:
            sent = time.time()
            answer = admin.post("/__sim/churn", json={"changes": 1, "seed": a.seed + len(changes)}).json()
            answered = time.time()
            now = picture(admin.get("/__sim/state").json())
            facts = changed(last, now)
            last = now
            for older in pending:  # a later change to the same row supersedes the earlier one there
                for key in facts.keys() & older.facts.keys():
                    del older.facts[key]
            change = Change(sent, answered, (answer.get("changes") or [{}])[0], facts)
            changes.append(change)
            pending.append(change)
            next_change += every
        keys = {k for c in pending for k in c.facts}
        if keys:
            store = seen(cluster, tenant_id, keys)
            stamp = time.time()
            for c in pending:
                if c.facts and all(store.get(k) == v for k, v in c.facts.items()):
                    c.visible_at = stamp
        pending = [c for c in pending if c.visible_at is None and c.facts]
        time.sleep(a.poll)
    admin.close()
    return changes, time.time() - t0


def match_published(changes: list[Change], times: list[float]) -> None:
    """Each change's earliest event `published` within its request (changes are one at a time)."""
    times = sorted(times)
    for c in changes:
        inside = [t for t in times if c.sent - 0.01 <= t <= c.answered + 0.01]
        c.published = inside[0] if inside else c.sent


def cmd(a: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        load_start = load1()
        sim, url = start_sim(a.users, a.groups, a.apps, a.seed, a.window, str(a.latency),
                             extra=["--log-delay-ms", str(a.log_delay_ms)])
        cluster = Cluster(tmp, workers=a.workers, concurrency=a.concurrency,
                          env={"OKTASYNC_DISPATCH_INTERVAL": str(a.dispatch_interval)})
        try:
            tenant_id = add_tenant(cluster, url, a.interval)  # due at once: Beat's first run is full
            deadline = time.monotonic() + a.full_timeout
            while not any(r.state == "succeeded" for r in tenant_runs(cluster, tenant_id)):
                failed = [r for r in tenant_runs(cluster, tenant_id) if r.state == "failed"]
                if failed or time.monotonic() > deadline:
                    raise SystemExit(f"the full sync did not succeed: {[r.error for r in failed] or 'timed out'}")
                time.sleep(1)
            full = tenant_runs(cluster, tenant_id)[0]
            full_requests = sim_stats(url)["requests_total"]
            from worker.store.tenants import update_tenant

            with cluster.sessions() as s:
                update_tenant(s, tenant_id, incremental_interval=a.incremental_interval)
                s.commit()
            began = datetime.now(UTC)
            changes, seconds = churn_and_watch(a, cluster, url, tenant_id)
            churn_requests = sim_stats(url)["requests_total"] - full_requests
            match_published(changes, published_times(url, began, datetime.now(UTC)))
            runs = [r for r in tenant_runs(cluster, tenant_id) if r.id != full.id]
        finally:
            cluster.stop()
            sim.terminate()
    measured = [c for c in changes if c.facts]  # what is left of each change after later ones
    lags = [c.visible_at - c.published for c in measured if c.visible_at is not None]
    incremental = [r for r in runs if r.kind == "incremental" and r.state == "succeeded"]
    durations = [(r.finished_at - r.started_at).total_seconds() for r in incremental]
    per_hour = churn_requests * 3600 / seconds
    out = {
        "org": {"users": a.users, "groups": a.groups, "apps": a.apps, "window_s": a.window, "latency_ms": a.latency,
                "log_delay_ms": a.log_delay_ms},
        "schedule": {"full_interval_s": a.interval, "incremental_interval_s": a.incremental_interval,
                     "dispatch_interval_s": a.dispatch_interval, "workers": f"{a.workers} x -c {a.concurrency}"},
        "churn": {"per_minute": a.churn_per_minute, "seconds": round(seconds, 1), "changes": len(changes)},
        "lag_s": {"p50": round(pct(lags, 0.5), 1), "p95": round(pct(lags, 0.95), 1),
                  "max": round(max(lags), 1) if lags else None, "measured": len(lags),
                  "superseded": sum(1 for c in changes if c.had_effect and not c.facts),
                  "no_visible_effect": [c.what.get("kind") for c in changes if not c.had_effect],
                  "never_visible": [c.what.get("kind") for c in measured if c.visible_at is None]},
        "requests": {"full_sync": full_requests, "full_sync_seconds": round(
                         (full.finished_at - full.started_at).total_seconds(), 1),
                     "incremental_per_hour": round(per_hour), "hourly_full_per_hour": full_requests,
                     "incremental_over_hourly_full": round(per_hour / full_requests, 3)},
        "runs": {"by_kind_state": {f"{k} {s}": sum(1 for r in runs if (r.kind, r.state) == (k, s))
                                   for k, s in sorted({(r.kind, r.state) for r in runs})},
                 "incremental_seconds_p50": round(pct(durations, 0.5), 1) if durations else None,
                 "incremental_seconds_max": round(max(durations), 1) if durations else None,
                 "fell_back_to_full": [(r.plan or {}).get("reason") for r in runs if r.kind == "full"]},
        "load1": {"start": load_start, "end": load1()},
    }
    print(json.dumps(out, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--groups", type=int, default=200)
    p.add_argument("--apps", type=int, default=30)
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--window", type=float, default=60, help="oktasim rate-limit window seconds (Okta: 60)")
    p.add_argument("--latency", type=int, default=50, help="oktasim latency per request, ms")
    p.add_argument("--log-delay-ms", type=int, default=5000,
                   help="System Log events readable 0..this many ms after they are published")
    p.add_argument("--interval", type=int, default=3600, help="full sync interval, seconds")
    p.add_argument("--incremental-interval", type=int, default=30, help="seconds")
    p.add_argument("--churn-per-minute", type=float, default=60)
    p.add_argument("--duration", type=float, default=300, help="seconds of churn")
    p.add_argument("--settle", type=float, default=180, help="after the churn: seconds to wait for the last changes")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between two looks at the store")
    p.add_argument("--full-timeout", type=float, default=900, help="seconds the first (full) sync may take")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--dispatch-interval", type=float, default=5, help="Beat tick, seconds (the product default)")
    cmd(p.parse_args())


if __name__ == "__main__":
    main()
