"""Chaos soak: syncs and provisioning under repeated faults for some minutes, then an exact check.

    .venv/bin/python bench/soak.py --minutes 5

Starts its own redis-server (AOF, restartable), a fresh PostgreSQL database (DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/test), three oktasim orgs (5% faults + latency; one with tiny
rate limits), two sync workers, Beat and a provisioning worker. While it runs it keeps syncing every
tenant and submitting group-membership grants/revokes, and every few seconds injects one fault:
kill -9 a sync worker (then starts another), kill -9 pool children, kill -9 the provisioner (then
starts another), restart Redis, terminate every PostgreSQL connection. Afterwards: every tenant's
next sync must equal its simulator's /__sim/state exactly, and every provisioning request must be
finished with Okta holding what the last request of each (group, user) asked for. Prints the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from tests.support.chaos import FAST, OwnRedis, children, kill9, reap_orphans, start_run  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.sim import Sim  # noqa: E402

FINAL = ("succeeded", "failed")


def fresh_database(base: str) -> tuple[str, sa.Engine]:
    base = base.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"oktasync_soak_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False), admin


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--fault-every", type=float, default=12.0, help="seconds between injected faults")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="oktasync-soak-"))
    own = OwnRedis()
    db_url, admin = fresh_database(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    os.environ.update({k: v for k, v in FAST.items()})
    c = Cluster(db_url, own.url, tmp)
    c.env.update(FAST)
    c.env.update(OKTASYNC_PROVISION_RETRY_BASE="0.5", OKTASYNC_PROVISION_RETRY_CAP="4")
    for k, v in c.env.items():
        if k.startswith("OKTASYNC_"):
            os.environ[k] = v
    common = ["--users", "400", "--groups", "20", "--apps", "8", "--window-seconds", "5", "--latency-ms", "40",
              "--fault-rate", "0.05"]
    sims = [Sim([*common, "--seed", "51"]), Sim([*common, "--seed", "52"]),
            Sim([*common, "--seed", "53", "--rate-limit-scale", "0.05"])]
    tenants = {f"soak{i}": (c.add_tenant(f"soak{i}", s.url), s) for i, s in enumerate(sims)}
    figures: Counter = Counter()
    runs: dict[str, int] = {}
    desired: dict[tuple[str, str, str], tuple[str, str]] = {}  # (tenant, group, user) -> (kind, key) of the last
    request_ids: list[tuple[str, str]] = []
    from worker import client
    from worker.app import make_app
    from worker.config import load

    app = make_app(load())
    sync_workers = [c.worker("sync0"), c.worker("sync1")]
    prov = [c._spawn(["-A", "worker", "worker", "-Q", "provisioning", "-c", "2", "-n", "prov0@%h",
                      "--loglevel", "INFO", "--without-gossip", "--without-mingle"], "prov0")]
    c.beat()
    n = 2
    faults = ["kill_sync_main", "kill_pool_children", "kill_provisioner", "restart_redis", "drop_postgres"]

    def run_state(run_id: int) -> str:
        from worker.store.tables import SyncRun

        with c.sessions() as s:
            return s.get(SyncRun, run_id, populate_existing=True).state

    def submit_some() -> None:
        # One request at a time on the orgs with Okta's real limits (the throttled org only syncs:
        # provisioning's 20% share of its tiny buckets would make a backlog, not a test).
        for name, (_, sim) in [rnd.choice(list(tenants.items())[:2])]:
            st = sim.state()
            group = rnd.choice([g for g in st["groups"] if g["type"] == "OKTA_GROUP"])
            user = rnd.choice([u for u in st["users"] if u["status"] == "ACTIVE"])
            kind = "revoke" if user["id"] in group["members"] and rnd.random() < 0.5 else "grant"
            key = f"soak-{uuid.uuid4().hex[:10]}"
            ent, principal = f"group:{group['id']}:member", f"user:{user['id']}"
            try:
                if kind == "grant":
                    client.grant(name, ent, principal, key, database_url=db_url, app=app)
                else:
                    client.revoke(name, ent, principal, key, database_url=db_url, app=app)
            except Exception as exc:  # noqa: BLE001 - Redis/PostgreSQL down at this instant: retry later
                figures["submit errors (retried)"] += 1
                print(f"  submit failed while a service was down: {type(exc).__name__}", flush=True)
                continue
            desired[(name, group["id"], user["id"])] = (kind, key)
            request_ids.append((name, key))
            figures["provisioning requests"] += 1

    deadline = time.monotonic() + args.minutes * 60
    next_fault = time.monotonic() + args.fault_every
    started = time.monotonic()
    while time.monotonic() < deadline:
        try:
            for name, (tid, _) in tenants.items():
                if name not in runs or run_state(runs[name]) in FINAL:
                    if name in runs:
                        figures[f"runs {run_state(runs[name])}"] += 1
                    runs[name] = start_run(c, tid)
            if rnd.random() < 0.4:
                submit_some()
        except Exception as exc:  # noqa: BLE001 - a service is down right now (we did it)
            print(f"  (driver: {type(exc).__name__} while a service was down)", flush=True)
        if time.monotonic() >= next_fault:
            fault = faults[figures["faults injected"] % len(faults)] if rnd.random() < 0.7 else rnd.choice(faults)
            print(f"[{time.monotonic() - started:6.1f}s] {fault}", flush=True)
            if fault == "kill_sync_main":
                victim = sync_workers.pop(rnd.randrange(len(sync_workers)))
                kill9(victim.pid)
                sync_workers.append(c.worker(f"sync{n}"))
                n += 1
            elif fault == "kill_pool_children":
                for w in sync_workers:
                    for pid in children(w.pid):
                        kill9(pid)
                        figures["pool children killed"] += 1
            elif fault == "kill_provisioner":
                victim = prov.pop()
                kill9(victim.pid)
                prov.append(c._spawn(["-A", "worker", "worker", "-Q", "provisioning", "-c", "2", "-n",
                                      f"prov{n}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
                                     f"prov{n}"))
                n += 1
            elif fault == "restart_redis":
                own.stop()
                time.sleep(2)
                own.start()
            elif fault == "drop_postgres":
                with admin.connect() as conn:
                    figures["postgres connections terminated"] += len(conn.execute(sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND "
                        "pid <> pg_backend_pid()"), {"d": db_url.rsplit("/", 1)[1]}).all())
            figures["faults injected"] += 1
            figures[fault] += 1
            next_fault = time.monotonic() + args.fault_every
        time.sleep(0.5)

    print("chaos over: settling and checking", flush=True)
    settle = time.monotonic() + 600
    for name in tenants:
        while run_state(runs[name]) not in FINAL and time.monotonic() < settle:
            time.sleep(0.5)
        figures[f"runs {run_state(runs[name])}"] += 1
    lost = 0
    states: Counter = Counter()
    final_state: dict[str, str] = {}
    for name, key in request_ids:
        ref = client.status(name, key, database_url=db_url)
        while ref is not None and not ref.done and time.monotonic() < settle:
            time.sleep(0.5)
            ref = client.status(name, key, database_url=db_url)
        if ref is None or not ref.done:
            lost += 1
            print(f"  not finished: {name} {key}: {ref and (ref.state, ref.attempts, ref.error)}", flush=True)
        else:
            states[ref.state] += 1
            final_state[key] = ref.state
    # Okta holds what the last request of each (group, user) asked for (when that request succeeded).
    wrong_membership = 0
    for (name, gid, uid), (kind, key) in desired.items():
        if final_state.get(key) != "succeeded":
            continue
        members = next(g for g in tenants[name][1].state()["groups"] if g["id"] == gid)["members"]
        if (uid in members) != (kind == "grant"):
            wrong_membership += 1
    # A final clean sync of every tenant must equal its org exactly.
    exact = 0
    for name, (tid, sim) in tenants.items():
        run_id = start_run(c, tid)
        run = c.wait_state(run_id, FINAL, timeout=300)
        try:
            if run.state == "succeeded":
                c.assert_matches(tid, sim)
                exact += 1
        except AssertionError as exc:
            print(f"{name}: MISMATCH {exc}")
    totals = Counter()
    for sim in sims:
        stt = sim.stats()
        totals["okta requests"] += stt["requests_total"]
        totals["okta faults injected (500/503/cut)"] += stt["faults_total"]
        totals["okta 429s"] += stt["throttled_total"]
    print("\n== oktasync soak figures ==")
    print(f"command:             bench/soak.py --minutes {args.minutes:g} --fault-every {args.fault_every:g} "
          f"--seed {args.seed}")
    print(f"duration:            {time.monotonic() - started:.0f} s")
    for k in ["faults injected", *faults, "pool children killed", "postgres connections terminated"]:
        print(f"{k + ':':<36}{figures[k]}")
    for k, v in totals.items():
        print(f"{k + ':':<36}{v}")
    print(f"{'sync runs succeeded:':<36}{figures['runs succeeded']}")
    print(f"{'sync runs failed cleanly:':<36}{figures['runs failed']}")
    print(f"{'provisioning requests:':<36}{len(request_ids)} ({dict(states)})")
    print(f"{'submit errors while down (retried):':<36}{figures['submit errors (retried)']}")
    print(f"{'requests lost:':<36}{lost}")
    print(f"{'memberships not as last requested:':<36}{wrong_membership}")
    print(f"{'final syncs exactly equal to the org:':<36}{exact}/{len(tenants)}")
    c.stop()
    reap_orphans(c)
    for sim in sims:
        sim.stop()
    own.close()
    c.engine.dispose()
    with admin.connect() as conn:
        dbname = db_url.rsplit("/", 1)[1]
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                     {"n": dbname})
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}"'))
    ok = lost == 0 and exact == len(tenants) and wrong_membership == 0
    print("RESULT:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
