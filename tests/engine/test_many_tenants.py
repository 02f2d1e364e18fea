"""Fifty tenants, each its own Okta org, synced by the distributed mode: one `oktasim --orgs 50`
process, `oktasync tenant import`, two real Celery workers and Beat on Redis and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from worker.store.tables import SyncRun, Tenant

ORGS = 50
# Small orgs so fifty full syncs fit in well under a minute on a quiet machine.
SMALL = ["--users", "20", "--groups", "4", "--apps", "3", "--window-seconds", "5"]


class Org:
    """One org of a multi-org oktasim, as assert_matches reads it (its own /__sim/state)."""

    def __init__(self, url: str):
        self.url = url

    def state(self) -> dict:
        return httpx.get(f"{self.url}/__sim/state", timeout=30).raise_for_status().json()


def _oktasync(cluster, *args: str) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("oktasync"))
    return subprocess.run([exe, *args], env=cluster.env, capture_output=True, text=True, timeout=180)


# 141 s measured with the 2-core machine at load 20; not shown to fit ~60 s, so left to `-m slow`.
@pytest.mark.slow
def test_fifty_tenants_each_equal_their_own_org(cluster, oktasim, tmp_path):
    oktasim([*SMALL, "--orgs", str(ORGS), "--seed", "500", "--orgs-file", str(tmp_path / "orgs.jsonl")])
    orgs = [json.loads(line) for line in (tmp_path / "orgs.jsonl").read_text().splitlines()]
    assert len(orgs) == ORGS
    tenants_file = tmp_path / "tenants.jsonl"
    tenants_file.write_text("".join(json.dumps({"name": f"org{i:02d}", "domain": o["url"], "api_token": o["token"],
                                                "interval": 3600}) + "\n" for i, o in enumerate(orgs)))
    tenants_file.chmod(0o600)  # it holds the tokens themselves
    imported = _oktasync(cluster, "tenant", "import", str(tenants_file))
    assert imported.returncode == 0, imported.stderr
    assert f"{ORGS} added" in imported.stderr, imported.stderr
    assert all(o["token"] not in imported.stdout + imported.stderr for o in orgs)

    with cluster.sessions() as s:
        ids = dict(s.execute(sa.select(Tenant.name, Tenant.id)).all())
    tenant_ids = [ids[f"org{i:02d}"] for i in range(ORGS)]

    cluster.worker("w1")
    cluster.worker("w2")
    cluster.beat()

    def every_tenant_synced() -> bool:
        with cluster.sessions() as s:
            done = s.execute(sa.select(sa.func.count(sa.distinct(SyncRun.tenant_id)))
                             .where(SyncRun.state == "succeeded")).scalar()
        return done == ORGS

    cluster.wait_runs(every_tenant_synced, 300, f"all {ORGS} tenants synced")
    with cluster.sessions() as s:
        failed = s.execute(sa.select(SyncRun.tenant_id, SyncRun.error).where(SyncRun.state == "failed")).all()
    assert failed == []

    # Each tenant's view is its own org, exactly: nothing missing, nothing from another org.
    users: list[set[str]] = []
    for tid, org in zip(tenant_ids, orgs, strict=True):
        cluster.assert_matches(tid, Org(org["url"]))
        users.append({r for r in cluster.picture(tid)[0] if r.startswith("user:")})
    # The orgs' users differ (distinct seeds), so equality above is a real check against leaks.
    assert all(a.isdisjoint(b) for i, a in enumerate(users) for b in users[i + 1:])

    # Both workers did pages, and no tenant is left lagging.
    assert "oktasync.sync.page" in cluster.log("w1") and "oktasync.sync.page" in cluster.log("w2")
    lagging = _oktasync(cluster, "tenant", "list", "--lagging")
    assert lagging.returncode == 0 and lagging.stdout.strip() == "", lagging.stdout + lagging.stderr


def test_admission_bounds_active_runs_and_admits_in_due_order(cluster, oktasim, tmp_path):
    """OKTASYNC_MAX_RUNS=2 with 6 due tenants: Beat admits two (the first added), the rest wait
    due and unclaimed, `tenant list --lagging` says so; with workers, every tenant syncs, in the
    order they were added, never more than two runs active at once."""
    count, bound = 6, 2
    cluster.env["OKTASYNC_MAX_RUNS"] = str(bound)
    oktasim([*SMALL, "--orgs", str(count), "--seed", "600", "--orgs-file", str(tmp_path / "orgs.jsonl")])
    orgs = [json.loads(line) for line in (tmp_path / "orgs.jsonl").read_text().splitlines()]
    tenant_ids = [cluster.add_tenant(f"org{i}", o["url"], token=o["token"], due=True) for i, o in enumerate(orgs)]

    cluster.beat()  # no sync worker yet: the admitted runs stay queued
    cluster.wait_runs(lambda: sum(len(cluster.runs(t)) for t in tenant_ids) == bound, 60, "two runs admitted")
    lagging = _oktasync(cluster, "tenant", "list", "--lagging")
    lines = lagging.stdout.strip().splitlines()
    assert len(lines) == count and all("behind others" in line for line in lines), lagging.stdout + lagging.stderr
    assert [line.split(":")[0] for line in lines if ": queued (" in line] == ["org0", "org1"], lagging.stdout

    cluster.worker("w1")
    cluster.worker("w2")
    cluster.wait_runs(lambda: all(any(r.state == "succeeded" for r in cluster.runs(t)) for t in tenant_ids), 240,
                      "every tenant synced")
    with cluster.sessions() as s:
        rows = s.execute(sa.select(SyncRun.tenant_id, SyncRun.state, SyncRun.created_at, SyncRun.finished_at)
                         .order_by(SyncRun.created_at, SyncRun.id)).all()
    assert {r.state for r in rows} == {"succeeded"}
    assert [r.tenant_id for r in rows] == tenant_ids  # admitted in the order they became due
    for r in rows:  # when each run was admitted, at most bound - 1 others were still active
        assert sum(o.created_at <= r.created_at < o.finished_at for o in rows if o is not r) < bound
